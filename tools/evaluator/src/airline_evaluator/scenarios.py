"""Named demand scenarios: sets of the producer's own demand settings, defined here only.

A scenario changes only the demand model (the fields of
:class:`airline_producer.settings.Settings` named below) on top of the producer settings read
from the environment; the policies are never reconfigured per scenario. ``default`` changes
nothing (the producer's defaults, or whatever ``PRODUCER_*`` says).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airline_producer.settings import Settings as ProducerSettings


@dataclass(frozen=True)
class Scenario:
    """A named market: what it means and the producer demand settings it sets."""

    name: str
    meaning: str
    changes: tuple[tuple[str, float], ...] = ()

    def apply(self, producer: ProducerSettings) -> ProducerSettings:
        """``producer`` with this scenario's demand settings."""
        return producer.replace(**dict(self.changes)) if self.changes else producer

    def describe(self) -> str:
        """``field=value, ...`` (or ``producer defaults``)."""
        return ", ".join(f"{k}={v}" for k, v in self.changes) or "producer defaults"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"name": self.name, "meaning": self.meaning, "demand": dict(self.changes)}


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("default", "the producer's calibrated demand (target load factor 0.83)"),
    Scenario("weak", "weak market: demand sized for a 65 % load factor, many flights behind",
             (("target_load_factor", 0.65),)),
    Scenario("strong", "strong market: demand sized for a 92 % load factor",
             (("target_load_factor", 0.92),)),
    Scenario("volatile", "volatile demand: flight-to-flight coefficient of variation 0.25",
             (("demand_cv", 0.25),)),
    Scenario("inelastic", "price-insensitive customers (leisure -1.0, business -0.3)",
             (("elasticity_leisure", -1.0), ("elasticity_business", -0.3))),
    Scenario("elastic", "price-sensitive customers (leisure -2.0, business -1.0)",
             (("elasticity_leisure", -2.0), ("elasticity_business", -1.0))),
)}
