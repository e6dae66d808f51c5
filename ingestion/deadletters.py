"""Dead letters: refused messages kept on their own topic, with why, for operators.

A dead letter is the original data and attributes plus `error_code`, `error` and the
delivery attempt. The original message is acked only once its dead letter is published;
if publishing fails it is nacked, so nothing is lost either way.
"""

import logging
import threading
from collections.abc import Mapping

from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.subscriber.message import Message

from ingestion.metrics import DEAD_LETTERED, OUTSTANDING, RETRIED

logger = logging.getLogger(__name__)

# What dead-lettering adds, removed again when a dead letter is replayed.
ADDED_ATTRIBUTES = ("error_code", "error", "delivery_attempt", "source_message_id")
# Pub/Sub's attributes when its dead-letter policy (attempts exhausted) forwards a message.
POLICY_DELIVERY_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"
ATTRIBUTE_VALUE_MAX_BYTES = 1024  # Pub/Sub's limit


def dead_letter_attributes(message: Message, *, code: str, error: str) -> dict[str, str]:
    error_bytes = error.encode()[:ATTRIBUTE_VALUE_MAX_BYTES]
    return {
        **message.attributes,
        "error_code": code,
        "error": error_bytes.decode(errors="ignore"),
        "delivery_attempt": str(message.delivery_attempt or 1),
        "source_message_id": message.message_id,
    }


def attributes_original(attributes: Mapping[str, str]) -> dict[str, str]:
    """A dead letter's attributes as the producer sent them."""
    return {
        key: value
        for key, value in attributes.items()
        if key not in ADDED_ATTRIBUTES and not key.startswith("CloudPubSubDeadLetter")
    }


class DeadLetters:
    def __init__(self, *, publisher: pubsub_v1.PublisherClient, topic: str):
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
                self._topic, message.data, **dead_letter_attributes(message, code=code, error=error)
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
