"""Benchmarks, one module per component, run from the repository root with the workspace venv.

They are not tests (pytest collects only ``tests/``) and not part of any product package (no
image ships them). They build their input with :mod:`airline_testkit` only, never from
``tests/`` or a tool's private modules, so a benchmark measures the data the tests check.
``make bench`` runs all four at a size that takes a few minutes; by hand::

    .venv/bin/python -m benchmarks.producer --flights 216 --days 3   # producer flags, no broker
    .venv/bin/python -m benchmarks.engine --flights 400 [--seed 7] [--policy pace]  # no broker
    .venv/bin/python -m benchmarks.lake_writer [RECORDS]   # own Kafka or $KAFKA_BOOTSTRAP_SERVERS
    .venv/bin/python -m benchmarks.etl [--lake DIR] [--database-url URL]  # else throwaway ones
"""
