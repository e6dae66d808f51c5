"""`Ingestor` and `DeadLetters`: invalid messages go to the dead-letter topic with why,
acked only once published."""

import threading

import pytest

from ingestion.deadletters import attributes_original, dead_letter_attributes
from ingestion.tests.support import (
    DEAD_LETTER_TOPIC as TOPIC,
)
from ingestion.tests.support import (
    PUBLISHED,
    WAIT_SECONDS,
    sample,
    wait_until,
)

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
        "source_publish_time": PUBLISHED.isoformat(),
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


def test_attributes_original_of_a_letter_forwarded_by_pubsub_drops_only_pubsubs_own():
    attributes = {
        "origin": "crm",
        "error_source": "producer's own",
        "error_code": "the producer's own too",
        "CloudPubSubDeadLetterSourceDeliveryCount": "5",
        "CloudPubSubDeadLetterSourceSubscription": "data-ingest-sub",
        "CloudPubSubDeadLetterSourceSubscriptionProject": "latam-test",
    }

    assert attributes_original(attributes) == {
        "origin": "crm",
        "error_source": "producer's own",
        "error_code": "the producer's own too",
    }


def test_attributes_original_undoes_dead_letter_attributes_but_keeps_the_publish_time(harness):
    message = harness.message(b"x", attributes={"origin": "crm", "kind": "alta"})

    attributes = dead_letter_attributes(message, code="invalid_json", error="bad")

    assert attributes_original(attributes) == {
        "origin": "crm",
        "kind": "alta",
        "source_publish_time": PUBLISHED.isoformat(),
    }
    message.ack()  # settle it for the harness


PRODUCER_ATTRIBUTES = {
    "error_code": "E-17",
    "error": "producer's own",
    "delivery_attempt": "x",
    "source_message_id": "upstream-9",
    "producer.error_code": "already prefixed",
    "CloudPubSubDeadLetterSourceDeliveryCount": "forged",
    "topic": "crm",
    "origin": "crm",
}


def test_a_producers_attributes_named_like_ours_survive_dead_lettering_and_replay(harness):
    message = harness.message(b"x", attributes=PRODUCER_ATTRIBUTES)

    attributes = dead_letter_attributes(message, code="invalid_json", error="bad")

    assert (attributes["error_code"], attributes["error"]) == ("invalid_json", "bad")
    assert attributes["source_message_id"] == message.message_id
    assert attributes["producer.error_code"] == "E-17"
    assert "CloudPubSubDeadLetterSourceDeliveryCount" not in attributes  # not mistaken for
    assert attributes_original(attributes) == {  # a letter forwarded by Pub/Sub
        **PRODUCER_ATTRIBUTES,
        "source_publish_time": PUBLISHED.isoformat(),
    }
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
