"""Shared by every test and benchmark, so each is written once and behaves the same everywhere.

- :mod:`airline_testkit.kafka`: read topics to their end, create topics, write records in a
  transaction.
- :mod:`airline_testkit.events`: small hand-made events, one valid event per lake topic, and a
  small deterministic "world" of every event type.
- :mod:`airline_testkit.synthetic`: a deterministic synthetic stream of many flights.
- :mod:`airline_testkit.lake`: lakes written in the lake writer's layout (or the old one).
- :mod:`airline_testkit.logs`: the JSON log records of a component's stderr.
- :mod:`airline_testkit.net`: a free local port for a throwaway server.

Product packages never import it (it is a dev dependency of the workspace only).
"""
