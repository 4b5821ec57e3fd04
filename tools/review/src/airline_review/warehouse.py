"""Reading the warehouse: a read-only session, and the columns of its review relations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg2
from airline_core.config import Secret, redact_url
from psycopg2.extensions import connection as Connection


@dataclass(frozen=True)
class Column:
    """A column as Postgres describes it (``information_schema.columns``)."""

    name: str
    data_type: str
    precision: int | None
    scale: int | None


def connect(url: str) -> Connection:
    """A read-only session in UTC: a report or extract can never change the warehouse, and every
    timestamp it reads is UTC whatever the server's time zone."""
    conn = psycopg2.connect(url, application_name="airline-review")
    conn.set_session(readonly=True)
    with conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
    conn.commit()
    return conn


def connect_or_log(url: Secret, log: Any) -> Connection | None:
    """:func:`connect`, or None once ``log`` says why not (naming ``DATABASE_URL``; the
    password never printed)."""
    try:
        return connect(url.reveal())
    except psycopg2.Error as e:
        log.error("cannot reach the warehouse", error=str(e).strip(), setting="DATABASE_URL",
                  database=redact_url(url.reveal()))
        return None


def columns(conn: Connection, relation: str) -> list[Column]:
    """The columns of ``relation`` in the session's schema, in order; an error if there is none
    (the warehouse is not migrated, or the reader may not see it)."""
    with conn.cursor() as cur:
        cur.execute("""SELECT column_name, data_type, numeric_precision, numeric_scale
                       FROM information_schema.columns
                       WHERE table_schema = current_schema() AND table_name = %s
                       ORDER BY ordinal_position""", (relation,))
        found = [Column(*row) for row in cur.fetchall()]
    conn.commit()
    if not found:
        raise LookupError(f"the warehouse has no relation {relation!r} readable by this role "
                          "(run airline-etl once, and check DATABASE_URL's user)")
    return found


def rows(conn: Connection, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
         ) -> list[dict[str, Any]]:
    """The rows of ``sql`` as dicts by column name."""
    with conn.cursor() as cur:
        cur.execute(sql, params)
        names = [d.name for d in cur.description or ()]
        out = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    conn.commit()
    return out
