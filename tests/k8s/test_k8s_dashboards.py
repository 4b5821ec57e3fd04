"""The Grafana dashboards (helm/airline-streaming/dashboards/): every panel says what it shows,
with a unit and a legend on every series, laid out without overlaps; the business dashboard
reads only the warehouse's review objects, and each of its SQL queries runs, as the read-only BI
reader, against a warehouse the ETL loaded, returning what its panel draws.

The operations dashboard's queries run on a real Prometheus in
``test_k8s_pods_as_processes.py``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from airline_core.config import from_values
from airline_devstack.postgres import BI_READER, as_bi_reader
from airline_etl import app
from airline_etl.settings import Settings
from airline_testkit.events import make_world
from airline_testkit.lake import write_world
from k8s_support import CHART

pytestmark = pytest.mark.k8s

DASHBOARDS = CHART / "dashboards"
OPERATIONS = DASHBOARDS / "airline-streaming.json"
BUSINESS = DASHBOARDS / "airline-business.json"
#: Business panels that must draw something on any loaded warehouse (live discounts may be none).
MUST_SHOW_DATA = {"Promotions fired by tier and reason", "Revenue", "Revenue per hour",
                  "Load factor by flight", "Load factor by days out", "Seats remaining"}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _sql_panels() -> list[dict[str, Any]]:
    return _load(BUSINESS)["panels"]


@pytest.mark.parametrize("path", [OPERATIONS, BUSINESS], ids=lambda p: p.stem)
def test_every_panel_has_a_description_a_unit_and_legends(path: Path) -> None:
    dashboard = _load(path)
    assert dashboard["description"]
    uids = [p["id"] for p in dashboard["panels"]]
    assert len(set(uids)) == len(uids), "panel ids repeat"
    for panel in dashboard["panels"]:
        title = panel["title"]
        assert panel["description"].strip(), f"{title}: no description"
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{title}: no unit"
        assert panel["targets"], f"{title}: no query"
        if panel["type"] in {"timeseries", "barchart"}:
            assert panel["options"]["legend"]["showLegend"], f"{title}: legend hidden"
        for target in panel["targets"]:
            if "expr" in target:
                assert target["legendFormat"].strip(), f"{title} {target['refId']}: no legend"


@pytest.mark.parametrize("path", [OPERATIONS, BUSINESS], ids=lambda p: p.stem)
def test_panels_do_not_overlap(path: Path) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in _load(path)["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, f"{panel['title']} is wider than the dashboard"
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_the_operations_dashboard_shows_what_an_operator_needs() -> None:
    """Transaction outcomes (aborted and abandoned drawn even at zero), decision latency, ETL
    freshness and rejects, lake diversions and lost offsets."""
    exprs = {p["title"]: " ".join(t["expr"] for t in p["targets"])
             for p in _load(OPERATIONS)["panels"]}
    joined = " ".join(exprs.values())
    for outcome in ("committed", "aborted", "abandoned"):
        assert f'outcome="{outcome}"' in exprs["Engine transactions / s"]
    assert exprs["Engine transactions / s"].count("or vector(0)") == 2
    assert "engine_decision_latency_seconds_bucket" in exprs["Decision latency"]
    for metric in ("airline_etl_last_success_timestamp_seconds", "airline_etl_rejects",
                   "lake_diverted_records_total", "lake_expired_offsets_total"):
        assert metric in joined, metric
    for expr in exprs.values():
        for selector in re.findall(r"\b[a-z_]+\{([^}]*)\}", expr):
            assert 'namespace="$namespace"' in selector, expr


def test_the_business_dashboard_reads_the_warehouse_review_objects_only() -> None:
    dashboard = _load(BUSINESS)
    (warehouse,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert warehouse["query"] == "grafana-postgresql-datasource"
    queries = [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${warehouse}", panel["title"]
        queries += [t["rawSql"] for t in panel["targets"]]
    for sql in queries:
        relations = re.findall(r"\b(?:FROM|JOIN)\s+([a-z_]+)", sql)
        assert relations, sql
        assert all(re.match(r"(dim|fact|v)_", r) for r in relations), (
            f"reads beyond what airline_bi may SELECT: {relations}")


def _expand(sql: str, routes: list[str]) -> str:
    """Grafana's macros and variables as its Postgres datasource would expand them."""
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)",
                 r"\1 BETWEEN '1900-01-01'::timestamptz AND '2200-01-01'::timestamptz", sql)
    sql = re.sub(r"\$__timeGroupAlias\(([^,]+),\s*'1h'\)", r"date_trunc('hour', \1) AS time", sql)
    sql = re.sub(r"\$__time\(([^)]+)\)", r"\1 AS time", sql)
    sql = sql.replace("$route", ", ".join("'" + r.replace("'", "''") + "'" for r in routes))
    assert "$" not in sql, f"an unexpanded macro or variable: {sql}"
    return sql


@pytest.mark.postgres
def test_every_business_query_runs_as_the_bi_reader_on_a_loaded_warehouse(
        isolated_database_url: str, tmp_path: Path) -> None:
    with psycopg2.connect(isolated_database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (BI_READER,))
        has_reader = bool(cur.fetchall())
    conn.close()
    lake = tmp_path / "lake"
    write_world(lake, make_world(flights=6, bookings_per_flight=10))
    settings = from_values(Settings, {"DATABASE_URL": isolated_database_url,
                                      "LAKE_DIR": str(lake)}, environ={})
    assert app.run(settings).total_events > 0
    url = as_bi_reader(isolated_database_url) if has_reader else isolated_database_url
    dashboard = _load(BUSINESS)
    (route_variable,) = [v for v in dashboard["templating"]["list"] if v["name"] == "route"]
    conn = psycopg2.connect(url)
    conn.set_session(readonly=True)
    try:
        with conn.cursor() as cur:
            cur.execute(route_variable["query"])
            routes = [r for (r,) in cur.fetchall()]
            assert routes, "the route variable would offer nothing"
            for panel in dashboard["panels"]:
                for target in panel["targets"]:
                    cur.execute(_expand(target["rawSql"], routes))
                    columns = [d.name for d in cur.description or ()]
                    rows = cur.fetchall()
                    if target["format"] == "time_series":
                        assert columns[0] == "time", f"{panel['title']}: no time column first"
                    if panel["title"] in MUST_SHOW_DATA:
                        skip = 1 if target["format"] == "time_series" else 0
                        assert rows and any(v is not None for row in rows for v in row[skip:]), (
                            f"{panel['title']} draws nothing on a loaded warehouse")
    finally:
        conn.close()
    if not has_reader:
        pytest.skip(f"ran as the ETL's role: the test database has no {BI_READER} role")
