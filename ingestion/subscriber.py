"""The write side: Pub/Sub messages → validated rows → batched warehouse writes.

`Ingestor.receive` is the streaming-pull callback: it parses each message, dead-letters
what is invalid and buffers the rest. Writer threads (`Ingestor.run`, one per stream)
take the buffer in batches, by count, bytes or age, and settle each message only after
its fate is durable: acked once its row is written or its dead letter published. A
process may pull on several streams of one subscription (INGEST_STREAMS): they share the
buffer, and the process's flow control is split between them.

A warehouse that cannot take writes, for a minute or for a week, costs no delivery
attempt: the writer keeps its batch and retries it with capped backoff, messages stay
leased, and flow control stops the stream once the subscriber holds its maximum. Nothing
valid is ever nacked or dead-lettered for it. A request refused as a whole is split until
the rows at fault are alone, and only those are dead-lettered.
"""

import concurrent.futures
import logging
import random
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from google.api_core import exceptions as google_exceptions
from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.subscriber.futures import StreamingPullFuture
from google.cloud.pubsub_v1.subscriber.message import Message
from google.cloud.pubsub_v1.subscriber.scheduler import ThreadScheduler

from ingestion.deadletters import DeadLetters
from ingestion.messages import stored_record_from_message
from ingestion.metrics import (
    BATCH_SIZE,
    BATCH_SPLITS,
    OLDEST_UNACKED,
    OUTSTANDING,
    PUBLISH_TO_STORED,
    RECEIVED,
    RETRIED,
    STORED,
    STREAMS_OPEN,
    WAREHOUSE_UP,
    WRITE_FAILURES,
)
from ingestion.publishing import MessagePublisher
from latam.clients import pubsub_publisher, pubsub_subscriber
from records import wiring
from records.entities import RecordInvalid, StoredRecord
from records.repository import RecordRepository, WarehouseRequestRefused, WarehouseUnavailable

logger = logging.getLogger(__name__)

# The first retry of a write that failed comes after at most this (then doubling).
RETRY_FIRST_SECONDS = 0.5
# A row's size in a write request, beyond its four texts: lineage and JSON framing.
ROW_OVERHEAD_BYTES = 256
# A stream that ends with these cannot pull again as it is (the subscription deleted,
# a permission removed): the process exits 1 and the platform restarts it. Any other end
# the client does not retry by itself (the emulator resets streams with CANCELLED, "Stream
# removed", at times) reopens that stream, up to STREAM_REOPENS_PER_MINUTE.
STREAM_FATAL = (
    google_exceptions.NotFound,
    google_exceptions.PermissionDenied,
    google_exceptions.Unauthenticated,
    google_exceptions.InvalidArgument,
)
STREAM_REOPENS_PER_MINUTE = 5
# Streams one process may open: each costs a writer and the client's own threads (~15),
# and on two vCPUs four already use them; more throughput then comes from more processes.
MAX_STREAMS = 16
# Messages are held (leased) while the warehouse is down for as long as Pub/Sub keeps
# them (7 days by default): an outage of any length spends no delivery attempt.
LEASE_MAX_SECONDS = 7 * 24 * 3600

Pending = tuple[StoredRecord, Message, int]  # a row, its message, its size in bytes


@dataclass(frozen=True)
class Batching:
    size: int
    max_seconds: float
    retry_max_seconds: float
    # Below the warehouse's request limit (10 MB for BigQuery), framing included.
    max_bytes: int = 5 * 1024 * 1024


class Ingestor:
    def __init__(
        self,
        *,
        repository: RecordRepository,
        dead_letters: DeadLetters,
        batching: Batching,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        self._repository = repository
        self._dead_letters = dead_letters
        self._batching = batching
        self._clock = clock
        self._wall_clock = wall_clock  # compared with publish_time, Pub/Sub's wall clock
        self._changed = threading.Condition()
        self._pending: list[Pending] = []
        self._pending_bytes = 0
        self._oldest = 0.0  # clock() when the oldest pending message arrived
        self._stopped = threading.Event()
        self._warehouse_up = True
        self._writing: dict[int, list[Pending]] = {}  # batches taken by writers, unsettled
        WAREHOUSE_UP.set(1)
        # Read at scrape time only: nothing per message (one Ingestor per process).
        OLDEST_UNACKED.set_function(self.oldest_unacked_seconds)

    # --- the streaming-pull callback (the client's threads) ----------------------------
    def receive(self, message: Message) -> None:
        """Never raises: whatever a producer sends ends buffered or dead-lettered (an
        exception here would fail the stream, and redelivery would crash the next one)."""
        RECEIVED.inc()
        OUTSTANDING.inc()
        if self._stopped.is_set():
            _release([message])
            return
        try:
            row = stored_record_from_message(message)
        except RecordInvalid as error:
            self._dead_letters.send(message, code=error.code, error=str(error))
            return
        except Exception as error:  # a bug of ours, not the producer's: still a dead letter
            _log_bug("message could not be read; dead-lettered", error, message.message_id)
            self._dead_letters.send(
                message,
                code="unexpected_error",
                error=f"unexpected {type(error).__name__} while reading the message",
            )
            return
        size = _row_bytes(row)
        with self._changed:
            if self._stopped.is_set():
                _release([message])
                return
            if not self._pending:
                self._oldest = self._clock()
            self._pending.append((row, message, size))
            self._pending_bytes += size
            # The first row starts the writer's age clock; a full batch ends its wait.
            if len(self._pending) in (1, self._batching.size) or (
                self._pending_bytes >= self._batching.max_bytes
            ):
                self._changed.notify()

    # --- the writer thread --------------------------------------------------------------
    def run(self) -> None:
        """Write batches until `stop()`, then flush what is left and return. Returns
        early only on a bug (logged without its text, which may quote data). Several
        threads may run it at once: each takes batches of its own from the one buffer."""
        try:
            while (batch := self._next_batch()) is not None:
                try:
                    self._write(batch)
                finally:
                    with self._changed:
                        del self._writing[id(batch)]
        except Exception as error:
            _log_bug("the writer failed; the subscriber stops", error)

    def stop(self) -> None:
        """Stop taking messages (new ones are released); `run` flushes and returns."""
        with self._changed:
            self._stopped.set()
            self._changed.notify_all()

    def _next_batch(self) -> list[Pending] | None:
        size, max_bytes, max_seconds = (
            self._batching.size,
            self._batching.max_bytes,
            self._batching.max_seconds,
        )
        with self._changed:
            while True:
                age = self._clock() - self._oldest
                if self._pending and (
                    len(self._pending) >= size
                    or self._pending_bytes >= max_bytes
                    or age >= max_seconds
                    or self._stopped.is_set()
                ):
                    count, taken = 0, 0
                    for _, _, row_bytes in self._pending[:size]:
                        if count and taken + row_bytes > max_bytes:
                            break
                        count, taken = count + 1, taken + row_bytes
                    batch, self._pending = self._pending[:count], self._pending[count:]
                    self._pending_bytes -= taken
                    self._writing[id(batch)] = batch
                    self._oldest = self._clock()  # what is left arrived after the batch
                    if self._pending:  # another writer's to take (or to time), if one waits
                        self._changed.notify()
                    return batch
                if self._stopped.is_set():
                    return None
                self._changed.wait(max_seconds - age if self._pending else None)

    def _write(self, batch: list[Pending]) -> None:
        """Write `batch` and settle each message. A request refused as a whole is split
        in halves down to single rows; a failed warehouse is retried, never nacked."""
        if not self._warehouse_up and self._stopped.is_set():
            _release([message for _, message, _ in batch])
            return
        chunks, delay = [batch], RETRY_FIRST_SECONDS
        while chunks:
            chunk = chunks.pop()
            try:
                refused = self._repository.records_insert(rows=[row for row, _, _ in chunk])
            except WarehouseRequestRefused:
                if len(chunk) == 1:
                    refused = {0: "the warehouse refused the row"}
                else:
                    BATCH_SPLITS.inc()
                    half = len(chunk) // 2
                    chunks += [chunk[half:], chunk[:half]]  # the first half is next
                    continue
            except WarehouseUnavailable as error:
                chunks.append(chunk)
                if not self._warehouse_wait(error, delay=delay):
                    _release([message for chunk in chunks for _, message, _ in chunk])
                    return
                delay = min(delay * 2, self._batching.retry_max_seconds)
                continue
            BATCH_SIZE.observe(len(chunk))
            if not self._warehouse_up:
                logger.info("warehouse takes writes again")
                self._warehouse_up = True
                WAREHOUSE_UP.set(1)
            self._settle(chunk, refused)

    def _settle(self, chunk: list[Pending], refused: dict[int, str]) -> None:
        written_at = self._wall_clock()  # the append is confirmed: the rows are queryable
        for index, (_, message, _) in enumerate(chunk):
            if index in refused:
                self._dead_letters.send(
                    message, code="warehouse_rejected", error=f"warehouse: {refused[index]}"
                )
            else:
                PUBLISH_TO_STORED.observe(max(written_at - message.publish_time.timestamp(), 0))
                message.ack()
        stored = len(chunk) - len(refused)
        STORED.inc(stored)
        OUTSTANDING.dec(stored)

    def oldest_unacked_seconds(self) -> float:
        """Age since publish_time of the oldest message held for writing (buffered or in
        a write under way), 0 when none: what this process adds to the subscription's
        oldest unacked age. O(messages held), bounded by flow control."""
        with self._changed:
            held = [self._pending, *self._writing.values()]
            oldest = min(
                (message.publish_time.timestamp() for rows in held for _, message, _ in rows),
                default=None,
            )
        return 0.0 if oldest is None else max(self._wall_clock() - oldest, 0.0)

    def _warehouse_wait(self, error: WarehouseUnavailable, *, delay: float) -> bool:
        """Note the failure, then wait (jittered, so that subscribers that lost the
        warehouse together do not retry together); False once stopped."""
        self._warehouse_up = False
        WAREHOUSE_UP.set(0)
        WRITE_FAILURES.labels(error.reason).inc()
        # A permanent refusal needs an operator: ERROR lines feed the alert (Terraform).
        log = logger.error if error.permanent else logger.warning
        log(
            "warehouse refuses writes; holding messages"
            if error.permanent
            else "warehouse write failed; holding messages",
            extra={"reason": error.reason, "retry_in_s": round(delay, 2)},
        )
        return not self._stopped.wait(random.uniform(delay / 2, delay))  # noqa: S311


def _row_bytes(row: StoredRecord) -> int:
    """A row's share of a write request, to keep requests under the warehouse's limit."""
    return ROW_OVERHEAD_BYTES + sum(len(text.encode()) for text in row.record.as_dict().values())


def _log_bug(what: str, error: Exception, message_id: str = "") -> None:
    """Log an unexpected error with its stack but not its text, which may quote data."""
    logger.error(
        what,
        extra={
            "message_id": message_id,
            "error_type": type(error).__name__,
            "where": "".join(traceback.format_tb(error.__traceback__)),
        },
    )


def _release(messages: list[Message]) -> None:
    """Give up messages at shutdown without a nack: a nack sent while the stream is still
    open gets them redelivered to this very stream, round after round, each spending a
    delivery attempt. Their lease lapses instead (INGEST_LEASE_SECONDS) once the stream
    is closed, and Pub/Sub delivers them to another subscriber."""
    RETRIED.labels("shutdown").inc(len(messages))
    OUTSTANDING.dec(len(messages))


def flow_control_split(
    flow_control: pubsub_v1.types.FlowControl, streams: int
) -> list[pubsub_v1.types.FlowControl]:
    """The process's flow control shared between `streams` streams: their shares add up to
    it (the first streams take the remainder), so the process holds no more than with one.
    Leases are per message and stay as they are."""
    if not 1 <= streams <= min(flow_control.max_messages, flow_control.max_bytes):
        raise ValueError(
            f"{streams} streams cannot each hold a share of "
            f"{flow_control.max_messages} messages and {flow_control.max_bytes} bytes"
        )

    def share(total: int, index: int) -> int:
        return total // streams + (index < total % streams)

    return [
        flow_control._replace(
            max_messages=share(flow_control.max_messages, index),
            max_bytes=share(flow_control.max_bytes, index),
        )
        for index in range(streams)
    ]


def callback_scheduler() -> ThreadScheduler:
    """The client's scheduler with one callback thread per stream instead of ten.
    `Ingestor.receive` takes microseconds and never waits on the warehouse: ten threads
    only add wake-ups and contention, and the hand-off was the client's largest CPU cost
    (profiled). Callbacks still run off the stream's own thread: run inline there, a
    killed subscriber's messages were seen dead-lettered on the emulator with four
    streams (a batch of 100 that never reached the callback)."""
    return ThreadScheduler(
        executor=concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ingest-callback"
        )
    )


def subscriber_run(
    *,
    client: pubsub_v1.SubscriberClient,
    subscription: str,
    ingestor: Ingestor,
    dead_letters: DeadLetters,
    flow_control: pubsub_v1.types.FlowControl,
    stop: threading.Event,
    shutdown_seconds: float,
    streams: int = 1,
) -> None:
    """Pull on `streams` streaming pulls until `stop` is set (or a stream fails for good,
    or a writer dies), then drain within `shutdown_seconds`: flush and ack what is written,
    release the rest, close every stream (the client then nacks what it held back, and no
    more comes to this process).

    The streams share `client`, the Ingestor (one buffer, so batches are as full as with
    one stream) and `flow_control`, split between them; each adds a writer thread, since
    one writer waiting on the warehouse would cap what several streams bring."""
    shares = flow_control_split(flow_control, streams)
    writers = [
        threading.Thread(target=ingestor.run, name=f"ingest-writer-{n}", daemon=True)
        for n in range(streams)
    ]
    for writer in writers:
        writer.start()

    def stream_open(index: int) -> StreamingPullFuture:
        return client.subscribe(
            subscription,
            ingestor.receive,
            flow_control=shares[index],
            scheduler=callback_scheduler(),
            await_callbacks_on_shutdown=True,
        )

    futures: list[StreamingPullFuture] = []
    try:
        for index in range(streams):
            futures.append(stream_open(index))
    except BaseException:
        ingestor.stop()
        for future in futures:
            future.cancel()
        raise
    STREAMS_OPEN.inc(streams)
    logger.info(
        "subscriber started",
        extra={
            "subscription": subscription,
            "streams": streams,
            "max_messages": flow_control.max_messages,
        },
    )
    try:
        _pull_until_stopped(
            futures=futures,
            stream_open=stream_open,
            writers=writers,
            ingestor=ingestor,
            dead_letters=dead_letters,
            stop=stop,
            shutdown_seconds=shutdown_seconds,
            subscription=subscription,
        )
    finally:
        STREAMS_OPEN.dec(streams)


def _stream_ended(future: StreamingPullFuture) -> BaseException | None:
    """Why a stream the client closed by itself ended (None: without an error)."""
    try:
        future.result(timeout=0)
    except Exception as error:
        return error
    return None


def _pull_until_stopped(
    *,
    futures: list[StreamingPullFuture],
    stream_open: Callable[[int], StreamingPullFuture],
    writers: list[threading.Thread],
    ingestor: Ingestor,
    dead_letters: DeadLetters,
    stop: threading.Event,
    shutdown_seconds: float,
    subscription: str,
) -> None:
    reopened: list[float] = []  # when streams were reopened, within the last minute
    streams_failed = False
    # A dead writer would leave its batch leased for days: stop, and let it come back.
    while not stop.wait(0.5) and all(writer.is_alive() for writer in writers):
        ended = [index for index, future in enumerate(futures) if future.done()]
        if not ended:
            continue
        now = time.monotonic()
        reopened = [moment for moment in reopened if now - moment < 60]
        errors = [_stream_ended(futures[index]) for index in ended]
        if any(isinstance(error, STREAM_FATAL) for error in errors) or (
            len(reopened) + len(ended) > STREAM_REOPENS_PER_MINUTE
        ):
            streams_failed = True  # exits 1 (below): the platform restarts the process
            break
        for index, error in zip(ended, errors, strict=True):
            # What the ended stream held comes back after its lease: a redelivery.
            logger.warning(
                "streaming pull ended; reopened",
                extra={"subscription": subscription, "error_type": type(error).__name__},
            )
            futures[index] = stream_open(index)
            reopened.append(now)
    writer_failed = not all(writer.is_alive() for writer in writers) and not stop.is_set()
    deadline = time.monotonic() + shutdown_seconds
    ingestor.stop()
    for writer in writers:
        writer.join(max(deadline - time.monotonic() - 1, 0))
    dead_letters.wait(max(deadline - time.monotonic() - 1, 0))
    # Acks and nacks queued so far are sent before each stream's dispatcher stops; each
    # stream closes in a thread of its own, so they close together.
    for future in futures:
        future.cancel()
    closed, failure = 0, None
    for future in futures:
        try:
            future.result(timeout=max(deadline - time.monotonic(), 0.1))
        except TimeoutError:
            logger.warning("stream did not close in time")
            continue
        except Exception as error:  # a stream that failed for good: raised once all closed
            failure = failure or error
        closed += 1
    logger.info(
        "subscriber stopped",
        extra={"subscription": subscription, "streams": len(futures), "streams_closed": closed},
    )
    if failure is not None:
        raise failure
    if streams_failed:
        raise RuntimeError("the subscriber's streaming pulls kept ending (see the log)")
    if writer_failed:
        raise RuntimeError("the subscriber's writer thread failed (see the log)")


def subscriber_run_from_settings(
    *,
    stop: threading.Event,
    batch_size: int,
    batch_max_seconds: float,
    streams: int | None = None,
) -> None:
    """`subscriber_run` on PUBSUB_SUBSCRIPTION with the INGEST_* settings; `streams`
    streaming pulls (INGEST_STREAMS when None) on one client."""
    client, publisher = pubsub_subscriber(), pubsub_publisher()
    dead_letters = DeadLetters(
        publisher=MessagePublisher(publisher),
        topic=publisher.topic_path(settings.GCP_PROJECT, settings.PUBSUB_DEAD_LETTER_TOPIC),
    )
    ingestor = Ingestor(
        repository=wiring.record_repository(),
        dead_letters=dead_letters,
        batching=Batching(
            size=batch_size,
            max_seconds=batch_max_seconds,
            retry_max_seconds=settings.INGEST_RETRY_MAX_SECONDS,
            max_bytes=settings.INGEST_BATCH_MAX_BYTES,
        ),
    )
    subscriber_run(
        client=client,
        subscription=client.subscription_path(settings.GCP_PROJECT, settings.PUBSUB_SUBSCRIPTION),
        ingestor=ingestor,
        dead_letters=dead_letters,
        flow_control=pubsub_v1.types.FlowControl(
            max_messages=settings.INGEST_MAX_OUTSTANDING_MESSAGES,
            max_bytes=settings.INGEST_MAX_OUTSTANDING_BYTES,
            max_lease_duration=LEASE_MAX_SECONDS,
            max_duration_per_lease_extension=settings.INGEST_LEASE_SECONDS,
        ),
        stop=stop,
        shutdown_seconds=settings.INGEST_SHUTDOWN_SECONDS,
        streams=settings.INGEST_STREAMS if streams is None else streams,
    )
