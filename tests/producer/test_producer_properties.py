"""Property tests over many seeds and settings: the stream's invariants always hold.

Never oversold; every booking refers to a scheduled, not yet departed flight and to free seats;
seats unique per flight; cancellations free seats; each flight's events in time order per topic;
prices consistent with buckets and discounts. Demand is pushed well past capacity and discounts
are switched on and off at random, because that is where overselling would show.
"""

from __future__ import annotations

from airline_core.events import BookingCreated, CabinAvailability, encode
from airline_core.ids import derive_id
from airline_producer.inventory import CabinInventory
from airline_producer.simulation import ActiveDiscount, FlightState, Simulation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from producer_support import check_stream, small_settings, tick_events


def random_discounts(seed: int, share: float) -> object:
    """A deterministic pseudo-random lookup: on some flights and ticks, some discount."""

    def lookup(flight_id: str, at: int) -> ActiveDiscount | None:
        h = int(derive_id(seed, flight_id, at // 7200)[:8], 16)
        if (h % 1000) / 1000 >= share:
            return None
        return ActiveDiscount(f"promo-{h % 7}", "JYMK"[h % 4], (5, 10, 25, 50, 100)[h % 5])

    return lookup


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), flights=st.integers(1, 8), days=st.integers(1, 2),
       load=st.floats(0.3, 1.6), cancel=st.floats(0, 0.5), flight_cancel=st.floats(0, 0.3),
       delay=st.floats(0, 1), promo_share=st.sampled_from([0.0, 0.3, 1.0]))
def test_stream_invariants(seed: int, flights: int, days: int, load: float, cancel: float,
                           flight_cancel: float, delay: float, promo_share: float) -> None:
    config = small_settings(seed=seed, flights=flights, days=days, target_load_factor=load,
                            booking_cancellation_rate=cancel,
                            flight_cancellation_rate=flight_cancel, flight_delay_rate=delay)
    lookup = random_discounts(seed, promo_share) if promo_share else None
    sim = Simulation(config, lookup)  # type: ignore[arg-type]
    ticks = list(sim.run())
    assert [t.index for t in ticks] == list(range(len(ticks)))
    for tick in ticks:
        assert all(tick.start <= e.event_time.timestamp() < tick.end for _, e in tick.events)
    views = check_stream(tick_events(ticks))
    assert len(views) == flights
    assert all(v.closed for v in views.values()), "every flight departs or is cancelled"
    ids = [e.event_id for _, e in tick_events(ticks)]
    assert len(ids) == len(set(ids)), "event ids unique"
    if promo_share == 1.0:
        assert any(isinstance(e, BookingCreated) and e.promo_id for _, e in tick_events(ticks)) \
            or sim.counts["bookings"] < 20


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_same_seed_same_bytes(seed: int) -> None:
    """Determinism in process: same seed and settings, byte-identical events, ids included."""
    config = small_settings(seed=seed, flights=3)

    def stream() -> list[bytes]:
        return [encode(e) for t in Simulation(config).run() for _, e in t.events]

    assert stream() == stream()


def test_adding_flights_keeps_other_flights_draws() -> None:
    """Per-flight generators: a flight's demand does not depend on which other flights exist."""
    small = Simulation(small_settings(flights=4, days=1))
    large = Simulation(small_settings(flights=4, days=2))
    list(small.run())
    list(large.run())
    first_day = {s.flight.flight_id: s.mean_parties for s in small.states.values()}
    for state in large.states.values():
        if state.flight.flight_id in first_day:
            assert state.mean_parties == first_day[state.flight.flight_id]


class _Uncached(Simulation):
    """Builds every snapshot's availability afresh (what the shared one must equal)."""

    def _availability(self, state: FlightState, code: str,
                      cabin: CabinInventory) -> CabinAvailability:
        state.availability.clear()
        return super()._availability(state, code, cabin)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), load=st.floats(0.5, 1.6), cancel=st.floats(0, 0.5),
       promo_share=st.sampled_from([0.3, 1.0]))
def test_a_shared_snapshot_availability_equals_one_built_afresh(
        seed: int, load: float, cancel: float, promo_share: float) -> None:
    """A snapshot reuses a cabin's availability until a sale, a release or a discount change:
    the stream is byte for byte the one that builds it every time, with discounts switched on
    and off and cancellations freeing seats."""
    config = small_settings(seed=seed, flights=3, target_load_factor=load,
                            booking_cancellation_rate=cancel)
    lookup = random_discounts(seed, promo_share)

    def stream(kind: type[Simulation]) -> list[bytes]:
        return [encode(e) for t in kind(config, lookup).run()  # type: ignore[arg-type]
                for _, e in t.events]

    assert stream(Simulation) == stream(_Uncached)
