"""``airline-engine``: the stateful exactly-once inventory tracking and promotion engine."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``airline-engine`` (see :mod:`airline_engine.app`)."""
    from airline_engine.app import main as run

    return run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
