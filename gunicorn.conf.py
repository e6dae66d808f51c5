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
from pathlib import Path
from typing import Protocol

from latam.environment import env_load

# The same source as the Django settings: the environment over the local .env file.
env = env_load()

bind = f"0.0.0.0:{env.int('PORT')}" if env.str("PORT", default="") else "127.0.0.1:8000"
workers: int = env.int("GUNICORN_WORKERS", default=4)
threads: int = env.int("GUNICORN_THREADS", default=2)
worker_class = "gthread"
timeout: int = env.int("GUNICORN_TIMEOUT", default=30)
graceful_timeout = 8  # inside Cloud Run's 10 s SIGTERM grace period
keepalive = 5
max_requests = 20000
max_requests_jitter = 2000
# The app logs each request as JSON without its path (paths carry record ids).
accesslog = None
errorlog = "-"
loglevel: str = env.str("LOG_LEVEL", default="info").lower()
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
_metrics_port: int = env.int("API_METRICS_PORT", default=9101)
_metrics_address: str = env.str("METRICS_ADDRESS", default="127.0.0.1")

# Workers inherit the multiprocess directory through the environment. One we make is
# ours to remove at exit; one we are given is only cleared of the metric files a
# previous server left there (stale counts would add up with ours), nothing else.
_metrics_given: str = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
_metrics_dir = Path(_metrics_given or tempfile.mkdtemp(prefix="latam-prometheus-"))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)
_metrics_dir.mkdir(parents=True, exist_ok=True)
for _stale in _metrics_dir.glob("*.db"):
    _stale.unlink()


# What the hooks use of gunicorn's Arbiter and Worker (gunicorn ships no types).
class _Log(Protocol):
    def info(self, msg: str, *args: object) -> None: ...


class _Arbiter(Protocol):
    log: _Log


class _Worker(Protocol):
    pid: int


def when_ready(server: _Arbiter) -> None:
    """Serve every worker's metrics from the master, which outlives the workers."""
    if not _metrics_port:
        return
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(_metrics_port, addr=_metrics_address, registry=registry)
    server.log.info("metrics on http://%s:%s/metrics", _metrics_address, _metrics_port)


def on_exit(server: _Arbiter) -> None:
    if not _metrics_given:
        shutil.rmtree(_metrics_dir, ignore_errors=True)


def child_exit(server: _Arbiter, worker: _Worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker: _Worker) -> None:
    # Move the loaded app's objects out of the collector's reach: full collections then
    # walk only per-request garbage, which keeps them from showing up as tail latency.
    import gc

    gc.freeze()
