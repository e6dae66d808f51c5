"""gunicorn settings, read from the working directory: Cloud Run conventions.

Binds $PORT on all interfaces when Cloud Run sets it, 127.0.0.1:8000 otherwise. Cloud
Run's concurrency must equal workers × threads: Terraform sets both (2 × 4 on 1 vCPU);
the defaults here (4 × 2) suit a 2-core machine. Prometheus metrics are aggregated
across workers through a multiprocess directory and served by the master on
METRICS_ADDRESS:API_METRICS_PORT, never on the API's port: Cloud Run routes ingress to
$PORT only, so API consumers cannot reach them (a sidecar in the instance scrapes them).
"""

import os
import shutil
import tempfile

bind = f"0.0.0.0:{os.environ['PORT']}" if os.environ.get("PORT") else "127.0.0.1:8000"
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 8  # inside Cloud Run's 10 s SIGTERM grace period
keepalive = 5
max_requests = 20000
max_requests_jitter = 2000
# The app logs each request as JSON without its path (paths carry record ids).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# gunicorn's own DEBUG lines name each request's path, and paths carry record ids.
_gunicorn_level = "INFO" if loglevel == "debug" else loglevel.upper()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "latam.jsonlog.cloud_logging_formatter"},
    },
    "filters": {"redact": {"()": "latam.jsonlog.GunicornRequestRedactor"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["redact"],
            "stream": "ext://sys.stdout",
        }
    },
    "root": {"handlers": ["stdout"], "level": loglevel.upper()},
    "loggers": {
        "gunicorn.error": {"handlers": ["stdout"], "level": _gunicorn_level, "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
    },
}

# The API's Prometheus endpoint (0 turns it off). Another port than the subscriber's
# METRICS_PORT (9100), so that both can run on one machine.
_metrics_port = int(os.environ.get("API_METRICS_PORT", "9101"))
_metrics_address = os.environ.get("METRICS_ADDRESS", "127.0.0.1")

# Workers inherit this directory; it must be empty when the master starts.
_metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="latam-prometheus-")
)
shutil.rmtree(_metrics_dir, ignore_errors=True)
os.makedirs(_metrics_dir, exist_ok=True)


def when_ready(server):
    """Serve every worker's metrics from the master, which outlives the workers."""
    if not _metrics_port:
        return
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(_metrics_port, addr=_metrics_address, registry=registry)
    server.log.info("metrics on http://%s:%s/metrics", _metrics_address, _metrics_port)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    # Move the loaded app's objects out of the collector's reach: full collections then
    # walk only per-request garbage, which keeps them from showing up as tail latency.
    import gc

    gc.freeze()
