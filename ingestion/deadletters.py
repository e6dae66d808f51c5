"""Dead letters: refused messages kept on their own topic, with why, for operators.

A dead letter is the original data and attributes plus what dead-lettering adds:
`error_code`, `error`, `delivery_attempt`, `source_message_id` and `source_publish_time`.
A producer's own attribute with one of those names (or starting with the escape prefix,
or with Pub/Sub's `CloudPubSubDeadLetter`) travels under the escape prefix, so that ours
never overwrite theirs and a replay restores exactly what the producer sent.

The original message is acked only once its dead letter is published; if publishing
fails it is nacked, so nothing is lost either way.
"""

import logging
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import cast

from google.api_core import exceptions as google_exceptions
from google.cloud.pubsub_v1 import SubscriberClient
from google.cloud.pubsub_v1.subscriber.message import Message
from google.pubsub_v1 import PubsubMessage, ReceivedMessage

from ingestion.messages import SOURCE_PUBLISH_TIME, message_published_at
from ingestion.metrics import DEAD_LETTERED, OUTSTANDING, RETRIED
from ingestion.publishing import MessagePublisher
from records.entities import RecordInvalid

logger = logging.getLogger(__name__)

# What dead-lettering adds and a replay removes. SOURCE_PUBLISH_TIME is added too, but a
# replay keeps it: the ingest side reads it.
ADDED_ATTRIBUTES = frozenset({"error_code", "error", "delivery_attempt", "source_message_id"})
ESCAPE_PREFIX = "producer."
# Pub/Sub's attributes when its dead-letter policy (attempts exhausted) forwards a message.
POLICY_PREFIX = "CloudPubSubDeadLetter"
POLICY_DELIVERY_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"
ATTRIBUTE_VALUE_MAX_BYTES = 1024  # Pub/Sub's limit


def _escaped(key: str) -> str:
    if key in ADDED_ATTRIBUTES or key.startswith((ESCAPE_PREFIX, POLICY_PREFIX)):
        return ESCAPE_PREFIX + key
    return key


def dead_letter_attributes(message: Message, *, code: str, error: str) -> dict[str, str]:
    try:
        published_at = message_published_at(message)
    except RecordInvalid:  # its own source_publish_time is what is wrong
        published_at = message.publish_time
    error_bytes = error.encode()[:ATTRIBUTE_VALUE_MAX_BYTES]
    return {
        **{_escaped(key): value for key, value in message.attributes.items()},
        "error_code": code,
        "error": error_bytes.decode(errors="ignore"),
        "delivery_attempt": str(message.delivery_attempt or 1),
        "source_message_id": message.message_id,
        SOURCE_PUBLISH_TIME: published_at.isoformat(),
    }


def dead_letter_forwarded_by_policy(attributes: Mapping[str, str]) -> bool:
    """Whether Pub/Sub's dead-letter policy forwarded it (attributes as the producer sent
    them, plus Pub/Sub's own), rather than the subscriber (attributes escaped)."""
    return POLICY_DELIVERY_COUNT in attributes


def attributes_original(attributes: Mapping[str, str]) -> dict[str, str]:
    """A dead letter's attributes as the producer sent them (plus SOURCE_PUBLISH_TIME)."""
    if dead_letter_forwarded_by_policy(attributes):
        return {k: v for k, v in attributes.items() if not k.startswith(POLICY_PREFIX)}
    return {
        key.removeprefix(ESCAPE_PREFIX): value
        for key, value in attributes.items()
        if key not in ADDED_ATTRIBUTES
    }


class DeadLetters:
    def __init__(self, *, publisher: MessagePublisher, topic: str):
        self._publisher = publisher
        self._topic = topic
        self._in_flight = 0
        self._idle = threading.Condition()

    def send(self, message: Message, *, code: str, error: str) -> None:
        """Publish `message` as a dead letter; ack it once published, nack it if not."""
        with self._idle:
            self._in_flight += 1
        try:
            future = self._publisher.publish(
                topic=self._topic,
                data=message.data,
                attributes=dead_letter_attributes(message, code=code, error=error),
            )
        except Exception as refused:  # e.g. too many attributes: nacked, the policy decides
            logger.warning(
                "dead letter refused by the client",
                extra={"message_id": message.message_id, "error_type": type(refused).__name__},
            )
            self._settle(message, code, published=False)
            return
        future.add_done_callback(
            lambda done: self._settle(message, code, published=done.exception() is None)
        )

    def _settle(self, message: Message, code: str, *, published: bool) -> None:
        if published:
            message.ack()
            DEAD_LETTERED.labels(code).inc()
            logger.info(
                "message dead-lettered",
                extra={"message_id": message.message_id, "error_code": code},
            )
        else:
            message.nack()
            RETRIED.labels("dead_letter_unpublished").inc()
            logger.warning(
                "dead letter not published; message nacked",
                extra={"message_id": message.message_id, "error_code": code},
            )
        OUTSTANDING.dec()
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def wait(self, timeout: float) -> bool:
        """Wait until every dead letter sent so far is settled; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)


# --- the operator's side: inspect, replay or purge the dead-letter subscription ---------
PULL_CHUNK = 100
SETTLE_CHUNK = 1000  # ack ids per request, well under Pub/Sub's request size limit


def dead_letters_pull(
    *, subscriber: SubscriberClient, subscription: str, limit: int, wait: float
) -> list[ReceivedMessage]:
    """Pull up to `limit` messages, holding each until settled (so none comes twice).
    Raises google NotFound when the subscription does not exist."""
    received: list[ReceivedMessage] = []
    while len(received) < limit:
        try:
            response = subscriber.pull(
                subscription=subscription,
                max_messages=min(PULL_CHUNK, limit - len(received)),
                timeout=wait,
                retry=None,
            )
        except google_exceptions.DeadlineExceeded:
            break
        if not response.received_messages:
            break
        received.extend(response.received_messages)
    return received


def dead_letters_settle(
    *, subscriber: SubscriberClient, subscription: str, ack_ids: list[str], ack: bool
) -> None:
    """Ack, or hand back for redelivery (deadline 0), in requests of bounded size."""
    for start in range(0, len(ack_ids), SETTLE_CHUNK):
        chunk = ack_ids[start : start + SETTLE_CHUNK]
        if ack:
            subscriber.acknowledge(subscription=subscription, ack_ids=chunk)
        else:
            subscriber.modify_ack_deadline(
                subscription=subscription, ack_ids=chunk, ack_deadline_seconds=0
            )


def _publish_time(message: PubsubMessage) -> datetime:
    """proto-plus hands a Timestamp field over as a datetime (DatetimeWithNanoseconds);
    the generated annotation names the protobuf type."""
    return cast(datetime, message.publish_time)


def replay_attributes(message: PubsubMessage) -> dict[str, str]:
    """What a replay publishes: the producer's attributes and when the data was first
    published (a letter forwarded by Pub/Sub carries no such attribute: its own time)."""
    attributes = attributes_original(message.attributes)
    attributes.setdefault(SOURCE_PUBLISH_TIME, _publish_time(message).isoformat())
    return attributes


def dead_letters_replay(
    *,
    subscriber: SubscriberClient,
    subscription: str,
    received: list[ReceivedMessage],
    publisher: MessagePublisher,
    topic: str,
) -> tuple[int, int]:
    """Republish each to `topic`; ack those republished, hand back those that failed.
    Returns (replayed, failed)."""
    futures = [
        (
            item.ack_id,
            publisher.publish(
                topic=topic, data=item.message.data, attributes=replay_attributes(item.message)
            ),
        )
        for item in received
    ]
    replayed: list[str] = []
    failed: list[str] = []
    for ack_id, future in futures:
        (failed if future.exception() else replayed).append(ack_id)
    dead_letters_settle(
        subscriber=subscriber, subscription=subscription, ack_ids=replayed, ack=True
    )
    dead_letters_settle(subscriber=subscriber, subscription=subscription, ack_ids=failed, ack=False)
    return len(replayed), len(failed)


def dead_letter_describe(message: PubsubMessage, *, show_data: bool) -> str:
    """One line (two with the data) for a terminal: what a producer controls is escaped,
    so that no control sequence in it reaches the operator's terminal."""
    attributes = dict(message.attributes)
    if dead_letter_forwarded_by_policy(attributes):
        code, error = "delivery_attempts_exhausted", ""
        attempts = attributes[POLICY_DELIVERY_COUNT]
    else:
        code, error = attributes.get("error_code", "?"), attributes.get("error", "")
        attempts = attributes.get("delivery_attempt", "?")
    # The source message id is what the subscriber's logs name.
    source = attributes.get("source_message_id", "?")
    line = terminal_safe(
        f"{message.message_id}  {_publish_time(message).isoformat()}  source={source}  "
        f"attempts={attempts}  {code}: {error}"
    ).rstrip()
    if show_data:
        line += "\n    data: " + terminal_safe(message.data.decode(errors="replace"))
    return line


def terminal_safe(text: str) -> str:
    """`text` with every non-printable character (escapes, bidi overrides, newlines)
    written as its Python escape."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)
