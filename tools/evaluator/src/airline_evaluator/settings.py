"""Settings of ``airline-evaluate`` (environment variables, each also a command line option).

The demand model's knobs are the producer's own (``PRODUCER_TARGET_LOAD_FACTOR``,
``PRODUCER_ELASTICITY_LEISURE``, ...: see ``airline-producer --help``), read from the
environment, so a policy can be evaluated under other demand assumptions without new flags."""

from __future__ import annotations

import dataclasses

from airline_core.config import LogSettings, group, non_negative, positive, setting

POLICIES = ("pace", "iteration2")


def _policies(value: str) -> str | None:
    names = [p.strip() for p in value.split(",") if p.strip()]
    unknown = sorted(set(names) - set(POLICIES))
    if not names:
        return "must name at least one policy"
    return f"has unknown policies {unknown} (known: {', '.join(POLICIES)})" if unknown else None


@dataclasses.dataclass(frozen=True)
class Settings:
    """How big the simulated world is and which policies to compare."""

    log: LogSettings = group(LogSettings)
    flights: int = setting("EVALUATE_FLIGHTS", 1000, "flights to simulate to departure",
                           check=positive)
    days: int = setting("EVALUATE_DAYS", 10, "departure days the flights spread over",
                        check=positive)
    seed: int = setting("EVALUATE_SEED", 42, "seed of the demand draws (the same for every "
                        "policy: each is compared with the baseline on the same customers)",
                        check=non_negative)
    policies: str = setting("EVALUATE_POLICIES", ",".join(POLICIES),
                            "comma-separated engine policies to evaluate in closed loop",
                            check=_policies)
    delay_minutes: float = setting(
        "EVALUATE_DELAY_MINUTES", 5.0,
        "simulated minutes between a decision and its effect on demand (as "
        "PRODUCER_PROMOTION_DELAY_MINUTES in the cluster)", check=non_negative)
    json_output: bool = setting("EVALUATE_JSON", False,
                                "print one JSON object (for reports) instead of the table",
                                flag="--json")

    @property
    def policy_names(self) -> list[str]:
        """The policies, in the order given."""
        return [p.strip() for p in self.policies.split(",") if p.strip()]
