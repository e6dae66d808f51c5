"""`Ingestor` when the warehouse refuses rows, refuses requests, or goes away."""

import pytest

from ingestion.tests.support import (
    sample,
    wait_until,
    warehouse_up,
)
from records.repository import WarehouseUnavailable

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


def test_an_outage_holds_the_batch_nacks_nothing_and_writes_it_once_back(harness):
    failures_before = sample("latam_ingest_write_failures_total", reason="unavailable")
    harness.repository.unavailable = True
    ingestor = harness.ingestor(size=2, max_seconds=0.05)
    thread = harness.start(ingestor)
    assert warehouse_up() == 1
    first = [harness.message(), harness.message()]

    for message in first:
        ingestor.receive(message)
    wait_until(lambda: warehouse_up() == 0)
    held = harness.message()  # arrives during the outage
    ingestor.receive(held)
    wait_until(lambda: harness.repository.calls["insert"] >= 5)

    assert not any(message.settled for message in (*first, held))  # nothing nacked
    assert harness.repository.calls["ping"] == 0  # retried by writing, not by probing
    assert thread.is_alive()
    assert sample("latam_ingest_write_failures_total", reason="unavailable") > failures_before

    harness.repository.unavailable = False
    wait_until(lambda: all(message.settled for message in (*first, held)))

    assert [message.outcome for message in (*first, held)] == ["ack"] * 3
    assert warehouse_up() == 1
    for message in (*first, held):
        assert harness.repository.record_get(record_id=message.message_id) is not None


def test_an_outage_of_any_length_spends_no_delivery_attempt(harness):
    """Hundreds of retries (the equivalent of hours at the real backoff cap): nothing is
    nacked or dead-lettered, so Pub/Sub's attempt counter never moves."""
    harness.repository.unavailable = True
    ingestor = harness.ingestor(size=1, max_seconds=0.01, retry_max_seconds=0.001)
    harness.start(ingestor)
    messages = [harness.message() for _ in range(5)]
    for message in messages:
        ingestor.receive(message)

    wait_until(lambda: harness.repository.calls["insert"] >= 300)

    assert not any(message.settled for message in messages)
    assert harness.publisher.publications == []
    harness.repository.unavailable = False
    wait_until(lambda: all(message.settled for message in messages))
    assert [message.outcome for message in messages] == ["ack"] * 5


@pytest.mark.parametrize(
    ("reason", "level"),
    [("quota", "WARNING"), ("denied", "ERROR"), ("missing", "ERROR")],
)
def test_inserts_refused_while_the_table_answers_are_held_and_alerted(
    harness, caplog, reason, level
):
    """Quota, a lost permission, a dropped table: pings pass, writes fail. Valid data
    is held, never dead-lettered; the permanent ones log an ERROR (the alert)."""
    failures_before = sample("latam_ingest_write_failures_total", reason=reason)
    harness.repository.insert_failure = WarehouseUnavailable("insert failed", reason=reason)
    ingestor = harness.ingestor(size=2, max_seconds=0.01)
    harness.start(ingestor)
    messages = [harness.message(), harness.message()]

    for message in messages:
        ingestor.receive(message)
    wait_until(lambda: harness.repository.calls["insert"] >= 3)

    assert not any(message.settled for message in messages)
    assert harness.publisher.publications == []
    assert sample("latam_ingest_write_failures_total", reason=reason) - failures_before >= 3
    failures = [r for r in caplog.records if getattr(r, "reason", None) == reason]
    assert failures and {r.levelname for r in failures} == {level}

    harness.repository.insert_failure = None
    wait_until(lambda: all(message.settled for message in messages))
    assert [message.outcome for message in messages] == ["ack", "ack"]


def test_a_request_refused_as_a_whole_is_split_until_the_bad_rows_are_alone(harness):
    splits_before = sample("latam_ingest_batch_splits_total")
    harness.repository.request_refusing_ids = {"bad-3", "bad-6"}
    ingestor = harness.ingestor(size=8, max_seconds=60)
    harness.start(ingestor)
    messages = [
        harness.message(message_id=f"bad-{n}" if n in (3, 6) else f"good-{n}") for n in range(8)
    ]

    for message in messages:
        ingestor.receive(message)
    wait_until(lambda: all(message.settled for message in messages))

    assert all(message.outcome == "ack" for message in messages)
    dead = {p.attributes["source_message_id"]: p for p in harness.publisher.publications}
    assert set(dead) == {"bad-3", "bad-6"}
    assert {p.attributes["error_code"] for p in dead.values()} == {"warehouse_rejected"}
    for message in messages:
        stored = harness.repository.record_get(record_id=message.message_id)
        assert (stored is None) == message.message_id.startswith("bad")
    # 8 → 4+4 → 2+2+2+2 → the two bad pairs in 1+1: 1 + 2 + 4 + 4 calls
    assert harness.repository.calls["insert"] == 11
    assert sample("latam_ingest_batch_splits_total") - splits_before == 1 + 2 + 2


def test_a_lone_row_refused_with_its_request_is_dead_lettered(harness):
    harness.repository.request_refusing_ids = {"bad"}
    ingestor = harness.ingestor(size=1, max_seconds=60)
    harness.start(ingestor)
    message = harness.message(message_id="bad")

    ingestor.receive(message)
    wait_until(lambda: message.settled)

    assert message.outcome == "ack"
    [publication] = harness.publisher.publications
    assert publication.attributes["error_code"] == "warehouse_rejected"
