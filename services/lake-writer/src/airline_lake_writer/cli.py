"""``airline-lake-writer``: land every record of every lake topic in the raw lake, exactly once.

Files are immutable and named by topic, partition and offsets; a roll's manifest is written
after its files are durable and offsets are committed only after that. On start the writer
resumes at the lake's own record of progress, and refuses a Kafka source other than the one the
lake recorded unless started with --new-source.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``airline-lake-writer`` (see :mod:`airline_lake_writer.app`)."""
    from airline_lake_writer.app import main as run

    return run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
