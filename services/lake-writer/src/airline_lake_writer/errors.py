"""Errors the lake writer raises on purpose (one root, a few specific kinds)."""

from airline_core.errors import AirlineError, RefusedToStartError


class LakeWriterError(AirlineError):
    """Root of every error the lake writer raises deliberately."""


class SourceMismatchError(LakeWriterError, RefusedToStartError):
    """The lake's offsets belong to another Kafka cluster or topic incarnation.

    Resuming would silently skip (or re-read) records, so the writer refuses to start unless the
    operator passes ``--new-source`` (``LAKE_NEW_SOURCE=true``).
    """


class LakeStorageError(LakeWriterError):
    """A roll could not be made durable (disk full, permission denied, read-only file system).

    The roll stays pending and is retried with backoff; no offset moves past it.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        #: A low-cardinality label for metrics, e.g. ``ENOSPC``.
        self.reason = reason


class CorruptLakeError(LakeWriterError):
    """The lake holds something that breaks its own rules (e.g. overlapping manifests)."""
