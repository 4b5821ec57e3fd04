"""``airline-extract``: the Tableau extract holds every review relation of the warehouse, row for
row and value for value, under the names the Tableau data source uses; a failure leaves the
previous extract as it was."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from airline_review import warehouse
from airline_review.extract import RELATIONS, SCHEMA, write_extract
from airline_review.extract_cli import main
from tableauhyperapi import Connection, CreateMode, HyperProcess, Telemetry

pytestmark = pytest.mark.postgres
TDS = Path(__file__).resolve().parents[2] / "tableau" / "airline.tds"


def read_extract(path: Path) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Per table of the extract: (column names, rows sorted)."""
    out = {}
    with HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU,
                      parameters={"log_config": ""}) as process, \
            Connection(process.endpoint, str(path), CreateMode.NONE) as hyper:
        for table in hyper.catalog.get_table_names(SCHEMA):
            definition = hyper.catalog.get_table_definition(table)
            names = [c.name.unescaped for c in definition.columns]
            rows = hyper.execute_list_query(f"SELECT * FROM {table}")
            out[table.name.unescaped] = (names, sorted(map(_comparable, rows), key=repr))
    return out


def _comparable(row: list[Any]) -> tuple[Any, ...]:
    """Hyper's values as Python's: timestamps to datetime, numerics stay Decimal."""
    return tuple(v.to_datetime() if hasattr(v, "to_datetime") else v for v in row)


def read_warehouse(url: str) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    conn = warehouse.connect(url)
    out = {}
    try:
        for relation in RELATIONS:
            rows = warehouse.rows(conn, f'SELECT * FROM "{relation}"')
            names = [c.name for c in warehouse.columns(conn, relation)]
            out[relation] = (names, sorted((tuple(r[n] for n in names) for r in rows), key=repr))
    finally:
        conn.close()
    return out


def test_the_extract_holds_every_review_relation_value_for_value(
        reader_url: str, tmp_path: Path) -> None:
    out = tmp_path / "airline_dw.hyper"
    conn = warehouse.connect(reader_url)
    try:
        written = write_extract(conn, out, batch_rows=3)  # several batches per relation
    finally:
        conn.close()
    expected = read_warehouse(reader_url)
    extract = read_extract(out)
    assert set(extract) == set(RELATIONS)
    for relation, (names, rows) in expected.items():
        assert rows, f"{relation} is empty: the test world should fill every relation"
        got_names, got_rows = extract[relation]
        assert got_names == names, relation
        assert written[relation] == len(rows)
        assert got_rows == rows, relation
    explained = [r for r in extract["v_promotion_annotations"][1]
                 if Decimal("1820.50") in r]
    assert explained, "the explained promotion's expected revenue did not arrive as numeric"
    assert not list(tmp_path.glob(".*partial*")), "a partial file was left behind"


def test_the_relations_are_those_of_the_tableau_data_source() -> None:
    named = set(re.findall(r"table='\[public\]\.\[([a-z_]+)\]'", TDS.read_text()))
    assert named == set(RELATIONS)


def test_a_failed_extract_leaves_the_previous_one(reader_url: str, tmp_path: Path) -> None:
    out = tmp_path / "extracts" / "airline_dw.hyper"
    conn = warehouse.connect(reader_url)
    try:
        write_extract(conn, out, relations=("dim_flight",))
        before = out.read_bytes()
        with pytest.raises(LookupError, match="no relation 'no_such_view'"):
            write_extract(conn, out, relations=("dim_flight", "no_such_view"))
    finally:
        conn.close()
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["airline_dw.hyper"]


def test_the_command_writes_the_extract_and_reports_an_unreachable_warehouse(
        reader_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x" / "review.hyper"
    monkeypatch.setenv("DATABASE_URL", reader_url)
    assert main(["--out", str(out), "--log-format", "json"]) == 0
    assert set(read_extract(out)) == set(RELATIONS)
    capsys.readouterr()
    monkeypatch.setenv("DATABASE_URL", "postgresql://airline_bi:s3cret@127.0.0.1:1/airline_dw")
    assert main(["--out", str(tmp_path / "never.hyper"), "--log-format", "json"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the warehouse" in err and "DATABASE_URL" in err
    assert "s3cret" not in err
    assert not (tmp_path / "never.hyper").exists()


def test_bad_configuration_is_refused_naming_the_setting(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--batch-rows", "0"]) == 2
    assert "EXTRACT_BATCH_ROWS" in capsys.readouterr().err
