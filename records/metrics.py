"""Prometheus metrics of the read side (aggregated across gunicorn workers)."""

from prometheus_client import Counter, Histogram

WAREHOUSE_QUERIES = Counter(
    "latam_warehouse_queries_total", "Warehouse calls", ["operation", "outcome"]
)
WAREHOUSE_LATENCY = Histogram(
    "latam_warehouse_query_duration_seconds",
    "Warehouse call latency",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# What BigQuery says each query processed (on demand, what it bills: at least 10 MiB per
# table read); bqemulator reports 0.
WAREHOUSE_BYTES_PROCESSED = Counter(
    "latam_warehouse_bytes_processed_total", "Bytes processed by warehouse queries", ["operation"]
)
CACHE_REQUESTS = Counter("latam_cache_requests_total", "Records cache lookups", ["kind", "result"])
