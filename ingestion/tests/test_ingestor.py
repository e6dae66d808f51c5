"""`Ingestor` and `DeadLetters` with in-memory fakes: batching, settling, dead letters,
warehouse outages and shutdown. No emulator, no network; the writer runs in a thread."""

import functools
import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from ingestion import subscriber
from ingestion.deadletters import DeadLetters, attributes_original, dead_letter_attributes
from ingestion.subscriber import Batching, Ingestor
from ingestion.tests.support import eventually
from records.entities import Record
from records.fakes import InMemoryRecordRepository

TOPIC = "projects/latam-test/topics/data-ingest-dead-letter"
PUBLISHED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WAIT_SECONDS = 5.0


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

    def publish(self, topic: str, data: bytes, **attributes: str) -> Future:
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

    def ingestor(
        self,
        *,
        size: int = 3,
        max_seconds: float = 60.0,
        retry_max_seconds: float = 0.02,
        max_hold_seconds: float = 60.0,
    ) -> Ingestor:
        return Ingestor(
            repository=self.repository,
            dead_letters=self.dead_letters,
            batching=Batching(
                size=size,
                max_seconds=max_seconds,
                retry_max_seconds=retry_max_seconds,
                max_hold_seconds=max_hold_seconds,
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


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setattr(subscriber, "RETRY_FIRST_SECONDS", 0.01)


@pytest.fixture
def harness() -> Iterator[Harness]:
    publisher = FakePublisher()
    harness = Harness(
        repository=InsertWatchingRepository(),
        publisher=publisher,
        dead_letters=DeadLetters(publisher=publisher, topic=TOPIC),
    )
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


# --- batching ----------------------------------------------------------------------------


def test_a_full_batch_is_written_in_one_insert_and_acked(harness):
    stored_before = sample("latam_ingest_messages_stored_total")
    received_before = sample("latam_ingest_messages_received_total")
    ingestor = harness.ingestor(size=3, max_seconds=60)
    harness.start(ingestor)
    messages = [harness.message({"nombre": f"Nombre {n}"}) for n in range(3)]

    for message in messages:
        ingestor.receive(message)
    wait_until(lambda: all(message.settled for message in messages))

    assert [message.outcome for message in messages] == ["ack"] * 3
    assert harness.repository.calls["insert"] == 1
    for n, message in enumerate(messages):
        assert harness.repository.record_get(record_id=message.message_id) == Record(
            id=message.message_id, nombre=f"Nombre {n}", apellido="Perez", pais="Argentina"
        )
    assert sample("latam_ingest_messages_received_total") - received_before == 3
    assert sample("latam_ingest_messages_stored_total") - stored_before == 3


def test_batches_never_exceed_size_and_a_partial_one_waits(harness):
    ingestor = harness.ingestor(size=3, max_seconds=60)
    harness.start(ingestor)
    messages = [harness.message() for _ in range(7)]

    for message in messages:
        ingestor.receive(message)
    wait_until(lambda: all(message.settled for message in messages[:6]))

    assert harness.repository.calls["insert"] == 2
    assert not messages[6].settled  # one of size 3 is not a batch yet, and 60 s have not passed
    assert harness.repository.record_get(record_id=messages[6].message_id) is None


def test_a_partial_batch_is_written_after_max_seconds(harness):
    ingestor = harness.ingestor(size=10, max_seconds=0.05)
    harness.start(ingestor)
    messages = [harness.message() for _ in range(2)]

    for message in messages:
        ingestor.receive(message)
    wait_until(lambda: all(message.settled for message in messages))

    assert [message.outcome for message in messages] == ["ack", "ack"]
    assert harness.repository.calls["insert"] == 1
    assert all(harness.repository.record_get(record_id=m.message_id) for m in messages)


def test_nothing_is_acked_before_the_writer_writes_it(harness):
    ingestor = harness.ingestor(size=2, max_seconds=60)
    messages = [harness.message() for _ in range(4)]

    for message in messages:
        ingestor.receive(message)  # a full batch and more, but no writer yet

    assert not any(message.settled for message in messages)
    assert harness.repository.calls["insert"] == 0

    harness.start(ingestor)
    wait_until(lambda: all(message.settled for message in messages))

    assert [message.outcome for message in messages] == ["ack"] * 4
    assert harness.repository.calls["insert"] == 2
    assert harness.repository.settled_at_insert == []  # none was settled when its insert began


def test_the_latest_publish_time_wins_within_a_batch(harness):
    ingestor = harness.ingestor(size=2, max_seconds=60)
    harness.start(ingestor)
    later = harness.message(
        {"id": "7", "nombre": "Nueva"}, publish_time=PUBLISHED + timedelta(seconds=5)
    )
    earlier = harness.message({"id": "7", "nombre": "Vieja"}, publish_time=PUBLISHED)

    ingestor.receive(later)  # arrives first, published later
    ingestor.receive(earlier)
    wait_until(lambda: later.settled and earlier.settled)

    assert (later.outcome, earlier.outcome) == ("ack", "ack")
    assert harness.repository.record_get(record_id="7").nombre == "Nueva"


# --- invalid messages and dead letters ---------------------------------------------------


@pytest.mark.parametrize(
    ("delivery_attempt", "expected_attempt"),
    [(3, "3"), (None, "1")],
    ids=["attempt-3", "no-policy"],
)
def test_an_invalid_message_is_dead_lettered_with_why_and_acked(
    harness, delivery_attempt, expected_attempt
):
    dead_before = sample("latam_ingest_messages_dead_lettered_total", error_code="invalid_json")
    ingestor = harness.ingestor(size=1, max_seconds=0.01)
    harness.start(ingestor)
    message = harness.message(
        b"{not json",
        message_id="bad-1",
        attributes={"origin": "crm", "trace": "abc"},
        delivery_attempt=delivery_attempt,
    )

    ingestor.receive(message)
    wait_until(lambda: message.settled)

    assert message.outcome == "ack"
    [publication] = harness.publisher.publications
    assert publication.topic == TOPIC
    assert publication.data == b"{not json"
    error = publication.attributes.pop("error")
    assert "JSON" in error
    assert publication.attributes == {
        "origin": "crm",
        "trace": "abc",
        "error_code": "invalid_json",
        "delivery_attempt": expected_attempt,
        "source_message_id": "bad-1",
    }
    assert harness.repository.calls["insert"] == 0
    dead_after = sample("latam_ingest_messages_dead_lettered_total", error_code="invalid_json")
    assert dead_after - dead_before == 1


def test_an_invalid_message_is_never_inserted_even_on_shutdown_flush(harness):
    ingestor = harness.ingestor(size=5, max_seconds=60)
    thread = harness.start(ingestor)
    invalid = harness.message({"id": "a/b"})
    valid = harness.message()

    ingestor.receive(invalid)
    ingestor.receive(valid)
    ingestor.stop()
    thread.join(WAIT_SECONDS)

    assert (invalid.outcome, valid.outcome) == ("ack", "ack")
    assert harness.repository.calls["insert"] == 1
    assert harness.repository.record_get(record_id="a/b") is None
    assert harness.publisher.publications[0].attributes["error_code"] == "invalid_field"


def test_a_dead_lettered_message_is_acked_only_once_the_publish_succeeds(harness):
    harness.publisher.mode = "pending"
    ingestor = harness.ingestor()
    message = harness.message(b"[]")

    ingestor.receive(message)

    assert not message.settled
    assert not harness.dead_letters.wait(0.01)

    harness.publisher.publications[0].future.set_result("dead-letter-id")

    assert message.outcome == "ack"
    assert harness.dead_letters.wait(0)


def test_a_dead_letter_whose_publish_fails_is_nacked(harness):
    retried_before = sample("latam_ingest_messages_retried_total", reason="dead_letter_unpublished")
    dead_before = sample("latam_ingest_messages_dead_lettered_total", error_code="not_object")
    harness.publisher.mode = "pending"
    ingestor = harness.ingestor()
    message = harness.message(b"[]")

    ingestor.receive(message)
    harness.publisher.publications[0].future.set_exception(TimeoutError("publish timed out"))

    assert message.outcome == "nack"
    assert harness.dead_letters.wait(0)
    retried = sample("latam_ingest_messages_retried_total", reason="dead_letter_unpublished")
    assert retried - retried_before == 1
    dead = sample("latam_ingest_messages_dead_lettered_total", error_code="not_object")
    assert dead == dead_before


def test_a_dead_letter_the_client_refuses_at_once_is_nacked(harness):
    harness.publisher.mode = "raise"
    ingestor = harness.ingestor()
    message = harness.message(b"\xff")

    ingestor.receive(message)

    assert message.outcome == "nack"
    assert harness.dead_letters.wait(0)
    assert harness.repository.calls["insert"] == 0


def test_a_long_error_is_cut_to_1024_bytes_of_valid_utf8(harness):
    message = harness.message(b"x")
    error = "€" * 600  # 1800 bytes; 1024 falls inside a character

    harness.dead_letters.send(message, code="invalid_json", error=error)

    cut = harness.publisher.publications[0].attributes["error"]
    assert error.startswith(cut)
    assert 1024 - 3 < len(cut.encode("utf-8")) <= 1024
    assert message.outcome == "ack"


def test_dead_letter_attributes_do_not_change_the_message(harness):
    message = harness.message(b"x", attributes={"origin": "crm"})

    attributes = dead_letter_attributes(message, code="too_large", error="too big")

    assert attributes["error_code"] == "too_large"
    assert message.attributes == {"origin": "crm"}
    message.ack()  # settle it for the harness


def test_attributes_original_keeps_only_what_the_producer_sent():
    attributes = {
        "origin": "crm",
        "error_source": "producer's own",
        "trace": "abc",
        "error_code": "invalid_json",
        "error": "data is not JSON",
        "delivery_attempt": "5",
        "source_message_id": "m-1",
        "CloudPubSubDeadLetterSourceDeliveryCount": "5",
        "CloudPubSubDeadLetterSourceSubscription": "data-ingest-sub",
        "CloudPubSubDeadLetterSourceSubscriptionProject": "latam-test",
    }

    assert attributes_original(attributes) == {
        "origin": "crm",
        "error_source": "producer's own",
        "trace": "abc",
    }


def test_attributes_original_undoes_dead_letter_attributes(harness):
    message = harness.message(b"x", attributes={"origin": "crm", "kind": "alta"})

    attributes = dead_letter_attributes(message, code="invalid_json", error="bad")

    assert attributes_original(attributes) == {"origin": "crm", "kind": "alta"}
    message.ack()  # settle it for the harness


def test_dead_letters_wait_reports_whether_everything_settled(harness):
    assert harness.dead_letters.wait(0) is True  # nothing sent yet
    harness.publisher.mode = "pending"
    first, second = harness.message(b"1"), harness.message(b"2")
    harness.dead_letters.send(first, code="not_object", error="a number")
    harness.dead_letters.send(second, code="not_object", error="a number")

    assert harness.dead_letters.wait(0.02) is False

    harness.publisher.publications[0].future.set_result("ok")

    assert harness.dead_letters.wait(0.02) is False

    resolver = threading.Timer(
        0.02, lambda: harness.publisher.publications[1].future.set_exception(OSError())
    )
    resolver.start()

    assert harness.dead_letters.wait(WAIT_SECONDS) is True
    resolver.join()
    assert (first.outcome, second.outcome) == ("ack", "nack")


# --- the warehouse refusing rows or going away -------------------------------------------


def test_a_row_the_warehouse_refuses_is_dead_lettered_and_the_rest_stored(harness):
    stored_before = sample("latam_ingest_messages_stored_total")
    rejected_before = sample(
        "latam_ingest_messages_dead_lettered_total", error_code="warehouse_rejected"
    )
    harness.repository.rejected_ids = {"bad"}
    ingestor = harness.ingestor(size=3, max_seconds=60)
    harness.start(ingestor)
    first = harness.message(message_id="good-1")
    refused = harness.message(message_id="bad", attributes={"origin": "crm"})
    last = harness.message(message_id="good-2")

    for message in (first, refused, last):
        ingestor.receive(message)
    wait_until(lambda: first.settled and refused.settled and last.settled)

    assert (first.outcome, refused.outcome, last.outcome) == ("ack", "ack", "ack")
    [publication] = harness.publisher.publications
    assert publication.data == refused.data
    assert publication.attributes["error_code"] == "warehouse_rejected"
    assert publication.attributes["origin"] == "crm"
    assert publication.attributes["source_message_id"] == "bad"
    assert harness.repository.record_get(record_id="bad") is None
    assert harness.repository.record_get(record_id="good-1") is not None
    assert harness.repository.record_get(record_id="good-2") is not None
    assert sample("latam_ingest_messages_stored_total") - stored_before == 2
    rejected_after = sample(
        "latam_ingest_messages_dead_lettered_total", error_code="warehouse_rejected"
    )
    assert rejected_after - rejected_before == 1


def test_a_refused_row_whose_dead_letter_fails_is_nacked_and_the_rest_acked(harness):
    harness.repository.rejected_ids = {"bad"}
    harness.publisher.mode = "fail"
    ingestor = harness.ingestor(size=2, max_seconds=60)
    harness.start(ingestor)
    good, refused = harness.message(message_id="good"), harness.message(message_id="bad")

    ingestor.receive(good)
    ingestor.receive(refused)
    wait_until(lambda: good.settled and refused.settled)

    assert (good.outcome, refused.outcome) == ("ack", "nack")


def test_an_outage_nacks_the_batch_and_the_writer_recovers(harness):
    retried_before = sample("latam_ingest_messages_retried_total", reason="warehouse_unavailable")
    harness.repository.unavailable = True
    ingestor = harness.ingestor(size=2, max_seconds=0.05, max_hold_seconds=60)
    thread = harness.start(ingestor)
    assert warehouse_up() == 1
    lost = [harness.message(), harness.message()]

    for message in lost:
        ingestor.receive(message)
    wait_until(lambda: all(message.settled for message in lost))
    wait_until(lambda: warehouse_up() == 0)

    assert [message.outcome for message in lost] == ["nack", "nack"]
    retried = sample("latam_ingest_messages_retried_total", reason="warehouse_unavailable")
    assert retried - retried_before == 2

    held = harness.message()  # arrives during the outage: held, not spent
    ingestor.receive(held)
    wait_until(lambda: harness.repository.calls["ping"] >= 3)

    assert harness.repository.calls["insert"] == 1  # probed by ping, not by inserting
    assert not held.settled
    assert thread.is_alive()

    harness.repository.unavailable = False
    wait_until(lambda: warehouse_up() == 1)
    later = [harness.message(), harness.message()]
    for message in later:
        ingestor.receive(message)
    wait_until(lambda: held.settled and all(message.settled for message in later))

    assert held.outcome == "ack"
    assert [message.outcome for message in later] == ["ack", "ack"]
    for message in (held, *later):
        assert harness.repository.record_get(record_id=message.message_id) is not None
    for message in lost:
        assert harness.repository.record_get(record_id=message.message_id) is None


def test_messages_held_longer_than_max_hold_are_released_during_an_outage(harness):
    retried_before = sample("latam_ingest_messages_retried_total", reason="warehouse_unavailable")
    harness.repository.unavailable = True
    ingestor = harness.ingestor(
        size=1, max_seconds=60, retry_max_seconds=0.01, max_hold_seconds=0.05
    )
    thread = harness.start(ingestor)
    first = harness.message()
    ingestor.receive(first)
    wait_until(lambda: first.settled and warehouse_up() == 0)
    inserts = harness.repository.calls["insert"]

    held = [harness.message(), harness.message()]
    for message in held:
        ingestor.receive(message)
    wait_until(lambda: all(message.settled for message in held))

    assert first.outcome == "nack"
    assert [message.outcome for message in held] == ["nack", "nack"]
    assert harness.repository.calls["insert"] == inserts  # released, not retried
    assert thread.is_alive()
    retried = sample("latam_ingest_messages_retried_total", reason="warehouse_unavailable")
    assert retried - retried_before == 3


# --- shutdown ----------------------------------------------------------------------------


def test_stop_flushes_pending_messages_and_run_returns(harness):
    stored_before = sample("latam_ingest_messages_stored_total")
    ingestor = harness.ingestor(size=10, max_seconds=60)
    thread = harness.start(ingestor)
    messages = [harness.message() for _ in range(3)]
    for message in messages:
        ingestor.receive(message)

    ingestor.stop()
    thread.join(WAIT_SECONDS)

    assert not thread.is_alive()
    assert [message.outcome for message in messages] == ["ack"] * 3
    assert harness.repository.calls["insert"] == 1
    assert all(harness.repository.record_get(record_id=m.message_id) for m in messages)
    assert sample("latam_ingest_messages_stored_total") - stored_before == 3


def test_stop_with_nothing_pending_returns_without_writing(harness):
    ingestor = harness.ingestor()
    thread = harness.start(ingestor)

    ingestor.stop()
    thread.join(WAIT_SECONDS)

    assert not thread.is_alive()
    assert harness.repository.calls["insert"] == 0


@pytest.mark.parametrize("data", [None, b"not json"], ids=["valid", "invalid"])
def test_messages_received_after_stop_are_released_not_nacked(harness, data):
    retried_before = sample("latam_ingest_messages_retried_total", reason="shutdown")
    ingestor = harness.ingestor(size=1, max_seconds=60)
    thread = harness.start(ingestor)
    ingestor.stop()
    thread.join(WAIT_SECONDS)
    late = harness.message(data)
    late.released = True

    ingestor.receive(late)

    assert late.settlements == []  # a nack now would bring it straight back to this stream
    assert harness.repository.calls["insert"] == 0
    assert harness.publisher.publications == []  # no dead letter once stopping
    assert sample("latam_ingest_messages_retried_total", reason="shutdown") - retried_before == 1


def test_stop_during_an_outage_releases_pending_without_another_insert(harness):
    shutdown_before = sample("latam_ingest_messages_retried_total", reason="shutdown")
    harness.repository.unavailable = True
    ingestor = harness.ingestor(size=2, max_seconds=60, max_hold_seconds=60)
    thread = harness.start(ingestor)
    lost = [harness.message(), harness.message()]
    for message in lost:
        ingestor.receive(message)
    wait_until(lambda: all(message.settled for message in lost) and warehouse_up() == 0)
    pending = harness.message()
    pending.released = True
    ingestor.receive(pending)

    ingestor.stop()
    thread.join(WAIT_SECONDS)

    assert not thread.is_alive()
    assert pending.settlements == []
    assert harness.repository.calls["insert"] == 1
    assert sample("latam_ingest_messages_retried_total", reason="shutdown") - shutdown_before == 1


# --- metrics -----------------------------------------------------------------------------


def test_received_counts_every_message_valid_or_not(harness):
    received_before = sample("latam_ingest_messages_received_total")
    missing_before = sample("latam_ingest_messages_dead_lettered_total", error_code="missing_field")
    ingestor = harness.ingestor(size=1, max_seconds=60)
    harness.start(ingestor)
    valid, invalid = harness.message(), harness.message(b'{"id": "1"}')

    ingestor.receive(valid)
    ingestor.receive(invalid)
    wait_until(lambda: valid.settled and invalid.settled)

    assert sample("latam_ingest_messages_received_total") - received_before == 2
    missing_after = sample("latam_ingest_messages_dead_lettered_total", error_code="missing_field")
    assert missing_after - missing_before == 1


def test_outstanding_returns_to_where_it_was_once_everything_is_settled(harness):
    outstanding_before = sample("latam_ingest_outstanding_messages")
    harness.repository.rejected_ids = {"bad"}
    ingestor = harness.ingestor(size=3, max_seconds=60)
    thread = harness.start(ingestor)
    messages = [
        harness.message(message_id="ok"),
        harness.message(message_id="bad"),
        harness.message(b"null"),
        harness.message(message_id="tail"),
    ]

    for message in messages:
        ingestor.receive(message)
    wait_until(lambda: all(message.settled for message in messages[:3]))
    ingestor.stop()
    thread.join(WAIT_SECONDS)

    assert all(message.outcome == "ack" for message in messages)
    assert sample("latam_ingest_outstanding_messages") == outstanding_before
