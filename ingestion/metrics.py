"""Prometheus metrics of the subscriber (one process; served on METRICS_PORT).

Write calls and their latency are the repository's own `latam_warehouse_queries_total`
and `latam_warehouse_query_duration_seconds` with `operation="insert"`.
"""

from prometheus_client import Counter, Gauge, Histogram

RECEIVED = Counter("latam_ingest_messages_received_total", "Messages delivered to the subscriber")
STORED = Counter("latam_ingest_messages_stored_total", "Messages written to the warehouse, acked")
DEAD_LETTERED = Counter(
    "latam_ingest_messages_dead_lettered_total",
    "Messages published to the dead-letter topic, acked",
    ["error_code"],
)
RETRIED = Counter(
    "latam_ingest_messages_retried_total",
    "Messages given back for redelivery (dead letter unpublished, or shutdown)",
    ["reason"],
)
BATCH_SIZE = Histogram(
    "latam_ingest_batch_size",
    "Rows per warehouse write",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
)
OUTSTANDING = Gauge(
    "latam_ingest_outstanding_messages", "Messages held by the subscriber, not yet settled"
)
STREAMS_OPEN = Gauge(
    "latam_ingest_streams_open", "Streaming pulls the subscriber holds on its subscription"
)
WAREHOUSE_UP = Gauge(
    "latam_ingest_warehouse_up",
    "1 while warehouse writes succeed, 0 while they fail (messages held, not nacked)",
)
WRITE_FAILURES = Counter(
    "latam_ingest_write_failures_total",
    "Failed warehouse writes: unavailable and quota pass, denied and missing need an operator",
    ["reason"],
)
# Publish → confirmed write of each stored row: the freshness SLO (99 % within 60 s,
# Terraform) is read from it, so 60 is a boundary and the buckets reach an hour.
PUBLISH_TO_STORED = Histogram(
    "latam_ingest_publish_to_stored_seconds",
    "Seconds from a stored record's Pub/Sub publish_time to its confirmed warehouse write",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 300, 600, 1800, 3600),
)
OLDEST_UNACKED = Gauge(
    "latam_ingest_oldest_unacked_message_age_seconds",
    "Age since publish_time of the oldest message held for writing (buffered or being"
    " written), 0 when none; computed at scrape time",
)
BATCH_SPLITS = Counter(
    "latam_ingest_batch_splits_total",
    "Batches split in halves because the warehouse refused the request as a whole",
)
