"""Freshness metrics of the `Ingestor`: publish → confirmed write of each stored row (the
histogram the freshness SLO reads), and the age of the oldest message it holds."""

from datetime import timedelta

from prometheus_client import REGISTRY

from ingestion.subscriber import Batching, Ingestor
from ingestion.tests.support import PUBLISHED, Harness, sample, wait_until
from records.repository import WarehouseUnavailable

HISTOGRAM = "latam_ingest_publish_to_stored_seconds"
OLDEST = "latam_ingest_oldest_unacked_message_age_seconds"


class Clock:
    """A wall clock the test moves: seconds since the epoch."""

    def __init__(self, at: float):
        self.now = at

    def __call__(self) -> float:
        return self.now


def ingestor(harness: Harness, clock: Clock, *, size: int, max_seconds: float = 60) -> Ingestor:
    return Ingestor(
        repository=harness.repository,
        dead_letters=harness.dead_letters,
        batching=Batching(size=size, max_seconds=max_seconds, retry_max_seconds=0.02),
        wall_clock=clock,
    )


def bucket(le: str) -> float:
    return sample(f"{HISTOGRAM}_bucket", le=le)


def oldest() -> float | None:
    return REGISTRY.get_sample_value(OLDEST)


def test_each_stored_row_is_observed_once_from_publish_time_to_its_write(harness):
    clock = Clock(PUBLISHED.timestamp() + 42.0)
    count, total = sample(f"{HISTOGRAM}_count"), sample(f"{HISTOGRAM}_sum")
    within_30, within_45 = bucket("30.0"), bucket("45.0")
    writer = ingestor(harness, clock, size=3)
    harness.start(writer)
    messages = [harness.message() for _ in range(3)]

    for message in messages:
        writer.receive(message)
    wait_until(lambda: all(message.settled for message in messages))

    assert sample(f"{HISTOGRAM}_count") - count == 3
    assert sample(f"{HISTOGRAM}_sum") - total == 3 * 42.0
    assert bucket("30.0") - within_30 == 0
    assert bucket("45.0") - within_45 == 3


def test_sixty_seconds_the_objective_is_a_bucket_boundary_and_an_hour_is_covered(harness):
    clock = Clock(PUBLISHED.timestamp() + 61.0)
    within_60, within_hour = bucket("60.0"), bucket("3600.0")
    writer = ingestor(harness, clock, size=1)
    harness.start(writer)
    late = harness.message()

    writer.receive(late)
    wait_until(lambda: late.settled)

    assert bucket("60.0") - within_60 == 0  # 61 s is out of the objective
    assert bucket("3600.0") - within_hour == 1


def test_dead_letters_are_not_observed(harness):
    clock = Clock(PUBLISHED.timestamp() + 1.0)
    count = sample(f"{HISTOGRAM}_count")
    harness.repository.rejected_ids = {"refused"}
    writer = ingestor(harness, clock, size=2)
    harness.start(writer)
    invalid = harness.message(b"not json")
    refused = harness.message(message_id="refused")
    stored = harness.message(message_id="stored")

    for message in (invalid, refused, stored):
        writer.receive(message)
    wait_until(lambda: all(m.settled for m in (invalid, refused, stored)))

    assert len(harness.publisher.publications) == 2  # both dead-lettered, then acked
    assert sample(f"{HISTOGRAM}_count") - count == 1  # only the stored one


def test_oldest_unacked_is_the_oldest_publish_time_held_whatever_the_arrival_order(harness):
    clock = Clock(PUBLISHED.timestamp() + 100.0)
    writer = ingestor(harness, clock, size=10)  # no writer thread yet: all stay buffered
    assert oldest() == 0.0

    writer.receive(harness.message(publish_time=PUBLISHED))
    writer.receive(harness.message(publish_time=PUBLISHED - timedelta(seconds=30)))  # redelivered
    writer.receive(harness.message(publish_time=PUBLISHED + timedelta(seconds=50)))

    assert oldest() == 130.0
    clock.now += 5
    assert oldest() == 135.0  # computed when read, not when received

    harness.start(writer)
    writer.stop()  # flushes what it holds
    wait_until(lambda: all(message.settled for message in harness.messages))
    assert oldest() == 0.0


def test_oldest_unacked_counts_a_batch_the_writer_holds_while_the_warehouse_is_down(harness):
    clock = Clock(PUBLISHED.timestamp() + 20.0)
    harness.repository.insert_failure = WarehouseUnavailable("insert failed", reason="unavailable")
    writer = ingestor(harness, clock, size=2, max_seconds=0.01)
    harness.start(writer)
    messages = [harness.message(), harness.message()]

    for message in messages:
        writer.receive(message)
    wait_until(lambda: harness.repository.calls["insert"] >= 2)  # taken, retried, held

    assert oldest() == 20.0
    harness.repository.insert_failure = None
    wait_until(lambda: all(message.settled for message in messages))
    assert oldest() == 0.0
