"""UTC time helpers: the contract's timestamps are ISO-8601 UTC with a trailing ``Z``."""

from datetime import UTC, datetime


def to_utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; naive datetimes are rejected because their zone is a guess."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the contract needs timezone-aware UTC times")
    return value.astimezone(UTC)


def format_utc(value: datetime) -> str:
    """Format as ISO-8601 UTC with ``Z`` (seconds precision unless there are microseconds)."""
    text = to_utc(value).isoformat()
    return text.replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """Parse an ISO-8601 timestamp (``Z`` or offset) into an aware UTC datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return to_utc(value)

