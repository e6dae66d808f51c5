"""`Ingestor` batching: writes by count, bytes and age, in one insert, acked after it."""

from datetime import timedelta

from ingestion.tests.support import (
    PUBLISHED,
    WAIT_SECONDS,
    sample,
    wait_until,
)
from records.entities import Record

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


def test_batches_are_cut_by_bytes_below_the_request_limit(harness):
    """Rows of ~1 KiB and a 3 KiB limit: three rows fit, never four, whatever the count."""
    inserted: list[int] = []
    insert = harness.repository.records_insert
    harness.repository.records_insert = lambda *, rows: (
        inserted.append(len(rows)) or insert(rows=rows)
    )
    ingestor = harness.ingestor(size=100, max_seconds=60, max_bytes=3 * 1024)
    thread = harness.start(ingestor)
    messages = [harness.message({"nombre": "n" * 256, "apellido": "a" * 256}) for _ in range(9)]

    for message in messages:
        ingestor.receive(message)
    wait_until(lambda: all(message.settled for message in messages[:6]))
    ingestor.stop()  # the last three are not a full batch: flushed
    thread.join(WAIT_SECONDS)

    assert [message.outcome for message in messages] == ["ack"] * 9
    assert inserted == [3, 3, 3]


def test_a_row_larger_than_the_byte_limit_is_still_written_alone(harness):
    ingestor = harness.ingestor(size=100, max_seconds=60, max_bytes=100)
    harness.start(ingestor)
    messages = [harness.message(), harness.message()]

    for message in messages:
        ingestor.receive(message)
    wait_until(lambda: all(message.settled for message in messages))

    assert [message.outcome for message in messages] == ["ack", "ack"]
    assert harness.repository.calls["insert"] == 2
