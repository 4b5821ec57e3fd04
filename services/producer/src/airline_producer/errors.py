"""The producer's errors: one root, so callers can catch what the producer raises on purpose."""

from airline_core.errors import AirlineError


class ProducerError(AirlineError):
    """Root of every error the producer raises deliberately."""


class PromotionSourceError(ProducerError):
    """A promotion source (file, topic, Redis) could not be read or held a malformed decision."""


class DeliveryError(ProducerError):
    """Kafka refused or failed to deliver records, or a transaction could not be committed."""
