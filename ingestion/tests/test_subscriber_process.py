"""`manage.py run_subscriber` as a process, against the emulators: stopped by SIGTERM,
killed by SIGKILL, and left running while the warehouse goes away and comes back."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from ingestion.tests.support import Topology, eventually
from latam.clients import clients_reset, pubsub_publisher
from records import selectors
from scripts.devstack import REPO, Stack, free_port, metric_total

pytestmark = pytest.mark.integration

COUNT = 50


@pytest.fixture
def max_delivery_attempts() -> int:
    """The emulator keeps streams of a stopped process on its books for a while and
    hands them released messages, one lease at a time, each hand-over a delivery
    attempt; with the default 5 a restart test could see them dead-lettered instead."""
    return 100


class Subscriber:
    """One `manage.py run_subscriber` process on the test's topology and table."""

    def __init__(self, log: Path, **env: str):
        self.metrics_url = f"http://127.0.0.1:{free_port()}"
        environment = {
            **os.environ,
            "DJANGO_ENV_FILE": os.devnull,
            "GCP_PROJECT": settings.GCP_PROJECT,
            "BIGQUERY_EMULATOR_HOST": settings.BIGQUERY_EMULATOR_HOST,
            "BIGQUERY_TABLE": settings.BIGQUERY_TABLE,
            "PUBSUB_EMULATOR_HOST": settings.PUBSUB_EMULATOR_HOST,
            "PUBSUB_SUBSCRIPTION": settings.PUBSUB_SUBSCRIPTION,
            "PUBSUB_DEAD_LETTER_TOPIC": settings.PUBSUB_DEAD_LETTER_TOPIC,
            "METRICS_PORT": self.metrics_url.rsplit(":", 1)[1],
            "INGEST_BATCH_MAX_SECONDS": "0.2",
            **env,
        }
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_subscriber"],
            cwd=REPO,
            env=environment,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        eventually(self._serving, timeout=60, what="the subscriber's metrics endpoint")

    def _serving(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()[-3000:]
        try:
            self.metric("latam_ingest_messages_received_total")
            return True
        except OSError:
            return False

    def metric(self, name: str, **labels: str) -> float:
        return metric_total(self.metrics_url, name, **labels)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def subscribers(topology, warehouse, tmp_path):
    started: list[Subscriber] = []

    def start(**env: str) -> Subscriber:
        subscriber = Subscriber(tmp_path / f"subscriber-{len(started)}.log", **env)
        started.append(subscriber)
        return subscriber

    yield start
    for subscriber in started:
        subscriber.stop()


def publish_records(topology: Topology, ids) -> set[str]:
    publisher = pubsub_publisher()
    futures = [
        publisher.publish(
            topology.topic,
            json.dumps(
                {"id": i, "nombre": "Nombre", "apellido": "Apellido", "pais": "Perú"}
            ).encode(),
        )
        for i in ids
    ]
    for future in futures:
        future.result(timeout=10)
    return set(ids)


def stored_ids(repository) -> set[str]:
    return {record.id for record in repository.records_list(limit=1000, offset=0)}


def test_sigterm_mid_batch_flushes_and_exits_0_within_10_s(subscribers, topology, warehouse):
    # Batches that never fill nor age, and room for 20 messages: SIGTERM finds 20 rows
    # buffered (to flush and ack) and 30 messages not taken (to be redelivered).
    subscriber = subscribers(
        INGEST_BATCH_SIZE="1000",
        INGEST_BATCH_MAX_SECONDS="60",
        INGEST_MAX_OUTSTANDING_MESSAGES="20",
    )
    ids = publish_records(topology, [f"term-{n}" for n in range(COUNT)])
    eventually(
        lambda: subscriber.metric("latam_ingest_messages_received_total") >= 20,
        what="20 buffered messages",
    )
    assert warehouse.records_count() == 0

    subscriber.process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    returncode = subscriber.process.wait(timeout=15)
    exited_after = time.monotonic() - started

    assert returncode == 0, subscriber.log.read_text()[-3000:]
    assert exited_after < 10
    flushed = stored_ids(warehouse)
    assert len(flushed) >= 20 and flushed < ids
    # Whatever was acked is stored, and the rest comes back: after a restart, all of it.
    # A patient wait: see max_delivery_attempts above.
    subscribers()
    eventually(lambda: stored_ids(warehouse) == ids, timeout=180, what="every record after restart")
    assert warehouse.records_count() == COUNT


def test_sigkill_loses_nothing_everything_arrives_within_90_s_of_restart(
    subscribers, topology, warehouse
):
    subscriber = subscribers(INGEST_BATCH_SIZE="1000", INGEST_BATCH_MAX_SECONDS="60")
    ids = publish_records(topology, [f"kill-{n}" for n in range(COUNT)])
    eventually(
        lambda: subscriber.metric("latam_ingest_messages_received_total") >= COUNT,
        what="every message buffered, none acked",
    )
    subscriber.process.kill()
    subscriber.process.wait(10)
    assert warehouse.records_count() == 0

    subscribers()
    eventually(lambda: stored_ids(warehouse) == ids, timeout=90, what="every record after restart")


def test_warehouse_outage_loses_nothing_acks_nothing_early_and_recovers(
    subscribers, topology, settings, tmp_path
):
    # A warehouse of its own, persistent, to stop and start again on the same port.
    stack = Stack(log_dir=tmp_path / "bq-logs")
    rest_port, grpc_port, data = free_port(), free_port(), tmp_path / "bq-data"

    def warehouse_start() -> None:
        stack.start_bigquery_emulator(
            project=settings.GCP_PROJECT, rest_port=rest_port, grpc_port=grpc_port, data_dir=data
        )

    try:
        warehouse_start()
        settings.BIGQUERY_EMULATOR_HOST = f"127.0.0.1:{rest_port}"
        clients_reset()
        selectors.record_repository.cache_clear()
        repository = selectors.record_repository()
        repository.table_ensure(location="US")
        subscriber = subscribers(INGEST_RETRY_MAX_SECONDS="1", BIGQUERY_TIMEOUT_SECONDS="2")
        before = publish_records(topology, [f"before-{n}" for n in range(10)])
        eventually(lambda: stored_ids(repository) == before, what="records before the outage")

        stack.stop("bqemulator")
        during = publish_records(topology, [f"during-{n}" for n in range(10)])
        eventually(
            lambda: (
                subscriber.metric("latam_ingest_warehouse_up") == 0
                and subscriber.metric("latam_ingest_messages_retried_total") >= 1
            ),
            what="the subscriber to see the warehouse down",
        )
        assert subscriber.metric("latam_ingest_messages_stored_total") == 10  # none acked early
        assert subscriber.process.poll() is None

        warehouse_start()
        eventually(
            lambda: stored_ids(repository) == before | during,
            timeout=90,
            what="every record once the warehouse is back",
        )
        assert subscriber.process.poll() is None
        assert subscriber.metric("latam_ingest_warehouse_up") == 1
        assert subscriber.metric("latam_ingest_messages_dead_lettered_total") == 0
    finally:
        stack.stop_all()
