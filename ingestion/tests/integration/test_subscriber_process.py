"""`manage.py run_subscriber` as a process, against the emulators: stopped by SIGTERM,
killed by SIGKILL, and left running while the warehouse goes away and comes back."""

import functools
import json
import signal
import time

from ingestion.tests.support import eventually, publish_records, pull_all
from latam.clients import clients_reset, pubsub_publisher
from records import wiring
from scripts.devstack import Stack, free_port

COUNT = 50


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
    subscribers()
    eventually(lambda: stored_ids(warehouse) == ids, timeout=60, what="every record after restart")
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


def test_recovery_after_repeated_kills_is_bounded_and_dead_letters_nothing(
    subscribers, topology, warehouse
):
    """10,000 messages; the subscriber SIGKILLed three times with thousands in flight,
    then started for good: every record is stored within a bound set by the lease
    (INGEST_LEASE_SECONDS), none is dead-lettered (5 attempts, the real policy's
    minimum). The emulator never notices a killed stream and would go on leasing
    messages to it for 30 minutes, one delivery attempt per lease (latam/clients.py)."""
    count = 10_000
    publish_records(topology, [f"k-{n:05d}" for n in range(count)])
    for kill in range(3):
        subscriber = subscribers(INGEST_BATCH_SIZE="500")
        received = functools.partial(subscriber.metric, "latam_ingest_messages_received_total")
        eventually(
            lambda: received() >= 1_500,  # noqa: B023 - called before the next iteration
            what=f"thousands of messages in flight before kill {kill + 1}",
        )
        subscriber.process.kill()
        subscriber.process.wait(10)
    started = time.monotonic()

    subscribers()
    eventually(lambda: warehouse.records_count() == count, timeout=60, what="every record")

    print(f"all {count} records stored {time.monotonic() - started:.1f} s after the last start")
    assert pull_all(topology.dead_letter_subscription, ack=False) == []


def test_an_outage_many_times_longer_than_the_attempts_dead_letters_nothing_valid(
    subscribers, topology, settings, tmp_path
):
    """The warehouse gone for 30 s: many times 5 attempts × the 2 s lease (and than the
    old code's nack-and-hold cycle). Every message is delivered once and held; all are
    stored once it is back, none is dead-lettered."""
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
        settings.BIGQUERY_EMULATOR_GRPC_HOST = f"127.0.0.1:{grpc_port}"
        clients_reset()
        wiring.record_repository.cache_clear()
        repository = wiring.record_repository()
        repository.table_ensure(location="US")
        subscriber = subscribers(
            INGEST_RETRY_MAX_SECONDS="1",
            INGEST_LEASE_SECONDS="2",
            BIGQUERY_TIMEOUT_SECONDS="2",
            INGEST_MAX_HOLD_SECONDS="2",  # what the code before #8 released held messages after
        )
        before = publish_records(topology, [f"before-{n}" for n in range(10)])
        eventually(lambda: stored_ids(repository) == before, what="records before the outage")

        stack.stop("bqemulator")
        during = publish_records(topology, [f"during-{n}" for n in range(COUNT)])
        eventually(
            lambda: subscriber.metric("latam_ingest_warehouse_up") == 0,
            what="the subscriber to see the warehouse down",
        )
        time.sleep(30)
        assert subscriber.metric("latam_ingest_messages_stored_total") == 10  # none acked early
        assert subscriber.process.poll() is None

        warehouse_start()
        eventually(
            lambda: stored_ids(repository) == before | during,
            timeout=90,
            what="every record once the warehouse is back",
        )
        assert subscriber.process.poll() is None
        # Rows are queryable once the append commits, a moment before its answer reaches
        # the writer, which then marks the warehouse up.
        eventually(
            lambda: subscriber.metric("latam_ingest_warehouse_up") == 1,
            timeout=10,
            what="the subscriber to see the warehouse up",
        )
        assert subscriber.metric("latam_ingest_write_failures_total", reason="unavailable") >= 1
        # Delivered once each: the outage spent no delivery attempt.
        assert subscriber.metric("latam_ingest_messages_received_total") == 10 + COUNT
        assert subscriber.metric("latam_ingest_messages_dead_lettered_total") == 0
        assert pull_all(topology.dead_letter_subscription, ack=False) == []
    finally:
        stack.stop_all()


HOSTILE_MESSAGES = {
    "invalid_json": [b"{not json", b'{"id": "1", "nombre": NaN}', b"[" * 20_000 + b"]" * 20_000],
    "not_utf8": [b"\xff\xfe\x00junk", b'{"id": "\xc3"}'],
    "not_object": [b"9" * 5_000, b"[1, 2]", b"null"],
    "missing_field": [b'{"id": "1"}', b"{}"],
    "invalid_field": [
        json.dumps({"id": "h-1", "nombre": 1, "apellido": "A", "pais": "P"}).encode(),
        json.dumps({"id": "h-2", "nombre": "Ana\u202e", "apellido": "A", "pais": "P"}).encode(),
        json.dumps(
            {"id": "h-3", "nombre": "Ana", "apellido": "\ud800", "pais": "P"}, ensure_ascii=True
        ).encode(),
        b'{"id": "h-4", "nombre": "A", "apellido": "B", "pais": ' + b"9" * 5_000 + b"}",
    ],
    "too_large": [b"x" * (64 * 1024 + 1)],
}


def test_hostile_messages_interleaved_with_valid_ones_never_stop_the_process(
    subscribers, topology, warehouse
):
    subscriber = subscribers()
    publisher = pubsub_publisher()
    hostile = [(code, data) for code, items in HOSTILE_MESSAGES.items() for data in items]
    valid_ids = [f"ok-{n}" for n in range(len(hostile) + 1)]
    futures = []
    for n, record_id in enumerate(valid_ids):
        record = {"id": record_id, "nombre": "Ana", "apellido": "Ruiz", "pais": "Perú"}
        # A huge integer under an unknown key is valid JSON, ignored like any unknown key.
        data = json.dumps({**record, "big": 0}).encode().replace(b"0}", b"9" * 5_000 + b"}")
        futures.append(publisher.publish(topology.topic, data))
        if n < len(hostile):
            futures.append(publisher.publish(topology.topic, hostile[n][1], case=str(n)))
    for future in futures:
        future.result(timeout=10)

    eventually(lambda: stored_ids(warehouse) == set(valid_ids), what="every valid record")
    letters: list = []

    def every_hostile_dead_lettered() -> bool:
        letters.extend(pull_all(topology.dead_letter_subscription, ack=True))
        return len(letters) >= len(hostile)

    eventually(every_hostile_dead_lettered, what="a dead letter for each hostile message")
    assert subscriber.process.poll() is None, subscriber.log.read_text()[-3000:]
    codes = {
        item.message.attributes["case"]: item.message.attributes["error_code"] for item in letters
    }
    assert codes == {str(n): code for n, (code, _) in enumerate(hostile)}
