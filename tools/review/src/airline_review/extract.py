"""A Tableau ``.hyper`` extract of the warehouse's review relations, for users who cannot reach
Postgres: the same tables under the same names as ``tableau/airline.tds`` reads (schema
``public``), so a workbook moves from the live connection to the file with Tableau's *Replace
Data Source*.

The rows stream from a server-side cursor into Hyper's inserter a batch at a time, so memory
stays bounded whatever the warehouse's size. The file is written beside the target and renamed
over it at the end: a failed run leaves the previous extract as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from tableauhyperapi import (
    Connection as HyperConnection,
)
from tableauhyperapi import (
    CreateMode,
    HyperProcess,
    Inserter,
    SqlType,
    TableDefinition,
    TableName,
    Telemetry,
)

from airline_review.warehouse import Column, columns

#: What the extract holds: the relations of tableau/airline.tds (a test keeps them equal).
RELATIONS = ("dim_flight", "v_inventory_trend", "v_booking_pressure",
             "v_promotion_annotations", "fact_promotion_end", "fact_flight_outcome")
SCHEMA = "public"
#: Hyper's own process: no usage data sent to Tableau, no log files in the working directory.
HYPER_PARAMETERS = {"log_config": ""}
#: ``progress(relation, rows)``: a relation written.
Progress = Callable[[str, int], None]

_SIMPLE = {
    "text": SqlType.text, "character varying": SqlType.text, "character": SqlType.text,
    "smallint": SqlType.small_int, "integer": SqlType.int, "bigint": SqlType.big_int,
    "double precision": SqlType.double, "real": SqlType.double, "boolean": SqlType.bool,
    "date": SqlType.date, "timestamp with time zone": SqlType.timestamp_tz,
    "timestamp without time zone": SqlType.timestamp,
}
#: Hyper's largest numeric precision; wider (or unconstrained) numerics become doubles.
MAX_NUMERIC_PRECISION = 38


@dataclass(frozen=True)
class Mapped:
    """A warehouse column as the extract stores it: its Hyper type and how to select it."""

    column: Column
    hyper_type: SqlType
    select: sql.Composable


def map_column(column: Column) -> Mapped:
    """The Hyper type of a Postgres column. Types Hyper lacks are cast: numerics without a
    precision Hyper holds to double, anything else (json, arrays, ...) to its text form."""
    name = sql.Identifier(column.name)
    if column.data_type == "numeric":
        if column.precision is not None and column.precision <= MAX_NUMERIC_PRECISION:
            return Mapped(column, SqlType.numeric(column.precision, column.scale or 0), name)
        return Mapped(column, SqlType.double(), sql.SQL("{}::float8").format(name))
    simple = _SIMPLE.get(column.data_type)
    if simple is not None:
        return Mapped(column, simple(), name)
    return Mapped(column, SqlType.text(), sql.SQL("{}::text").format(name))


def _copy(conn: Connection, hyper: HyperConnection, relation: str, batch_rows: int) -> int:
    mapped = [map_column(c) for c in columns(conn, relation)]
    table = TableDefinition(TableName(SCHEMA, relation), [
        TableDefinition.Column(m.column.name, m.hyper_type) for m in mapped])
    hyper.catalog.create_table(table)
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(m.select for m in mapped), sql.Identifier(relation))
    written = 0
    with conn.cursor(name=f"extract_{relation}") as cur, Inserter(hyper, table) as inserter:
        cur.itersize = batch_rows
        cur.execute(query)
        while batch := cur.fetchmany(batch_rows):
            inserter.add_rows(batch)
            written += len(batch)
        inserter.execute()
    conn.commit()
    return written


def write_extract(conn: Connection, path: Path, *, relations: Sequence[str] = RELATIONS,
                  batch_rows: int = 10_000, progress: Progress | None = None
                  ) -> dict[str, int]:
    """Write ``relations`` of the warehouse behind ``conn`` to the extract ``path``; returns the
    rows written per relation."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial.hyper")
    partial.unlink(missing_ok=True)
    written: dict[str, int] = {}
    try:
        with HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU,
                          parameters=HYPER_PARAMETERS) as process, \
                HyperConnection(process.endpoint, str(partial),
                                CreateMode.CREATE_AND_REPLACE) as hyper:
            hyper.catalog.create_schema_if_not_exists(SCHEMA)
            for relation in relations:
                written[relation] = _copy(conn, hyper, relation, batch_rows)
                if progress:
                    progress(relation, written[relation])
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return written
