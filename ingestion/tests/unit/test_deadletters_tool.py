"""The operator's side of dead letters (`manage.py dead_letters`) on in-memory fakes of
the subscriber and publisher, with Pub/Sub's own message types."""

from concurrent.futures import Future
from datetime import UTC, datetime

import pytest
from google.pubsub_v1 import PubsubMessage, ReceivedMessage

from ingestion.deadletters import (
    dead_letter_describe,
    dead_letters_pull,
    dead_letters_replay,
    terminal_safe,
)

PUBLISHED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SUBSCRIPTION = "projects/p/subscriptions/dead"


def received(n: int, data: bytes = b"{}", **attributes: str) -> ReceivedMessage:
    return ReceivedMessage(
        ack_id=f"ack-{n}",
        message=PubsubMessage(
            data=data, attributes=attributes, message_id=f"dl-{n}", publish_time=PUBLISHED
        ),
    )


class FakeSubscriber:
    def __init__(self, messages: list[ReceivedMessage]):
        self.waiting = list(messages)
        self.acked: list[str] = []
        self.handed_back: list[str] = []

    def pull(self, *, subscription: str, max_messages: int, timeout: float, retry) -> object:
        taken, self.waiting = self.waiting[:max_messages], self.waiting[max_messages:]
        return type("PullResponse", (), {"received_messages": taken})

    def acknowledge(self, *, subscription: str, ack_ids: list[str]) -> None:
        self.acked += ack_ids

    def modify_ack_deadline(self, *, subscription, ack_ids, ack_deadline_seconds) -> None:
        assert ack_deadline_seconds == 0
        self.handed_back += ack_ids


class RecordingPublisher:
    def __init__(self, *, failing_data: bytes | None = None):
        self.published: list[tuple[str, bytes, dict]] = []
        self.failing_data = failing_data

    def publish(self, *, topic: str, data: bytes, attributes) -> Future:
        future: Future = Future()
        if data == self.failing_data:
            future.set_exception(TimeoutError())
        else:
            self.published.append((topic, data, dict(attributes)))
            future.set_result("id")
        return future


def test_pull_takes_at_most_the_limit_in_chunks():
    subscriber = FakeSubscriber([received(n) for n in range(250)])

    taken = dead_letters_pull(subscriber=subscriber, subscription=SUBSCRIPTION, limit=230, wait=1)

    assert [item.ack_id for item in taken] == [f"ack-{n}" for n in range(230)]
    assert len(subscriber.waiting) == 20


def test_replay_restores_the_producers_attributes_and_the_original_publish_time():
    ours = received(
        1,
        b'{"id": "1"}',
        error_code="warehouse_rejected",
        error="warehouse: invalid",
        delivery_attempt="2",
        source_message_id="m-1",
        source_publish_time="2020-01-01T00:00:00+00:00",
        **{"producer.error_code": "E-17", "topic": "crm"},
    )
    forwarded = received(2, b'{"id": "2"}', CloudPubSubDeadLetterSourceDeliveryCount="5", k="v")
    failing = received(3, b"fails", error_code="invalid_json", error="x")
    subscriber, publisher = FakeSubscriber([]), RecordingPublisher(failing_data=b"fails")

    counts = dead_letters_replay(
        subscriber=subscriber,
        subscription=SUBSCRIPTION,
        received=[ours, forwarded, failing],
        publisher=publisher,
        topic="ingest",
    )

    assert counts == (2, 1)
    assert publisher.published == [
        (
            "ingest",
            b'{"id": "1"}',
            {
                "error_code": "E-17",
                "topic": "crm",
                "source_publish_time": "2020-01-01T00:00:00+00:00",
            },
        ),
        ("ingest", b'{"id": "2"}', {"k": "v", "source_publish_time": PUBLISHED.isoformat()}),
    ]
    assert (subscriber.acked, subscriber.handed_back) == (["ack-1", "ack-2"], ["ack-3"])


HOSTILE = "\x1b]0;pwned\x07\x1b[2J\u202eevil\nfake line"


def test_describe_escapes_what_producers_control():
    message = received(
        1, HOSTILE.encode(), error_code="invalid_json", error=HOSTILE, source_message_id=HOSTILE
    ).message

    line = dead_letter_describe(message, show_data=True)

    assert "\x1b" not in line and "\u202e" not in line and "\x07" not in line
    assert line.count("\n") == 1  # the data line we add, not the producer's newline
    assert "\\x1b]0;pwned\\x07" in line and "\\u202eevil\\nfake line" in line


def test_describe_tells_a_letter_forwarded_by_pubsub_from_a_producers_error_code():
    message = received(
        1, error_code="a producer's own attribute", CloudPubSubDeadLetterSourceDeliveryCount="5"
    ).message

    line = dead_letter_describe(message, show_data=False)

    assert "attempts=5  delivery_attempts_exhausted" in line
    assert "producer's own" not in line


def test_describe_shows_data_only_on_request():
    message = received(1, b'{"nombre": "Ana"}', error_code="missing_field", error="x").message

    assert "Ana" not in dead_letter_describe(message, show_data=False)
    assert 'data: {"nombre": "Ana"}' in dead_letter_describe(message, show_data=True)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("José Pérez", "José Pérez"),
        ("a\tb", "a\\tb"),
        ("\x9b31m", "\\x9b31m"),
        ("\u2066", "\\u2066"),
    ],
)
def test_terminal_safe(text, shown):
    assert terminal_safe(text) == shown
