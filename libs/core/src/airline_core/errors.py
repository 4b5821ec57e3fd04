"""Typed errors shared by every component.

Each component derives its own root error from :class:`AirlineError`, so a caller can catch
"anything this platform raised on purpose" without catching programming errors.
"""


class AirlineError(Exception):
    """Root of every error the platform raises deliberately."""


class ConfigError(AirlineError):
    """A setting is missing or malformed; the message names the setting."""


class InvalidEventError(AirlineError):
    """A Kafka record that does not decode or validate against the event contract."""


class UnsupportedSchemaError(InvalidEventError):
    """An event whose ``schema_version`` has a major version this reader does not know."""


class MissingTopicError(AirlineError):
    """A topic the component needs does not exist (auto-creation is disabled on purpose)."""


class TopicLayoutError(AirlineError):
    """Topics that must be co-partitioned have different partition counts."""
