"""Fixtures of the ingestion tests: a Pub/Sub topology of their own on the emulator, and
the real subscriber (same code as `manage.py run_subscriber`) running in a thread."""

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from ingestion.subscriber import subscriber_run_from_settings
from ingestion.tests.support import Topology
from ingestion.topology import topology_ensure
from latam.clients import clients_reset, pubsub_publisher, pubsub_subscriber


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
