"""The write side: Pub/Sub messages → validated rows → batched warehouse writes.

`Ingestor.receive` is the streaming-pull callback: it parses each message, dead-letters
what is invalid and buffers the rest. One writer thread (`Ingestor.run`) writes the
buffer in batches, by size or by age, and settles each message only after its fate is
durable: acked once its row is written or its dead letter published, nacked otherwise.
"""

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.subscriber.message import Message

from ingestion.deadletters import DeadLetters
from ingestion.messages import record_from_data
from ingestion.metrics import BATCH_SIZE, OUTSTANDING, RECEIVED, RETRIED, STORED, WAREHOUSE_UP
from latam.clients import pubsub_publisher, pubsub_subscriber
from records import selectors
from records.entities import RecordInvalid, StoredRecord
from records.repository import RecordRepository, WarehouseUnavailable

logger = logging.getLogger(__name__)

# The first probe of a warehouse that failed comes after at most this (then doubling).
RETRY_FIRST_SECONDS = 0.5


@dataclass(frozen=True)
class Batching:
    size: int
    max_seconds: float
    retry_max_seconds: float
    # While the warehouse is down, buffered messages are released (nacked) after this, so
    # that a long outage does not hold them past the client's lease management.
    max_hold_seconds: float


class Ingestor:
    def __init__(
        self,
        *,
        repository: RecordRepository,
        dead_letters: DeadLetters,
        batching: Batching,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._repository = repository
        self._dead_letters = dead_letters
        self._batching = batching
        self._clock = clock
        self._changed = threading.Condition()
        self._pending: list[tuple[StoredRecord, Message]] = []
        self._oldest = 0.0  # clock() when the oldest pending message arrived
        self._stopped = threading.Event()
        self._warehouse_up = True
        WAREHOUSE_UP.set(1)

    # --- the streaming-pull callback (the client's threads) ----------------------------
    def receive(self, message: Message) -> None:
        RECEIVED.inc()
        OUTSTANDING.inc()
        if self._stopped.is_set():
            _release([message])
            return
        try:
            record = record_from_data(message.data)
        except RecordInvalid as error:
            self._dead_letters.send(message, code=error.code, error=str(error))
            return
        row = StoredRecord(
            record=record, published_at=message.publish_time, message_id=message.message_id
        )
        with self._changed:
            if self._stopped.is_set():
                _release([message])
                return
            if not self._pending:
                self._oldest = self._clock()
            self._pending.append((row, message))
            # The first row starts the writer's age clock; a full batch ends its wait.
            if len(self._pending) in (1, self._batching.size):
                self._changed.notify()

    # --- the writer thread --------------------------------------------------------------
    def run(self) -> None:
        """Write batches until `stop()`, then flush what is left and return."""
        while (batch := self._next_batch()) is not None:
            self._write(batch)

    def stop(self) -> None:
        """Stop taking messages (new ones are released); `run` flushes and returns."""
        with self._changed:
            self._stopped.set()
            self._changed.notify_all()

    def _next_batch(self) -> list[tuple[StoredRecord, Message]] | None:
        size, max_seconds = self._batching.size, self._batching.max_seconds
        with self._changed:
            while True:
                age = self._clock() - self._oldest
                if self._pending and (
                    len(self._pending) >= size or age >= max_seconds or self._stopped.is_set()
                ):
                    batch, self._pending = self._pending[:size], self._pending[size:]
                    self._oldest = self._clock()  # what is left arrived after the batch
                    return batch
                if self._stopped.is_set():
                    return None
                self._changed.wait(max_seconds - age if self._pending else None)

    def _write(self, batch: list[tuple[StoredRecord, Message]]) -> None:
        messages = [message for _, message in batch]
        if not self._warehouse_up and self._stopped.is_set():
            _release(messages)
            return
        BATCH_SIZE.observe(len(batch))
        try:
            refused = self._repository.records_insert(rows=[row for row, _ in batch])
        except WarehouseUnavailable:
            logger.warning("warehouse write failed; batch nacked", extra={"rows": len(batch)})
            _nack(messages, reason="warehouse_unavailable")
            self._warehouse_wait()
            return
        for index, message in enumerate(messages):
            if index in refused:
                self._dead_letters.send(
                    message, code="warehouse_rejected", error=f"warehouse: {refused[index]}"
                )
            else:
                message.ack()
        stored = len(messages) - len(refused)
        STORED.inc(stored)
        OUTSTANDING.dec(stored)

    def _warehouse_wait(self) -> None:
        """Back off until the warehouse answers again (or until stopped). Buffered messages
        wait meanwhile without spending delivery attempts, up to `max_hold_seconds`."""
        self._warehouse_up = False
        WAREHOUSE_UP.set(0)
        delay = RETRY_FIRST_SECONDS
        # Jitter: subscribers that lost the warehouse together do not probe it together.
        while not self._stopped.wait(random.uniform(delay / 2, delay)):  # noqa: S311
            try:
                self._repository.warehouse_ping()
            except WarehouseUnavailable:
                delay = min(delay * 2, self._batching.retry_max_seconds)
                self._release_stale()
                continue
            logger.info("warehouse is back; writing again")
            self._warehouse_up = True
            WAREHOUSE_UP.set(1)
            return

    def _release_stale(self) -> None:
        with self._changed:
            if self._pending and self._clock() - self._oldest >= self._batching.max_hold_seconds:
                stale, self._pending = self._pending, []
                _nack([message for _, message in stale], reason="warehouse_unavailable")


def _nack(messages: list[Message], *, reason: str) -> None:
    for message in messages:
        message.nack()
    RETRIED.labels(reason).inc(len(messages))
    OUTSTANDING.dec(len(messages))


def _release(messages: list[Message]) -> None:
    """Give up messages at shutdown without a nack: a nack sent while the stream is still
    open gets them redelivered to this very stream, round after round, each spending a
    delivery attempt. Their lease lapses instead (INGEST_LEASE_SECONDS) once the stream
    is closed, and Pub/Sub delivers them to another subscriber."""
    RETRIED.labels("shutdown").inc(len(messages))
    OUTSTANDING.dec(len(messages))


def subscriber_run(
    *,
    client: pubsub_v1.SubscriberClient,
    subscription: str,
    ingestor: Ingestor,
    dead_letters: DeadLetters,
    flow_control: pubsub_v1.types.FlowControl,
    stop: threading.Event,
    shutdown_seconds: float,
) -> None:
    """Pull until `stop` is set (or the stream fails for good), then drain within
    `shutdown_seconds`: flush and ack what is written, release the rest, close the stream
    (the client then nacks what it held back, and no more comes to this stream)."""
    writer = threading.Thread(target=ingestor.run, name="ingest-writer", daemon=True)
    writer.start()
    stream = client.subscribe(
        subscription, ingestor.receive, flow_control=flow_control, await_callbacks_on_shutdown=True
    )
    logger.info(
        "subscriber started",
        extra={"subscription": subscription, "max_messages": flow_control.max_messages},
    )
    while not stop.wait(0.5) and not stream.done():
        pass
    deadline = time.monotonic() + shutdown_seconds
    ingestor.stop()
    writer.join(max(deadline - time.monotonic() - 1, 0))
    dead_letters.wait(max(deadline - time.monotonic() - 1, 0))
    # Acks and nacks queued so far are sent before the stream's dispatcher stops.
    stream.cancel()
    try:
        stream.result(timeout=max(deadline - time.monotonic(), 0.1))
    except TimeoutError:
        logger.warning("stream did not close in time")
    logger.info("subscriber stopped", extra={"subscription": subscription})


def subscriber_run_from_settings(
    *, stop: threading.Event, batch_size: int, batch_max_seconds: float
) -> None:
    """`subscriber_run` on PUBSUB_SUBSCRIPTION with the INGEST_* settings."""
    client, publisher = pubsub_subscriber(), pubsub_publisher()
    dead_letters = DeadLetters(
        publisher=publisher,
        topic=publisher.topic_path(settings.GCP_PROJECT, settings.PUBSUB_DEAD_LETTER_TOPIC),
    )
    ingestor = Ingestor(
        repository=selectors.record_repository(),
        dead_letters=dead_letters,
        batching=Batching(
            size=batch_size,
            max_seconds=batch_max_seconds,
            retry_max_seconds=settings.INGEST_RETRY_MAX_SECONDS,
            max_hold_seconds=settings.INGEST_MAX_HOLD_SECONDS,
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
            # The client stops extending a lease after this; we release earlier.
            max_lease_duration=settings.INGEST_MAX_HOLD_SECONDS + 60,
            max_duration_per_lease_extension=settings.INGEST_LEASE_SECONDS,
        ),
        stop=stop,
        shutdown_seconds=settings.INGEST_SHUTDOWN_SECONDS,
    )
