"""Helpers of the ingestion tests (fixtures are in conftest.py): polling, pulling, and
the in-memory fakes of what the Ingestor uses (messages, publisher, repository)."""

import functools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings
from google.cloud import bigquery
from prometheus_client import REGISTRY

from ingestion.deadletters import DeadLetters, dead_letters_pull, dead_letters_settle
from ingestion.subscriber import Batching, Ingestor
from latam.clients import bigquery_client, pubsub_publisher, pubsub_subscriber
from records.fakes import InMemoryRecordRepository
from scripts.devstack import REPO, free_port, metric_total

DEAD_LETTER_TOPIC = "projects/latam-test/topics/data-ingest-dead-letter"
PUBLISHED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WAIT_SECONDS = 5.0
# Every `error_code` a message can get for what its producer sent (README, the subscriber).
ERROR_CODES = frozenset(
    {
        "not_utf8",
        "invalid_json",
        "not_object",
        "missing_field",
        "invalid_field",
        "too_large",
        "invalid_attribute",
    }
)


@dataclass(frozen=True)
class Topology:
    topic: str
    subscription: str
    dead_letter_topic: str
    dead_letter_subscription: str


def pull_all(subscription: str, *, ack: bool, expected: int | None = None) -> list:
    """Messages on a subscription (synchronous pull), acked or handed back."""
    subscriber = pubsub_subscriber()
    received = dead_letters_pull(
        subscriber=subscriber, subscription=subscription, limit=expected or 2000, wait=2
    )
    dead_letters_settle(
        subscriber=subscriber,
        subscription=subscription,
        ack_ids=[item.ack_id for item in received],
        ack=ack,
    )
    return received


def stored_rows(warehouse, record_id: str) -> list[dict]:
    """Every row stored for an id, all versions (what the API collapses to one)."""
    rows = bigquery_client().query_and_wait(
        f"SELECT nombre, message_id FROM `{warehouse.table_id}` WHERE id = @id",  # noqa: S608
        job_config=bigquery.QueryJobConfig(
            query_parameters=[bigquery.ScalarQueryParameter("id", "STRING", record_id)]
        ),
    )
    return [dict(row.items()) for row in rows]


def eventually(
    condition: Callable[[], object],
    *,
    timeout: float = 30,
    what: str = "the condition",
    interval: float = 0.1,
) -> object:
    """Poll until `condition()` is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


wait_until = functools.partial(eventually, timeout=WAIT_SECONDS, interval=0.002)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def warehouse_up() -> float | None:
    return REGISTRY.get_sample_value("latam_ingest_warehouse_up")


class FakeMessage:
    """What the Ingestor uses of a streaming-pull Message; remembers how it was settled."""

    def __init__(
        self,
        data: bytes,
        *,
        message_id: str,
        attributes: dict[str, str] | None = None,
        publish_time: datetime = PUBLISHED,
        delivery_attempt: int | None = None,
    ):
        self.data = data
        self.attributes = attributes or {}
        self.message_id = message_id
        self.publish_time = publish_time
        self.delivery_attempt = delivery_attempt
        self.settlements: list[str] = []
        self._lock = threading.Lock()

    def ack(self) -> None:
        with self._lock:
            self.settlements.append("ack")

    def nack(self) -> None:
        with self._lock:
            self.settlements.append("nack")

    # Set by a test that expects the message released at shutdown: neither acked nor
    # nacked, left for its lease to lapse once the stream is closed.
    released = False

    @property
    def settled(self) -> bool:
        return bool(self.settlements)

    @property
    def outcome(self) -> str:
        """'ack' or 'nack'; fails if the message was settled more than once (or never)."""
        assert len(self.settlements) == 1, f"{self.message_id} settled {self.settlements}"
        return self.settlements[0]


@dataclass
class Publication:
    topic: str
    data: bytes
    attributes: dict[str, str]
    future: Future


class FakePublisher:
    """`publish` returns a Future this test controls: `mode` is "succeed" (resolved at once),
    "fail" (failed at once), "pending" (resolve it yourself) or "raise" (publish raises)."""

    def __init__(self):
        self.mode = "succeed"
        self.publications: list[Publication] = []

    def publish(self, *, topic: str, data: bytes, attributes) -> Future:
        attributes = dict(attributes)
        if self.mode == "raise":
            raise ValueError("too many attributes")
        future: Future = Future()
        self.publications.append(Publication(topic, data, attributes, future))
        if self.mode == "succeed":
            future.set_result("dead-letter-id")
        elif self.mode == "fail":
            future.set_exception(TimeoutError("publish timed out"))
        return future


class InsertWatchingRepository(InMemoryRecordRepository):
    """Notes, at each insert, which of the batch's messages were already settled."""

    def __init__(self):
        super().__init__()
        self.messages: dict[str, FakeMessage] = {}
        self.settled_at_insert: list[str] = []

    def records_insert(self, *, rows):
        self.settled_at_insert += [
            row.message_id for row in rows if self.messages[row.message_id].settled
        ]
        return super().records_insert(rows=rows)


@dataclass
class Harness:
    repository: InsertWatchingRepository
    publisher: FakePublisher
    dead_letters: DeadLetters
    messages: list[FakeMessage] = field(default_factory=list)
    threads: list[tuple[Ingestor, threading.Thread]] = field(default_factory=list)

    @classmethod
    def create(cls) -> "Harness":
        publisher = FakePublisher()
        return cls(
            repository=InsertWatchingRepository(),
            publisher=publisher,
            dead_letters=DeadLetters(publisher=publisher, topic=DEAD_LETTER_TOPIC),
        )

    def ingestor(
        self,
        *,
        size: int = 3,
        max_seconds: float = 60.0,
        retry_max_seconds: float = 0.02,
        max_bytes: int = 5 * 1024 * 1024,
    ) -> Ingestor:
        return Ingestor(
            repository=self.repository,
            dead_letters=self.dead_letters,
            batching=Batching(
                size=size,
                max_seconds=max_seconds,
                retry_max_seconds=retry_max_seconds,
                max_bytes=max_bytes,
            ),
        )

    def start(self, ingestor: Ingestor) -> threading.Thread:
        thread = threading.Thread(target=ingestor.run, name="test-writer", daemon=True)
        self.threads.append((ingestor, thread))
        thread.start()
        return thread

    def message(self, data: bytes | dict | None = None, **options) -> FakeMessage:
        message_id = options.pop("message_id", f"m-{len(self.messages) + 1}")
        if data is None or isinstance(data, dict):
            fields = {
                "id": message_id,
                "nombre": "Juan",
                "apellido": "Perez",
                "pais": "Argentina",
                **(data or {}),
            }
            data = json.dumps(fields).encode()
        message = FakeMessage(data, message_id=message_id, **options)
        self.messages.append(message)
        self.repository.messages[message_id] = message
        return message


class FakeStream:
    """The streaming-pull future `client.subscribe` returns: open until cancelled, or until
    a test fails it. `closes=False`: its result never comes (a stream stuck closing)."""

    def __init__(
        self,
        subscription: str = "",
        callback: Callable | None = None,
        flow_control: object = None,
        on_cancel: Callable[["FakeStream"], None] | None = None,
    ):
        self.subscription = subscription
        self.callback = callback
        self.flow_control = flow_control
        self.on_cancel = on_cancel
        self.cancelled = threading.Event()
        self.closes = True
        self.scheduler: object = None  # what `subscribe` was given
        self._error: BaseException | None = None

    def deliver(self, message: FakeMessage) -> None:
        """What the client does with each message: hand it to the callback."""
        assert self.callback is not None
        self.callback(message)

    def fail(self, error: BaseException) -> None:
        """The stream fails for good (the client gave up on it)."""
        self._error = error

    def done(self) -> bool:
        return self.cancelled.is_set() or self._error is not None

    def cancel(self) -> bool:
        if self.on_cancel and not self.cancelled.is_set():
            self.on_cancel(self)
        self.cancelled.set()
        return True

    def result(self, timeout: float) -> None:
        if self._error is not None:
            raise self._error
        if not self.closes:
            time.sleep(timeout)
            raise TimeoutError
        self.cancelled.wait(timeout)


class FakeSubscriberClient:
    """What `subscriber_run` uses of a SubscriberClient: each `subscribe` opens a FakeStream."""

    def __init__(self, on_cancel: Callable[[FakeStream], None] | None = None):
        self.streams: list[FakeStream] = []
        self._on_cancel = on_cancel

    def subscribe(
        self,
        subscription: str,
        callback: Callable,
        *,
        flow_control,
        scheduler=None,
        await_callbacks_on_shutdown,
    ) -> FakeStream:
        assert await_callbacks_on_shutdown, "shutdown must wait for callbacks under way"
        stream = FakeStream(subscription, callback, flow_control, on_cancel=self._on_cancel)
        stream.scheduler = scheduler
        self.streams.append(stream)
        return stream

    def subscription_path(self, project: str, subscription: str) -> str:
        return f"projects/{project}/subscriptions/{subscription}"


def publish_records(topology: Topology, ids: Iterable[str]) -> set[str]:
    """Publish one valid record per id to the test's topic; wait until all are published."""
    publisher = pubsub_publisher()
    ids = list(ids)
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
        future.result(timeout=30)
    return set(ids)


def log_events(log: Path, message: str) -> list[dict]:
    """The JSON log lines of a process whose `message` is this."""
    events = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("message") == message:
            events.append(event)
    return events


class Subscriber:
    """One `manage.py run_subscriber` process on the test's topology and table."""

    def __init__(self, log: Path, **env: str):
        self.metrics_url = f"http://127.0.0.1:{free_port()}"
        environment = {
            **os.environ,
            "DJANGO_ENV_FILE": os.devnull,
            "GCP_PROJECT": settings.GCP_PROJECT,
            "BIGQUERY_EMULATOR_HOST": settings.BIGQUERY_EMULATOR_HOST,
            "BIGQUERY_EMULATOR_GRPC_HOST": settings.BIGQUERY_EMULATOR_GRPC_HOST,
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
