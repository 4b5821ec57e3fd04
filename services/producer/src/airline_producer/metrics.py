"""Prometheus metrics of the producer (module level, low-cardinality labels)."""

from prometheus_client import Counter, Gauge

EVENTS = Counter("producer_events_total", "Events produced (committed), by topic and event type",
                 ["topic", "event_type"])
BOOKINGS = Counter("producer_bookings_total", "Bookings created")
PASSENGERS = Counter("producer_passengers_total", "Passengers booked")
CANCELLATIONS = Counter("producer_booking_cancellations_total", "Bookings cancelled")
DELIVERY_ERRORS = Counter("producer_delivery_errors_total",
                          "Transactions that failed to deliver or commit (aborted)")
TRANSACTIONS = Counter("producer_transactions_total", "Kafka transactions committed")
TICKS = Counter("producer_ticks_total", "Simulated ticks committed (or skipped on restart)",
                ["outcome"])
SIMULATED_TIME = Gauge("producer_simulated_time_seconds",
                       "End of the last committed tick, simulated epoch seconds")
LIVE_DISCOUNTS = Gauge("producer_live_discounts", "Flights with a live discount this tick")
PROMOTION_SOURCE_ERRORS = Counter(
    "producer_promotion_source_errors_total",
    "Failed reads of a live promotion source (the last known offers stay in effect), by source "
    "and reason (unavailable, malformed)", ["source", "reason"])
RECOVERY_RECORDS = Counter("producer_recovery_records_total",
                           "Records read at start while looking for the last committed tick")
