"""Prometheus metrics of the lake writer (module level; labels: topic, partition, reason)."""

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter("lake_records_total",
                  "Records landed in the lake (counted once their roll's manifest is durable)",
                  ["topic"])
BYTES = Counter("lake_bytes_total", "Bytes landed in the lake's data files", ["topic"])
INVALID = Counter("lake_invalid_records_total",
                  "Landed records that are not valid events (kept raw; the ETL rejects them)",
                  ["topic"])
DIVERTED = Counter("lake_diverted_records_total",
                   "Records that cannot be stored as a line (null or multi-line value), sent to "
                   "dead_letter and listed in the manifest", ["topic"])
ROLLS = Counter("lake_rolls_total", "Rolls made durable (files + manifest)", ["topic", "reason"])
FILES = Counter("lake_files_total", "Data files made durable", ["topic"])
FSYNC_SECONDS = Histogram("lake_fsync_seconds", "Latency of one fsync (file or directory)",
                          buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                   0.5, 1.0, 2.5))
ROLL_SECONDS = Histogram("lake_roll_write_seconds",
                         "Time to make one roll durable (all files, manifest, commit)")
BUFFERED = Gauge("lake_buffered_records", "Records consumed but not yet in a durable roll",
                 ["topic"])
LAG = Gauge("lake_consumer_lag", "Records between the read position and the last stable offset "
            "(from librdkafka statistics, computed as for every consumer of the platform)",
            ["topic", "partition"])
STORAGE_ERRORS = Counter("lake_storage_errors_total",
                         "Failed attempts to make a roll durable (retried with backoff)",
                         ["reason"])
STORAGE_BLOCKED = Gauge("lake_storage_blocked",
                        "1 while rolls wait for storage to recover (consumption paused)")
ORPHANS_DELETED = Counter("lake_orphan_files_deleted_total",
                          "Files of rolls without a manifest deleted on resume (to be rewritten)",
                          ["topic"])
RESUMES = Counter("lake_partition_resumes_total",
                  "Partitions assigned and positioned from the lake's manifests", ["topic"])
DROPPED = Counter("lake_revoked_buffered_records_total",
                  "Buffered records dropped on revocation (the next owner rereads them)",
                  ["topic"])
EXPIRED = Counter("lake_expired_offsets_total",
                  "Offsets deleted by Kafka retention before they landed (writer down longer than "
                  "the topic's retention); at most this many records were lost", ["topic"])
