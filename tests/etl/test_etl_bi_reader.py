"""The read-only BI reader (migration 007): airline_bi reads every review object of the
warehouse the ETL builds and can write, create or read bookkeeping nothing."""

from __future__ import annotations

import psycopg2
import pytest
from airline_devstack.postgres import BI_READER, as_bi_reader
from airline_etl.warehouse import migrate
from psycopg2 import errors

pytestmark = pytest.mark.postgres
DENIED = r"permission denied|must be owner"


def review_objects(url: str) -> tuple[list[str], list[str]]:
    """(dim_/fact_/v_ objects, other tables) of the warehouse's schema, once migrated."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        migrate(conn)
        cur.execute(r"""SELECT relname, relname ~ '^(dim|fact|v)_' FROM pg_class
                        WHERE relnamespace = current_schema()::regnamespace
                          AND relkind IN ('r', 'v', 'm', 'p') ORDER BY relname""")
        rows = cur.fetchall()
    conn.close()
    return [n for n, review in rows if review], [n for n, review in rows if not review]


def test_the_bi_reader_reads_every_review_object_and_nothing_else(
        isolated_database_url: str) -> None:
    with psycopg2.connect(isolated_database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (BI_READER,))
        if not cur.fetchall():
            pytest.skip(f"the test database has no role {BI_READER} (airline-stack creates it)")
    conn.close()
    review, bookkeeping = review_objects(isolated_database_url)
    assert {"dim_flight", "fact_booking", "v_inventory_trend", "v_promotion_annotations",
            "v_booking_pressure"} <= set(review)
    assert {"etl_event_ledger", "schema_migrations"} <= set(bookkeeping)
    reader = psycopg2.connect(as_bi_reader(isolated_database_url))
    reader.autocommit = True
    try:
        with reader.cursor() as cur:
            for name in review:
                cur.execute(f'SELECT count(*) FROM "{name}"')  # granted, or this raises
            denied = {
                "read bookkeeping": "SELECT count(*) FROM etl_event_ledger",
                "insert": "INSERT INTO dim_flight SELECT * FROM dim_flight",
                "update": "UPDATE dim_flight SET flight_id = flight_id",
                "delete": "DELETE FROM fact_booking",
                "truncate": "TRUNCATE fact_booking",
                "create": "CREATE TABLE bi_scratch (x int)",
                "drop": "DROP VIEW v_inventory_trend",
            }
            for what, statement in denied.items():
                with pytest.raises(errors.InsufficientPrivilege, match=DENIED):
                    cur.execute(statement)
                    pytest.fail(f"the BI reader could {what}")
    finally:
        reader.close()
