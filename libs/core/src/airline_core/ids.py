"""Deterministic identifiers.

Ids are derived, never random: the producer derives every id from its seed, and a component that
emits an event because of other events derives the new id from theirs. A replay therefore
re-emits the same ids and every sink can deduplicate on ``event_id``.
"""

import hashlib
import uuid

#: Fixed namespace for every id of the platform (uuid5 of the project name under the URL namespace).
AIRLINE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://airline-streaming.invalid/ids")
_NAMESPACE_BYTES = AIRLINE_NAMESPACE.bytes


def _uuid5_text(name: str) -> str:
    """``str(uuid.uuid5(AIRLINE_NAMESPACE, name))`` without building a ``UUID`` object (the
    producer and the engine derive an id for nearly every event they write)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def derive_id(*parts: object) -> str:
    """Return a stable UUID (as text) for the given parts, joined with ``/``.

    >>> derive_id("seed", 7, "booking", 3) == derive_id("seed", 7, "booking", 3)
    True
    """
    if not parts:
        raise ValueError("derive_id needs at least one part")
    return _uuid5_text("/".join(str(p) for p in parts))


def derived_event_id(input_event_id: str, role: str) -> str:
    """Id of an event emitted because of ``input_event_id``, in a named role (e.g. ``metrics``)."""
    return derive_id(input_event_id, role)
