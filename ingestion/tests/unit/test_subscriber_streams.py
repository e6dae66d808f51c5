"""`subscriber_run` with several streaming-pull streams on one subscription (fake client):
one Ingestor fed by every stream, one writer per stream, the process's flow control split
between the streams, and a shutdown or a failure that closes all of them."""

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from google.api_core import exceptions as google_exceptions
from google.cloud.pubsub_v1.types import FlowControl

from ingestion import subscriber
from ingestion.subscriber import Ingestor
from ingestion.tests.support import (
    WAIT_SECONDS,
    FakeSubscriberClient,
    sample,
    wait_until,
)

SUBSCRIPTION = "projects/p/subscriptions/s"
FLOW_CONTROL = FlowControl(
    max_messages=2000,
    max_bytes=20 * 1024 * 1024,
    max_lease_duration=3600,
    max_duration_per_lease_extension=10,
)


@dataclass
class Run:
    """`subscriber_run` in a thread of its own; `errors` holds what it raised."""

    thread: threading.Thread
    stop: threading.Event
    errors: list[BaseException] = field(default_factory=list)

    def join(self, timeout: float = WAIT_SECONDS) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "subscriber_run did not return"


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:  # a test that failed half-way leaves nothing running
        run.stop.set()
        run.thread.join(WAIT_SECONDS)


@pytest.fixture
def start(harness, runs):
    def start(
        client: FakeSubscriberClient,
        ingestor: Ingestor,
        *,
        streams: int,
        flow_control: FlowControl = FLOW_CONTROL,
        shutdown_seconds: float = 5,
    ) -> Run:
        stop = threading.Event()
        run = Run(thread=threading.Thread(target=lambda: None), stop=stop)

        def target() -> None:
            try:
                subscriber.subscriber_run(
                    client=client,
                    subscription=SUBSCRIPTION,
                    ingestor=ingestor,
                    dead_letters=harness.dead_letters,
                    flow_control=flow_control,
                    stop=stop,
                    shutdown_seconds=shutdown_seconds,
                    streams=streams,
                )
            except BaseException as error:  # surfaced in the test
                run.errors.append(error)

        run.thread = threading.Thread(target=target, name="test-subscriber-run", daemon=True)
        runs.append(run)
        run.thread.start()
        wait_until(lambda: len(client.streams) == streams or run.errors)
        return run

    return start


def writer_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("ingest-writer")]


def test_n_streams_subscribe_n_times_and_feed_one_ingestor(harness, start):
    open_before = sample("latam_ingest_streams_open")
    client = FakeSubscriberClient()
    ingestor = harness.ingestor(size=4, max_seconds=60)

    run = start(client, ingestor, streams=4)

    assert [stream.subscription for stream in client.streams] == [SUBSCRIPTION] * 4
    assert all(stream.callback == ingestor.receive for stream in client.streams)
    assert sample("latam_ingest_streams_open") - open_before == 4
    messages = [harness.message() for _ in client.streams]
    for stream, message in zip(client.streams, messages, strict=True):
        stream.deliver(message)
    wait_until(lambda: all(message.settled for message in messages))
    # One buffer for every stream: their four rows are one batch, one write.
    assert [message.outcome for message in messages] == ["ack"] * 4
    assert harness.repository.calls["insert"] == 1

    run.stop.set()
    run.join()

    assert run.errors == []
    assert all(stream.cancelled.is_set() for stream in client.streams)
    assert sample("latam_ingest_streams_open") == open_before
    assert writer_threads() == []


@pytest.mark.parametrize("streams", [1, 3, 4, 7])
def test_the_process_flow_control_is_split_between_the_streams(harness, start, streams):
    """The streams together hold what one process may hold, never N times it."""
    client = FakeSubscriberClient()

    run = start(client, harness.ingestor(), streams=streams)
    shares = [stream.flow_control for stream in client.streams]
    run.stop.set()
    run.join()

    assert sum(share.max_messages for share in shares) == FLOW_CONTROL.max_messages
    assert sum(share.max_bytes for share in shares) == FLOW_CONTROL.max_bytes
    assert max(s.max_messages for s in shares) - min(s.max_messages for s in shares) <= 1
    assert max(s.max_bytes for s in shares) - min(s.max_bytes for s in shares) <= 1
    for share in shares:  # leases are per message: as they were
        assert share.max_lease_duration == FLOW_CONTROL.max_lease_duration
        assert share.max_duration_per_lease_extension == 10


@pytest.mark.parametrize("streams", [0, 3])
def test_streams_that_cannot_each_hold_a_message_are_refused_before_subscribing(harness, streams):
    client = FakeSubscriberClient()

    with pytest.raises(ValueError, match="streams"):
        subscriber.subscriber_run(
            client=client,
            subscription=SUBSCRIPTION,
            ingestor=harness.ingestor(),
            dead_letters=harness.dead_letters,
            flow_control=FlowControl(max_messages=2, max_bytes=1024),
            stop=threading.Event(),
            shutdown_seconds=1,
            streams=streams,
        )

    assert client.streams == []
    assert writer_threads() == []


def test_each_stream_has_a_writer_so_one_slow_write_does_not_hold_the_next(harness, start):
    """Two batches, each waiting for the other's write to begin: only two writers at once
    get both through (one writer would break the barrier and fail)."""
    both_writing = threading.Barrier(2, timeout=WAIT_SECONDS)
    insert = harness.repository.records_insert

    def insert_when_both_write(*, rows):
        both_writing.wait()
        return insert(rows=rows)

    harness.repository.records_insert = insert_when_both_write
    client = FakeSubscriberClient()
    ingestor = harness.ingestor(size=1, max_seconds=60)

    run = start(client, ingestor, streams=2)
    assert len(writer_threads()) == 2
    messages = [harness.message(), harness.message()]
    for stream, message in zip(client.streams, messages, strict=True):
        stream.deliver(message)
    wait_until(lambda: all(message.settled for message in messages))
    run.stop.set()
    run.join()

    assert run.errors == []
    assert [message.outcome for message in messages] == ["ack", "ack"]


def test_stop_flushes_and_acks_every_stream_s_messages_before_closing_every_stream(
    harness, start, caplog
):
    caplog.set_level(logging.INFO, logger="ingestion.subscriber")
    unsettled_at_cancel: list[int] = []
    client = FakeSubscriberClient(
        on_cancel=lambda stream: unsettled_at_cancel.append(
            sum(not message.settled for message in harness.messages)
        )
    )
    ingestor = harness.ingestor(size=100, max_seconds=60)  # never full, never old
    run = start(client, ingestor, streams=3, shutdown_seconds=3)
    for stream in client.streams:
        stream.deliver(harness.message())
        stream.deliver(harness.message())

    stopped = time.monotonic()
    run.stop.set()
    run.join()

    assert time.monotonic() - stopped < 3
    assert run.errors == []
    assert [message.outcome for message in harness.messages] == ["ack"] * 6
    assert harness.repository.calls["insert"] == 1
    assert unsettled_at_cancel == [0, 0, 0]  # acks are queued before any stream closes
    [stopped_log] = [r for r in caplog.records if r.getMessage() == "subscriber stopped"]
    assert stopped_log.streams == 3
    assert stopped_log.streams_closed == 3


def test_a_stream_that_fails_ends_the_run_after_closing_the_others(harness, start):
    """A stream the client gave up on (a deleted subscription, permissions) ends the run
    as with one stream: the process exits and the platform restarts it."""
    client = FakeSubscriberClient()
    ingestor = harness.ingestor(size=100, max_seconds=60)
    run = start(client, ingestor, streams=3)
    held = [harness.message(), harness.message()]
    client.streams[0].deliver(held[0])
    client.streams[2].deliver(held[1])

    client.streams[1].fail(google_exceptions.NotFound("subscription gone"))
    run.join()

    assert [type(error) for error in run.errors] == [google_exceptions.NotFound]
    assert client.streams[0].cancelled.is_set() and client.streams[2].cancelled.is_set()
    assert [message.outcome for message in held] == ["ack", "ack"]  # flushed first


def test_a_stream_that_does_not_close_in_time_does_not_hold_the_exit(harness, start, caplog):
    caplog.set_level(logging.INFO, logger="ingestion.subscriber")
    client = FakeSubscriberClient()
    run = start(client, harness.ingestor(), streams=2, shutdown_seconds=1)
    client.streams[0].closes = False

    stopped = time.monotonic()
    run.stop.set()
    run.join()

    assert time.monotonic() - stopped < 2
    assert run.errors == []
    assert all(stream.cancelled.is_set() for stream in client.streams)
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "stream did not close in time"
    ]
    [stopped_log] = [r for r in caplog.records if r.getMessage() == "subscriber stopped"]
    assert stopped_log.streams_closed == 1


def test_a_dead_writer_stops_every_stream(harness, start, caplog):
    def broken_insert(*, rows):
        raise ValueError("a bug, not a warehouse failure")

    harness.repository.records_insert = broken_insert
    client = FakeSubscriberClient()
    ingestor = harness.ingestor(size=1, max_seconds=0.01)
    run = start(client, ingestor, streams=3)
    message = harness.message()
    message.released = True

    client.streams[1].deliver(message)
    run.join()

    assert [type(error) for error in run.errors] == [RuntimeError]
    assert "writer" in str(run.errors[0])
    assert all(stream.cancelled.is_set() for stream in client.streams)
    assert message.settlements == []
    [logged] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert logged.error_type == "ValueError"


def test_the_callback_scheduler_runs_callbacks_on_one_thread_of_its_own():
    scheduler = subscriber.callback_scheduler()
    ran = threading.Event()
    threads: list[threading.Thread] = []

    def callback(message: str) -> None:
        threads.append(threading.current_thread())
        if len(threads) == 3:
            ran.set()

    for message in ("m1", "m2", "m3"):
        scheduler.schedule(callback, message)
    assert ran.wait(WAIT_SECONDS)
    assert scheduler.shutdown(await_msg_callbacks=True) == []
    assert len(threads) == 3
    # Off the caller's (the stream's) thread, and one thread for all of them.
    assert threading.current_thread() not in threads and len(set(threads)) == 1


def test_a_stream_that_ends_for_a_passing_reason_is_reopened_and_the_run_goes_on(
    harness, start, caplog
):
    """The emulator resets streams now and then (CANCELLED, "Stream removed"), which the
    client does not retry: that stream is opened again, with its share of flow control,
    and the process keeps writing."""
    client = FakeSubscriberClient()
    ingestor = harness.ingestor(size=1, max_seconds=60)
    run = start(client, ingestor, streams=2)
    client.streams[1].fail(google_exceptions.Cancelled("Stream removed"))

    wait_until(lambda: len(client.streams) == 3)
    assert client.streams[2].flow_control == client.streams[1].flow_control
    message = harness.message()
    client.streams[2].deliver(message)
    wait_until(lambda: len(message.settlements) == 1)
    assert message.outcome == "ack"
    assert run.thread.is_alive() and not run.errors
    assert "streaming pull ended; reopened" in caplog.text
    run.stop.set()
    run.join()
    assert not run.errors


def test_streams_that_keep_ending_end_the_run(harness, start, monkeypatch):
    monkeypatch.setattr(subscriber, "STREAM_REOPENS_PER_MINUTE", 2)
    client = FakeSubscriberClient()
    run = start(client, harness.ingestor(size=1, max_seconds=60), streams=1)
    for opened in (1, 2, 3):
        wait_until(lambda opened=opened: len(client.streams) == opened or run.errors)
        client.streams[-1].fail(google_exceptions.Cancelled("Stream removed"))
    run.join()
    assert len(client.streams) == 3  # two reopens, then the process gives up
    assert [type(error) for error in run.errors] == [google_exceptions.Cancelled]
