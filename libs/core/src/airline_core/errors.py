"""Typed errors shared by every component.

Each component derives its own root error from :class:`AirlineError`, so a caller can catch
"anything this platform raised on purpose" without catching programming errors. An error
class carries the process exit code it stands for (``exit_code``), and
:func:`airline_core.runtime.service.exit_code_of` maps any exception to one, in one place.
"""

from typing import ClassVar


class AirlineError(Exception):
    """Root of every error the platform raises deliberately (exit code 1)."""

    exit_code: ClassVar[int] = 1


class ConfigError(AirlineError):
    """A setting is missing or malformed; the message names the setting (exit code 2)."""

    exit_code: ClassVar[int] = 2


class KafkaAccessDeniedError(ConfigError):
    """The broker's ACLs deny this identity something the component needs (exit code 2): a
    deployment error that no retry fixes; the message names the denial and the settings."""


class RefusedToStartError(AirlineError):
    """The process will not start on what it found (exit code 3): running would do harm, and
    restarting will not help until an operator acts (the message says how)."""

    exit_code: ClassVar[int] = 3


class InvalidEventError(AirlineError):
    """A Kafka record that does not decode or validate against the event contract."""


class UnsupportedSchemaError(InvalidEventError):
    """An event whose ``schema_version`` has a major version this reader does not know."""


class MissingTopicError(AirlineError):
    """A topic the component needs does not exist (auto-creation is disabled on purpose)."""


class TopicLayoutError(AirlineError):
    """Topics that must be co-partitioned have different partition counts."""
