"""``airline-report``: the page from a loaded warehouse renders in headless Chromium with no
console message, every chart draws its data (in the page and as PNG), the decision table holds
every decision and its search filters it; bad settings are refused naming the setting."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg2
import pytest
from airline_devstack.demo import write_review
from airline_devstack.pipeline import PipelineSpec
from airline_devstack.postgres import BI_READER
from airline_review import browser
from airline_review.report_cli import main
from PIL import Image
from review_world import EXPLAINED_FLIGHT

pytestmark = pytest.mark.postgres
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (tools/system-deps.sh installs Debian's)")
CHARTS = ("inventory_trend", "booking_pressure", "promotion_outcomes")


def load_page(url: str) -> tuple[str, list[str]]:
    """(the DOM after the page's script ran, the console messages) of ``url`` in Chromium."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [CHROMIUM, *browser.HEADLESS, f"--user-data-dir={profile}", "--enable-logging=stderr",
             "--v=0", "--dump-dom", url], capture_output=True, text=True, timeout=120,
            check=True)
    return result.stdout, [line for line in result.stderr.splitlines() if ":CONSOLE" in line]


def visible_decisions(dom: str) -> list[str]:
    body = dom.split('id="decisions"', 1)[1].split("</table>", 1)[0]
    return [row for row in re.findall(r"<tr( hidden=\"\")?>(.*?)</tr>", body)
            if not row[0] and "<td>" in row[1]]


@pytest.fixture
def report_dir(reader_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "report"
    monkeypatch.setenv("DATABASE_URL", reader_url)
    args = ["--out-dir", str(out), "--log-format", "json"]
    assert main([*args, "--png"] if CHROMIUM else [*args, "--png", "false"]) == 0
    return out


@needs_chromium
def test_the_page_renders_without_console_messages_and_every_chart_draws(
        report_dir: Path, loaded_warehouse: str) -> None:
    dom, console = load_page((report_dir / "report.html").as_uri())
    assert console == [], console
    with psycopg2.connect(loaded_warehouse) as conn, conn.cursor() as cur:
        cur.execute("SELECT (SELECT count(*) FROM fact_promotions)"
                    " + (SELECT count(*) FROM fact_promotion_end)")
        (decisions,) = cur.fetchone()  # type: ignore[misc]
    conn.close()
    assert f"{decisions} of {decisions} decisions" in dom, "the search script did not run"
    assert len(visible_decisions(dom)) == decisions
    charts = re.findall(r"<svg .*?</svg>", dom, flags=re.S)
    assert len(charts) == len(CHARTS)
    for chart in charts[:2]:  # the dashboards: a line per drawn flight, each with data
        lines = re.findall(r'<polyline class="series" points="([^"]*)"', chart)
        assert lines and all(len(p.split()) >= 2 for p in lines), chart[:200]
    assert EXPLAINED_FLIGHT in charts[2], "the explained promotion's outcome is not drawn"
    assert "http" not in dom.split("<body>", 1)[1].replace("http://www.w3.org", ""), (
        "the page references something outside itself")


@needs_chromium
def test_the_search_filters_the_decisions_from_the_link(report_dir: Path) -> None:
    dom, console = load_page((report_dir / "report.html").as_uri() + "#q=review-promo")
    assert console == []
    (row,) = visible_decisions(dom)
    assert "expected revenue rises" in row[1] and "1,820.5" in row[1]
    assert re.search(r"1 of \d+ decisions", dom)


@needs_chromium
def test_every_chart_is_also_a_png_that_is_not_blank(report_dir: Path) -> None:
    for stem in CHARTS:
        assert (report_dir / f"{stem}.svg").is_file()
        with Image.open(report_dir / f"{stem}.png") as image:
            rgb = image.convert("RGB")
            colours = rgb.getcolors(maxcolors=1 << 16) or []
            inked = sum(n for n, colour in colours if colour != (255, 255, 255))
            assert rgb.size[0] >= 600, stem
            assert len(colours) > 10 and inked > rgb.size[0] * rgb.size[1] * 0.01, (
                f"{stem}.png looks blank: {len(colours)} colours, {inked} inked pixels")


def test_the_route_filter_keeps_other_routes_out(
        reader_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", reader_url)
    assert main(["--out-dir", str(tmp_path), "--routes", "LHR-JFK", "--png", "false",
                 "--log-format", "json"]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "LHR-JFK" in page and "LHR-CDG" not in page
    assert not list(tmp_path.glob("*.png"))


def test_bad_settings_and_an_unreachable_warehouse_are_clear(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    assert main(["--flights", "0"]) == 2
    assert "REPORT_FLIGHTS" in capsys.readouterr().err
    assert main(["--routes", "LHRJFK"]) == 2
    assert "REPORT_ROUTES" in capsys.readouterr().err
    assert main(["--browser", str(tmp_path / "no-browser"), "--log-format", "json"]) == 2
    assert "REPORT_BROWSER" in capsys.readouterr().err
    monkeypatch.setenv("DATABASE_URL", "postgresql://airline_bi:s3cret@127.0.0.1:1/airline_dw")
    assert main(["--out-dir", str(tmp_path / "r"), "--png", "false",
                 "--log-format", "json"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the warehouse" in err and "s3cret" not in err
    assert not (tmp_path / "r").exists()


def test_the_demo_ends_with_the_review_as_the_bi_reader(
        loaded_warehouse: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = PipelineSpec(bootstrap="127.0.0.1:1", database_url=loaded_warehouse,
                        lake_dir=tmp_path / "lake", log_dir=tmp_path / "logs", seed=1, flights=1,
                        days=1)
    write_review(spec, tmp_path / "review")
    assert "review: open" in capsys.readouterr().out
    assert (tmp_path / "review" / "report.html").is_file()
    assert (tmp_path / "review" / "airline_dw.hyper").stat().st_size > 0
    logs = (tmp_path / "logs" / "report.log").read_text()
    assert f"{BI_READER}:***@" in logs or BI_READER not in _roles(loaded_warehouse)


def _roles(url: str) -> set[str]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT rolname FROM pg_roles")
        names = {r for (r,) in cur.fetchall()}
    conn.close()
    return names
