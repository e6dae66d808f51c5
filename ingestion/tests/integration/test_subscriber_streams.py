"""Several streaming-pull streams on one subscription, against the emulators: four in one
`manage.py run_subscriber` process (INGEST_STREAMS), and two processes side by side (the
worker pool's instances). One emulator stream serves ~2,000 msg/s; streams add up."""

import signal
import time

import pytest

from ingestion.tests.support import eventually, log_events, publish_records, pull_all

COUNT = 20_000


def sigterm(subscriber) -> float:
    """SIGTERM the process; return how long it took to exit (it must exit 0)."""
    subscriber.process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    returncode = subscriber.process.wait(timeout=15)
    assert returncode == 0, subscriber.log.read_text()[-3000:]
    return time.monotonic() - started


def streams_opened(subscriber, count: int) -> None:
    """The metrics port opens before the streams do: wait for them."""
    eventually(
        lambda: subscriber.metric("latam_ingest_streams_open") == count,
        what=f"{count} streams open",
    )


def streams_closed(subscriber) -> int:
    [stopped] = log_events(subscriber.log, "subscriber stopped")
    assert stopped["streams"] == 4
    return int(stopped["streams_closed"])


def test_four_streams_store_20000_messages_and_sigterm_closes_all_four(
    subscribers, topology, warehouse
):
    subscriber = subscribers(INGEST_STREAMS="4")
    streams_opened(subscriber, 4)

    publish_records(topology, [f"four-{n:05d}" for n in range(COUNT)])
    eventually(lambda: warehouse.records_count() == COUNT, timeout=120, what="every record")

    assert subscriber.metric("latam_ingest_messages_dead_lettered_total") == 0
    assert pull_all(topology.dead_letter_subscription, ack=False) == []
    assert sigterm(subscriber) < 10
    assert streams_closed(subscriber) == 4


def test_sigterm_mid_flow_with_four_streams_exits_0_and_loses_nothing(
    subscribers, topology, warehouse
):
    subscriber = subscribers(INGEST_STREAMS="4")
    publish_records(topology, [f"mid-{n:05d}" for n in range(COUNT)])
    eventually(
        lambda: subscriber.metric("latam_ingest_messages_stored_total") >= 2_000,
        what="the subscriber busy",
        interval=0.02,
    )

    exited_after = sigterm(subscriber)
    print(f"SIGTERM with 4 busy streams: exit 0 after {exited_after:.2f} s")
    assert exited_after < 10
    assert streams_closed(subscriber) == 4
    assert warehouse.records_count() < COUNT  # stopped mid-flow
    # What it acked is stored; what it held or released comes back to the next one.
    subscribers(INGEST_STREAMS="4")
    eventually(lambda: warehouse.records_count() == COUNT, timeout=120, what="every record")
    assert pull_all(topology.dead_letter_subscription, ack=False) == []


# The local stack's policy (.env.example), not Terraform's 5: the emulator spends an
# attempt on each message it pushed ahead of flow control to the killed process's four
# streams, which Pub/Sub does not; with 5, a batch was dead-lettered in ~1 run of 4.
@pytest.mark.parametrize("max_delivery_attempts", [100])
def test_sigkill_with_four_streams_loses_nothing_and_the_leases_bound_the_recovery(
    subscribers, topology, warehouse, max_delivery_attempts
):
    """The emulator channel ends each streaming pull after INGEST_LEASE_SECONDS
    (latam/clients.py): with four streams too, the messages a killed process held, on
    all four, come back. The killed process's streams live on in the emulator until that
    deadline, taking messages of their own, so recovery takes a few leases (11–60 s seen
    on a busy 2-core machine), never the emulator's 1,800 s."""
    count = 5_000
    subscriber = subscribers(
        INGEST_STREAMS="4", INGEST_BATCH_SIZE="5000", INGEST_BATCH_MAX_SECONDS="60"
    )
    streams_opened(subscriber, 4)
    ids = publish_records(topology, [f"kill4-{n:04d}" for n in range(count)])
    eventually(
        lambda: subscriber.metric("latam_ingest_messages_received_total") >= 2_000,
        what="the process holding its flow-control maximum, none acked",
    )
    subscriber.process.kill()
    subscriber.process.wait(10)
    assert warehouse.records_count() == 0

    restarted = time.monotonic()
    subscribers(INGEST_STREAMS="4")
    eventually(lambda: warehouse.records_count() == count, timeout=150, what="every record")
    print(f"all {count} stored {time.monotonic() - restarted:.1f} s after the restart")
    assert len(ids) == count
    assert pull_all(topology.dead_letter_subscription, ack=False) == []


def test_two_processes_on_one_subscription_store_every_message_exactly_once(
    subscribers, topology, warehouse
):
    first, second = subscribers(INGEST_STREAMS="2"), subscribers(INGEST_STREAMS="2")
    streams_opened(first, 2)
    streams_opened(second, 2)

    ids = publish_records(topology, [f"two-{n:05d}" for n in range(COUNT)])
    eventually(lambda: warehouse.records_count() == COUNT, timeout=120, what="every record")

    # Rows are queryable a moment before each append's answer is counted.
    def stored() -> list[float]:
        return [p.metric("latam_ingest_messages_stored_total") for p in (first, second)]

    eventually(lambda: sum(stored()) >= COUNT, timeout=10, what="every append counted")
    assert all(stored()), f"both processes take part: {stored()}"
    # Through the repository, as the API reads: every id once, none missing.
    read = [
        record.id
        for offset in range(0, COUNT, 1000)
        for record in warehouse.records_list(limit=1000, offset=offset)
    ]
    assert sorted(read) == sorted(ids)
    assert pull_all(topology.dead_letter_subscription, ack=False) == []
