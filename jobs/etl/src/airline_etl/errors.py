"""Errors of the ETL job; each maps to one exit code in :mod:`airline_etl.cli`."""

from typing import Any

from airline_core.errors import AirlineError


class EtlError(AirlineError):
    """Root of every error the ETL raises on purpose (exit code 1 unless a subclass says)."""


class LakeError(EtlError):
    """The lake is inconsistent: a manifest that does not parse, a data file missing or altered."""


class WarehouseError(EtlError):
    """Postgres refused something (connection, migration, load); the transaction was rolled back."""


class MigrationError(WarehouseError):
    """A migration file was edited after it was applied, or a migration failed."""


class RejectLimitError(EtlError):
    """More rows than ``ETL_MAX_REJECT_SHARE`` were invalid, so nothing was loaded (exit 3).

    ``summary`` is the run's :class:`~airline_etl.app.RunSummary`, for the CLI to print.
    """

    def __init__(self, message: str, summary: Any = None) -> None:
        super().__init__(message)
        self.summary = summary


class PostCommitError(EtlError):
    """The run's transaction is committed (the warehouse holds it), but a step after the commit
    failed: gold ``CURRENT`` was not switched to the run (exit 1). Gold still shows the previous
    run; the next run switches it (under the load lock) before it does anything else.

    ``summary`` is the run's :class:`~airline_etl.app.RunSummary`, for the CLI to print.
    """

    def __init__(self, message: str, summary: Any = None) -> None:
        super().__init__(message)
        self.summary = summary
