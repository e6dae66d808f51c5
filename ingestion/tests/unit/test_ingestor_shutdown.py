"""`Ingestor` at shutdown, and the counters it keeps."""

import threading

import pytest
from google.cloud.pubsub_v1.types import FlowControl

from ingestion import subscriber
from ingestion.tests.support import (
    WAIT_SECONDS,
    sample,
    wait_until,
    warehouse_up,
)

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


def test_stop_during_an_outage_releases_everything_held_without_another_insert(harness):
    shutdown_before = sample("latam_ingest_messages_retried_total", reason="shutdown")
    harness.repository.unavailable = True
    ingestor = harness.ingestor(size=2, max_seconds=60, retry_max_seconds=60)
    thread = harness.start(ingestor)
    held = [harness.message(), harness.message()]
    for message in held:
        ingestor.receive(message)
    wait_until(lambda: warehouse_up() == 0)
    pending = harness.message()
    ingestor.receive(pending)

    ingestor.stop()
    thread.join(WAIT_SECONDS)

    assert not thread.is_alive()
    for message in (*held, pending):
        assert message.settlements == []  # neither acked nor nacked: the lease lapses
        message.released = True
    assert harness.repository.calls["insert"] == 1
    assert sample("latam_ingest_messages_retried_total", reason="shutdown") - shutdown_before == 3


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


class FakeStream:
    """The streaming-pull future of `client.subscribe`: open until cancelled."""

    def __init__(self):
        self.cancelled = threading.Event()

    def done(self) -> bool:
        return self.cancelled.is_set()

    def cancel(self) -> None:
        self.cancelled.set()

    def result(self, timeout: float) -> None:
        self.cancelled.wait(timeout)


def test_a_writer_that_fails_stops_the_subscriber_instead_of_holding_leases(harness, caplog):
    """A bug in the writer must not leave messages leased for days by a live process."""

    def broken_insert(*, rows):
        raise ValueError("a bug, not a warehouse failure")

    harness.repository.records_insert = broken_insert
    ingestor = harness.ingestor(size=1, max_seconds=0.01)
    stream = FakeStream()
    client = type("Client", (), {"subscribe": lambda self, *args, **kwargs: stream})()
    message = harness.message()
    message.released = True
    ingestor.receive(message)

    with pytest.raises(RuntimeError, match="writer"):
        subscriber.subscriber_run(
            client=client,
            subscription="projects/p/subscriptions/s",
            ingestor=ingestor,
            dead_letters=harness.dead_letters,
            flow_control=FlowControl(),
            stop=threading.Event(),  # never set: the failure alone ends the run
            shutdown_seconds=2,
        )

    assert stream.cancelled.is_set()
    assert message.settlements == []
    [logged] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert logged.error_type == "ValueError"
