"""Fixtures of the ingestion tests: the Ingestor on in-memory fakes (`harness`), a Pub/Sub
topology of their own on the emulator, and the real subscriber (same code as
`manage.py run_subscriber`) running in a thread."""

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from ingestion import subscriber
from ingestion.subscriber import subscriber_run_from_settings
from ingestion.tests.support import (
    WAIT_SECONDS,
    Harness,
    Subscriber,
    Topology,
)
from ingestion.topology import topology_ensure
from latam.clients import clients_reset, pubsub_publisher, pubsub_subscriber


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """An Ingestor's world in memory. At the end, every message was settled exactly once
    (or deliberately released) and none was acked before its row was written."""
    monkeypatch.setattr(subscriber, "RETRY_FIRST_SECONDS", 0.01)
    harness = Harness.create()
    yield harness
    for ingestor, _ in harness.threads:
        ingestor.stop()
    for _, thread in harness.threads:
        thread.join(WAIT_SECONDS)
        assert not thread.is_alive(), "Ingestor.run did not return after stop()"
    for publication in harness.publisher.publications:
        if not publication.future.done():
            publication.future.set_result("late")
    for message in harness.messages:
        expected = 0 if message.released else 1
        assert len(message.settlements) == expected, f"{message.message_id}: {message.settlements}"
    assert harness.repository.settled_at_insert == [], "acked before its row was written"


@pytest.fixture
def max_delivery_attempts(settings) -> int:
    """The topology's dead-letter policy (a test module may override this fixture)."""
    return settings.PUBSUB_MAX_DELIVERY_ATTEMPTS


@pytest.fixture
def topology(settings, pubsub_emulator: str, max_delivery_attempts: int) -> Topology:
    suffix = uuid.uuid4().hex[:12]
    settings.PUBSUB_MAX_DELIVERY_ATTEMPTS = max_delivery_attempts
    settings.PUBSUB_EMULATOR_HOST = pubsub_emulator
    settings.PUBSUB_TOPIC = f"ingest-{suffix}"
    settings.PUBSUB_SUBSCRIPTION = f"ingest-sub-{suffix}"
    settings.PUBSUB_DEAD_LETTER_TOPIC = f"dead-{suffix}"
    settings.PUBSUB_DEAD_LETTER_SUBSCRIPTION = f"dead-sub-{suffix}"
    clients_reset()
    topology_ensure(publisher=pubsub_publisher(), subscriber=pubsub_subscriber())
    project = settings.GCP_PROJECT
    return Topology(
        topic=f"projects/{project}/topics/{settings.PUBSUB_TOPIC}",
        subscription=f"projects/{project}/subscriptions/{settings.PUBSUB_SUBSCRIPTION}",
        dead_letter_topic=f"projects/{project}/topics/{settings.PUBSUB_DEAD_LETTER_TOPIC}",
        dead_letter_subscription=(
            f"projects/{project}/subscriptions/{settings.PUBSUB_DEAD_LETTER_SUBSCRIPTION}"
        ),
    )


@pytest.fixture
def subscriber_running(topology: Topology, warehouse) -> Callable:
    """`with subscriber_running(): ...` runs the subscriber until the block ends."""

    @contextmanager
    def running(*, batch_size: int = 100, batch_max_seconds: float = 0.2) -> Iterator[None]:
        stop = threading.Event()
        failures: list[BaseException] = []

        def target() -> None:
            try:
                subscriber_run_from_settings(
                    stop=stop, batch_size=batch_size, batch_max_seconds=batch_max_seconds
                )
            except BaseException as error:  # surfaced in the test, not lost in the thread
                failures.append(error)

        thread = threading.Thread(target=target, name="test-subscriber", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(15)
        assert not thread.is_alive(), "the subscriber did not stop within 15 s"
        assert not failures, failures

    return running


@pytest.fixture
def subscribers(topology, warehouse, tmp_path) -> Iterator[Callable[..., Subscriber]]:
    """`subscribers(**env)` starts a `manage.py run_subscriber` process; all are killed after."""
    started: list[Subscriber] = []

    def start(**env: str) -> Subscriber:
        process = Subscriber(tmp_path / f"subscriber-{len(started)}.log", **env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
