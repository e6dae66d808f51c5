"""The whole pipeline on loopback, for the load tests, the drills and the benchmarks.

`Pipeline` starts a Pub/Sub emulator, bqemulator (REST and gRPC) and, when asked, Redis,
each on free 127.0.0.1 ports (a running `make run` is left alone); it creates the topic,
subscriptions and table (`manage.py bootstrap`) and points this process's settings at
them. Then it starts subscribers and the API (gunicorn) as the production processes are
started, and stops, kills and restarts any of them for a drill. Everything it started is
stopped when the `with` block ends.

bqemulator keeps its data on disk here (`--persistent`), so that a drill can stop it and
start it again with every row still there.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from scripts.devstack import REPO, Stack, StackError, free_port, metric_total

PROJECT = "latam-drill"


def wait_for(
    condition: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.2
) -> float:
    """Poll `condition` until it is true; return time.monotonic() then. StackError after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(interval)
    raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")


def redis_binary() -> str:
    """Debian's redis-server, installed when missing and we are root."""
    from loadtests.bench_api import debian_binary

    return debian_binary("redis-server", "redis-server")


def settings_load() -> None:
    """Django's settings from this environment. A second Pipeline in one process (`make
    drills` runs its drills in turn) reads them again and forgets the clients built for
    the previous one, which pointed at its emulators (gone with it)."""
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
        return
    import importlib

    from django.conf import settings

    from latam import settings as module
    from latam.clients import clients_reset
    from records import wiring

    importlib.reload(module)
    for name in dir(module):
        if name.isupper():
            setattr(settings, name, getattr(module, name))
    clients_reset()
    wiring.record_repository.cache_clear()


class Pipeline:
    """The local stack of one run. Use as a context manager."""

    def __init__(self, *, name: str, redis: bool = False, env: dict[str, str] | None = None):
        self.workdir = Path(tempfile.mkdtemp(prefix=f"latam-{name}-"))
        self.stack = Stack(log_dir=self.workdir / "logs")
        self.ports = {key: free_port() for key in ("pubsub", "bq_rest", "bq_grpc", "redis", "api")}
        self.redis = redis
        self.env = {
            "BIGQUERY_EMULATOR_HOST": f"127.0.0.1:{self.ports['bq_rest']}",
            "BIGQUERY_EMULATOR_GRPC_HOST": f"127.0.0.1:{self.ports['bq_grpc']}",
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.ports['pubsub']}",
            "GCP_PROJECT": PROJECT,
            "DJANGO_ENV_FILE": os.devnull,
            "DJANGO_SETTINGS_MODULE": "latam.settings",
            "LOG_LEVEL": "WARNING",
            **(
                {"CACHE_URL": f"redis://127.0.0.1:{self.ports['redis']}/0"}
                if redis
                else {"CACHE_URL": "locmemcache://"}
            ),
            **(env or {}),
        }
        self._subscribers: dict[str, str] = {}  # name → metrics URL

    # --- the stack ------------------------------------------------------------------------
    def __enter__(self) -> "Pipeline":
        self._environ_before = dict(os.environ)
        os.environ.update(self.env)
        try:
            if self.redis:
                self.redis_start()
            self.stack.start_pubsub_emulator(port=self.ports["pubsub"])
            self.bigquery_start()
            self.manage("bootstrap", timeout=120)
            settings_load()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stack.stop_all()
        # The next Pipeline of this process (make drills) starts from a clean environment.
        os.environ.clear()
        os.environ.update(self._environ_before)

    def manage(self, *args: str, timeout: float = 600) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, check=True, timeout=timeout)

    def bigquery_start(self) -> None:
        self.stack.start_bigquery_emulator(
            project=PROJECT,
            rest_port=self.ports["bq_rest"],
            grpc_port=self.ports["bq_grpc"],
            data_dir=self.workdir / "bigquery",
        )

    def bigquery_stop(self) -> None:
        self.stack.stop("bqemulator")

    def redis_start(self) -> None:
        port = str(self.ports["redis"])
        command = [redis_binary(), "--port", port, "--bind", "127.0.0.1", "--save", ""]
        self.stack.start("redis", [*command, "--appendonly", "no"])
        self.stack.wait_for_port("redis", self.ports["redis"])

    def redis_stop(self) -> None:
        self.stack.stop("redis")

    # --- the processes under test ---------------------------------------------------------
    def subscriber_start(
        self, name: str = "subscriber", *, streams: int = 1, env: dict[str, str] | None = None
    ) -> str:
        """Start `manage.py run_subscriber`; return its metrics URL once it listens."""
        port = free_port()
        self.stack.start(
            name,
            [sys.executable, "manage.py", "run_subscriber"],
            env={"METRICS_PORT": str(port), "INGEST_STREAMS": str(streams), **(env or {})},
        )
        self.stack.wait_for_port(name, port)
        self._subscribers[name] = f"http://127.0.0.1:{port}"
        return self._subscribers[name]

    def api_start(
        self, *, workers: int = 2, threads: int = 2, env: dict[str, str] | None = None
    ) -> tuple[str, str]:
        """Start gunicorn (gunicorn.conf.py, as in the image); return the API's base URL
        and its metrics URL."""
        metrics_port = free_port()
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.stack.start(
            "api",
            [gunicorn, "latam.wsgi:application", "--bind", f"127.0.0.1:{self.ports['api']}"],
            env={
                "GUNICORN_WORKERS": str(workers),
                "GUNICORN_THREADS": str(threads),
                "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(dir=self.workdir),
                "API_METRICS_PORT": str(metrics_port),
                **(env or {}),
            },
        )
        self.stack.wait_for_port("api", self.ports["api"])
        self.stack.wait_for_port("api", metrics_port)
        return f"http://127.0.0.1:{self.ports['api']}", f"http://127.0.0.1:{metrics_port}"

    def process(self, name: str) -> subprocess.Popen:
        return self.stack.processes[name]

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash: no shutdown code runs."""
        process = self.stack.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def terminate(self, name: str, timeout: float = 30) -> float:
        """SIGTERM, as Cloud Run stops an instance; return the seconds it took to exit."""
        process = self.stack.processes.pop(name)
        started = time.monotonic()
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
        return time.monotonic() - started

    def subscriber_metric(self, name: str, metric: str, **labels: str) -> float:
        return metric_total(self._subscribers[name], metric, **labels)

    # --- data -----------------------------------------------------------------------------
    def publish(self, payloads: Iterable[bytes]) -> float:
        """Publish each payload as one message; return time.monotonic() once all are
        accepted by the emulator."""
        from django.conf import settings

        from ingestion.publishing import MessagePublisher, messages_publish
        from latam.clients import pubsub_publisher

        publisher = pubsub_publisher()
        topic = publisher.topic_path(settings.GCP_PROJECT, settings.PUBSUB_TOPIC)
        tally = messages_publish(list(payloads), publisher=MessagePublisher(publisher), topic=topic)
        if tally.failed:
            raise StackError(f"publishing failed: {tally.summary()}")
        return time.monotonic()

    def fake_payloads(self, count: int, *, seed: int) -> list[bytes]:
        from records.seeding import records_fake

        return [
            json.dumps(record.as_dict()).encode() for record in records_fake(count=count, seed=seed)
        ]

    def stored_count(self) -> int:
        """Distinct ids queryable in the warehouse (what the API counts)."""
        from records import wiring

        return wiring.record_repository().records_count()

    def rows_written(self) -> int:
        """Rows in the table, redelivered copies included (reads show one per id)."""
        from latam.clients import bigquery_client
        from records import wiring

        table = wiring.record_repository().table_id
        rows = bigquery_client().query_and_wait(f"SELECT COUNT(*) FROM `{table}`")  # noqa: S608
        return int(next(iter(rows))[0])

    def dead_letters(self, limit: int, *, wait: float = 2) -> list[Any]:
        """Up to `limit` messages of the dead-letter subscription, pulled and held (not
        acked: they come back after their ack deadline)."""
        from django.conf import settings

        from ingestion.deadletters import dead_letters_pull
        from latam.clients import pubsub_subscriber

        subscriber = pubsub_subscriber()
        subscription = subscriber.subscription_path(
            settings.GCP_PROJECT, settings.PUBSUB_DEAD_LETTER_SUBSCRIPTION
        )
        return dead_letters_pull(
            subscriber=subscriber, subscription=subscription, limit=limit, wait=wait
        )
