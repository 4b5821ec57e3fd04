"""Prometheus metrics of the engine (module level, low-cardinality labels)."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("engine_events_processed_total", "Input records processed", ["topic"])
DEAD_LETTERS = Counter("engine_dead_letters_total", "Records sent to dead_letter", ["topic"])
SKIPPED = Counter("engine_redelivered_skipped_total",
                  "Input records skipped because the restored state already reflects them",
                  ["topic"])
DECISION_LATENCY = Histogram(
    "engine_decision_latency_seconds",
    "Wall time from reading an input record to its decision's transaction committing",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
PROMOTIONS = Counter("engine_promotions_total", "Promotion decisions committed",
                     ["kind", "tier", "reason"])
FLIGHTS = Gauge("engine_flights_tracked", "Flights in the state of assigned partitions")
RESTORED_RECORDS = Counter("engine_restore_records_total", "Changelog records read on restore")
RESTORE_SECONDS = Counter("engine_restore_seconds_total", "Seconds spent restoring state")
TRANSACTIONS = Counter("engine_transactions_total", "Kafka transactions", ["outcome"])
CONSUMER_LAG = Gauge("engine_consumer_lag", "Records behind the end of an input partition",
                     ["topic", "partition"])
REDIS_WRITES = Counter("engine_redis_offer_writes_total", "Live offer writes to Redis",
                       ["outcome"])
BUFFERED = Gauge("engine_merge_buffered", "Records waiting behind the event-time watermark")
CONSUMER_REPLACEMENTS = Counter(
    "engine_consumer_replacements_total",
    "Input consumers replaced after a fatal error (state restored from the changelog)")
