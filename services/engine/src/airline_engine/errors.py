"""Errors the engine raises on purpose (all under :class:`EngineError`)."""

from airline_core.errors import AirlineError


class EngineError(AirlineError):
    """Root of every error the engine raises deliberately."""


class StateFormatError(EngineError):
    """A changelog record has a state format this engine cannot read (written by a newer one).

    The engine stops rather than guess: restoring a half-understood state would silently change
    decisions. Roll the newer engine back in, or upgrade this one.
    """


class RestoreError(EngineError):
    """State could not be restored from the changelog in time."""


class RewindError(EngineError):
    """After an aborted transaction the committed input offsets could not be read: the engine
    stops rather than resume from a guessed position."""
