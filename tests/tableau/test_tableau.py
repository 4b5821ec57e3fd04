"""The Tableau files (tableau/airline.tds, tableau/airline.twb) against the warehouse: both are
well-formed, connect as the read-only reader to airline_dw, and every table, view and column
they name exists in the schema the ETL's migrations build, with the type Tableau was told."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest
from airline_etl.warehouse import migrate

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
TDS, TWB = ROOT / "tableau" / "airline.tds", ROOT / "tableau" / "airline.twb"
SHEETS = {"Inventory trend with promotion annotations",
          "Booking pressure as departure approaches", "Promotion outcomes"}
DASHBOARD_VIEWS = {"v_inventory_trend", "v_booking_pressure", "v_promotion_annotations"}
# Fields Tableau makes itself, never a warehouse column.
GENERATED = {":Measure Names", "Multiple Values", "Number of Records", ":Measure Values"}
# Postgres data_type -> the local-type Tableau records for it.
LOCAL_TYPE = {"text": "string", "character varying": "string", "integer": "integer",
              "bigint": "integer", "smallint": "integer", "numeric": "real",
              "double precision": "real", "real": "real", "timestamp with time zone": "datetime",
              "timestamp without time zone": "datetime", "date": "date", "boolean": "boolean"}
BRACKETED = re.compile(r"\[([^\[\]]+)\]")
# A field as shelves, encodings, filters and styles name it: [datasource].[derivation:name:kind]
# or [datasource].[name].
QUALIFIED = re.compile(r"\[(federated\.[^\[\]]+)\]\.\[([^\[\]]+)\]")
INSTANCE = re.compile(r"^[a-z]+:(.+):[a-z]+$")


@dataclass
class References:
    """What a Tableau file names: relations, (relation, column, local-type) of the metadata,
    and the problems found resolving every field reference to a warehouse column."""

    relations: set[str] = field(default_factory=set)
    columns: set[tuple[str, str, str]] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def _unbracket(text: str) -> str:
    return text[1:-1] if text.startswith("[") and text.endswith("]") else text


def _table_name(table: str) -> str:
    """`[public].[v_inventory_trend]` -> `v_inventory_trend`."""
    return BRACKETED.findall(table)[-1] if BRACKETED.findall(table) else table


def _field_name(token: str) -> str:
    """`none:seats_remaining:qk` -> `seats_remaining`; a plain name is itself."""
    match = INSTANCE.match(token)
    return match.group(1) if match else token


def references(root: ET.Element) -> References:
    """Every relation and column a .tds or .twb names, and every field reference (formulas,
    relationship expressions, dependencies, shelves, encodings, filters, styles, cards) that does
    not resolve through the metadata records to a column of a relation (or to a calculation)."""
    refs = References()
    local: dict[str, tuple[str, str]] = {}  # local name -> (relation, remote column)
    calcs: dict[str, str] = {}  # calculation name -> formula
    for ds in root.iter("datasource"):
        if ds.find("connection") is None:
            continue  # a worksheet's reference to the workbook's datasource
        aliases: dict[str, str] = {}
        for rel in ds.iter("relation"):
            if rel.get("type") == "table":
                table = _table_name(rel.get("table", ""))
                refs.relations.add(table)
                aliases[rel.get("name", table)] = table
            elif rel.get("type") not in (None, "collection", "join"):
                refs.problems.append(f"relation of type {rel.get('type')} (custom SQL?) unchecked")
        for rec in ds.iter("metadata-record"):
            if rec.get("class") != "column":
                continue
            remote, parent = rec.findtext("remote-name"), rec.findtext("parent-name")
            name, ltype = rec.findtext("local-name"), rec.findtext("local-type", "")
            if not (remote and parent and name):
                refs.problems.append(f"incomplete metadata-record {name or remote}")
                continue
            relation = aliases.get(_unbracket(parent))
            if relation is None:
                refs.problems.append(f"metadata-record {name}: parent {parent} is no relation")
                continue
            refs.columns.add((relation, remote, ltype))
            local[_unbracket(name)] = (relation, remote)
        for col in ds.iter("column"):
            calc = col.find("calculation")
            if calc is not None and col.get("name"):
                calcs[_unbracket(col.get("name", ""))] = calc.get("formula", "")
    known = set(local) | set(calcs) | GENERATED

    def check(name: str, where: str) -> None:
        if name not in known:
            refs.problems.append(f"{where}: [{name}] is no column of a relation nor a calculation")

    for name, formula in calcs.items():
        for token in BRACKETED.findall(re.sub(r'"[^"]*"|\'[^\']*\'', "", formula)):
            check(token, f"formula of {name}")
    for element in root.iter():
        if element.tag == "expression" and element.get("op", "").startswith("["):
            check(_unbracket(element.get("op", "")), "relationship")
        if element.tag == "column" and element.get("name") and element.find(
                "calculation") is None and element.get("name", "").startswith("["):
            check(_unbracket(element.get("name", "")), "column")
        if element.tag == "column-instance":
            check(_unbracket(element.get("column", "")), "column-instance")
        texts = [*element.attrib.values(), element.text or ""]
        for text in texts:
            for _, token in QUALIFIED.findall(text):
                check(_field_name(token), f"<{element.tag}>")
    return refs


def warehouse_columns(url: str) -> dict[tuple[str, str], str]:
    """(relation, column) -> data_type of the schema the migrations build."""
    conn = psycopg2.connect(url)
    try:
        migrate(conn)
        with conn.cursor() as cur:
            cur.execute("""SELECT table_name, column_name, data_type FROM information_schema.columns
                           WHERE table_schema = current_schema()""")
            return {(t, c): d for t, c, d in cur.fetchall()}
    finally:
        conn.close()


def missing(refs: References, schema: dict[tuple[str, str], str]) -> list[str]:
    """What `refs` names that `schema` lacks (or types differently), plus its own problems."""
    relations = {t for t, _ in schema}
    out = list(refs.problems)
    out += [f"no relation {r}" for r in sorted(refs.relations - relations)]
    for relation, column, ltype in sorted(refs.columns):
        if (relation, column) not in schema:
            out.append(f"no column {relation}.{column}")
        elif ltype and LOCAL_TYPE.get(schema[relation, column]) != ltype:
            out.append(f"{relation}.{column} is {schema[relation, column]}, Tableau says {ltype}")
    return out


@pytest.fixture(scope="module")
def files() -> dict[str, ET.Element]:
    return {path.name: ET.parse(path).getroot() for path in (TDS, TWB)}  # raises if malformed


def test_every_relation_and_column_exists_in_the_warehouse(
        files: dict[str, ET.Element], isolated_database_url: str) -> None:
    schema = warehouse_columns(isolated_database_url)
    assert DASHBOARD_VIEWS | {"dim_flight"} <= {t for t, _ in schema}
    for name, root in files.items():
        refs = references(root)
        assert DASHBOARD_VIEWS | {"dim_flight"} <= refs.relations, name
        assert len(refs.columns) > 50, name
        assert missing(refs, schema) == [], name


def test_the_data_source_and_the_workbook_describe_the_same_tables(
        files: dict[str, ET.Element]) -> None:
    tds, twb = references(files["airline.tds"]), references(files["airline.twb"])
    assert tds.relations == twb.relations
    assert tds.columns == twb.columns


def test_both_connect_as_the_bi_reader_to_airline_dw(files: dict[str, ET.Element]) -> None:
    assert files["airline.tds"].tag == "datasource"
    assert files["airline.tds"].get("inline") == "true"
    for name, root in files.items():
        conns = [c for nc in root.iter("named-connection") for c in nc.iter("connection")]
        assert conns, name
        for conn in conns:
            assert conn.get("class") == "postgres", name
            assert (conn.get("server"), conn.get("port"), conn.get("dbname"),
                    conn.get("username")) == ("localhost", "5432", "airline_dw", "airline_bi")
            assert conn.get("password") is None, f"{name} must not embed a password"
        federated = [c for c in root.iter("connection") if c.get("class") == "federated"]
        assert len(federated) == 1, name


def test_relationships_join_on_flight_id_through_dim_flight(files: dict[str, ET.Element]) -> None:
    for name, root in files.items():
        graph = root.find(".//object-graph")
        assert graph is not None, name
        objects = {o.get("id"): _table_name(o.find(".//relation").get("table", ""))  # type: ignore[union-attr]
                   for o in graph.iter("object")}
        linked: set[str] = set()
        for rel in graph.iter("relationship"):
            first = objects[rel.find("first-end-point").get("object-id")]  # type: ignore[union-attr]
            second = objects[rel.find("second-end-point").get("object-id")]  # type: ignore[union-attr]
            ops = [_unbracket(e.get("op", "")) for e in rel.iter("expression")][1:]
            if first == "dim_flight":
                assert [_field_name(o).split(" (")[0] for o in ops] == ["flight_id"] * 2, name
                linked.add(second)
        assert linked >= DASHBOARD_VIEWS, name


def test_the_workbook_has_the_three_sheets_with_route_and_departure_filters(
        files: dict[str, ET.Element]) -> None:
    root = files["airline.twb"]
    sheets = {ws.get("name"): ws for ws in root.iter("worksheet")}
    assert set(sheets) == SHEETS
    for name, sheet in sheets.items():
        filtered = {f.get("column", "") for f in sheet.iter("filter")}
        assert any(":route:" in c for c in filtered), name
        assert any("departure" in c for c in filtered), name
    zones = {z.get("name") for d in root.iter("dashboard") for z in d.iter("zone")} - {None}
    assert zones == SHEETS, "every sheet on a dashboard, and no zone naming a missing sheet"
    formulas = {c.get("caption"): c.find("calculation").get("formula")  # type: ignore[union-attr]
                for c in root.iter("column") if c.find("calculation") is not None}
    assert formulas["Days to departure"] == "[minutes_to_departure (v_booking_pressure)] / 1440"
    booking = ET.tostring(sheets["Booking pressure as departure approaches"], encoding="unicode")
    assert "reverse='true'" in booking.replace('"', "'")
    assert "p0.0%" in booking


SNIPPET = """<datasource inline='true' version='18.1'>
  <connection class='federated'>
    <relation name='v_inventory_trend' table='[public].[v_inventory_trend]' type='table' />
    <metadata-records>
      <metadata-record class='column'>
        <remote-name>seats_left</remote-name><local-name>[seats_left]</local-name>
        <parent-name>[v_inventory_trend]</parent-name><local-type>integer</local-type>
      </metadata-record>
      <metadata-record class='column'>
        <remote-name>flight_id</remote-name><local-name>[flight_id]</local-name>
        <parent-name>[v_inventory_trend]</parent-name><local-type>string</local-type>
      </metadata-record>
    </metadata-records>
  </connection>
  <column caption='Days' datatype='real' name='[Calculation_1]' role='measure' type='quantitative'>
    <calculation class='tableau' formula='[minutes_left] / 1440' />
  </column>
  <column name='[seat_count]' datatype='integer' role='measure' type='quantitative' />
  <rows>[federated.x].[sum:seats_remaining:qk]</rows>
</datasource>"""


def test_a_renamed_or_unknown_column_is_reported() -> None:
    refs = references(ET.fromstring(SNIPPET))
    schema = {("v_inventory_trend", "flight_id"): "text",
              ("v_inventory_trend", "seats_remaining"): "integer"}
    problems = missing(refs, schema)
    assert "no column v_inventory_trend.seats_left" in problems
    assert any("formula of Calculation_1: [minutes_left]" in p for p in problems)
    assert any("[seat_count]" in p for p in problems)
    assert any("<rows>: [seats_remaining]" in p for p in problems)  # not a local name here
    assert not any("flight_id" in p for p in problems)
    typed = missing(refs, {**schema, ("v_inventory_trend", "flight_id"): "integer"})
    assert "v_inventory_trend.flight_id is integer, Tableau says string" in typed
