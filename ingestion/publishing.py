"""Publishing messages: one at a time with any attributes, or many at once, batched by
the client and counted as they settle."""

import inspect
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field

from google.cloud import pubsub_v1
from google.pubsub_v1 import PublisherClient as GapicPublisherClient
from google.pubsub_v1 import PubsubMessage

# publish() takes attributes as keyword arguments, so an attribute named like one of its
# own parameters (`topic`, `data`, `ordering_key`, `retry`, `timeout`) cannot go that way.
_PUBLISH_PARAMETERS = frozenset(inspect.signature(pubsub_v1.PublisherClient.publish).parameters)
UNBATCHED_TIMEOUT_SECONDS = 30


class MessagePublisher:
    """The client's publisher with attributes as a mapping, whatever their names: batched
    by the client, or — for a name publish() would take as its own parameter — in a
    request of its own (the same RPC, unbatched)."""

    def __init__(self, client: pubsub_v1.PublisherClient):
        self.client = client

    def publish(self, *, topic: str, data: bytes, attributes: Mapping[str, str]) -> Future[str]:
        """A future of the message id."""
        if _PUBLISH_PARAMETERS.isdisjoint(attributes):
            # No attribute is named like one of publish()'s own parameters (checked just
            # above), so every one lands in its **attrs: mypy cannot know the keys.
            return self.client.publish(topic, data, **attributes)  # type: ignore[arg-type]
        future: Future[str] = Future()
        try:
            response = GapicPublisherClient.publish(
                self.client,
                topic=topic,
                messages=[PubsubMessage(data=data, attributes=dict(attributes))],
                timeout=UNBATCHED_TIMEOUT_SECONDS,
            )
            future.set_result(response.message_ids[0])
        except Exception as error:  # settled like the batched path: through the future
            future.set_exception(error)
        return future


@dataclass
class PublishTally:
    published: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        reasons = ", ".join(f"{name} ×{count}" for name, count in self.errors.most_common())
        return f"{self.published} published, {self.failed} failed" + (
            f" ({reasons})" if reasons else ""
        )


def messages_publish(
    payloads: Iterable[bytes],
    *,
    publisher: MessagePublisher,
    topic: str,
    attributes: Mapping[str, str] | None = None,
) -> PublishTally:
    """Publish each payload as one message; return once every one has settled. Memory
    stays flat: the publisher's flow control blocks while too much is in flight."""
    tally = PublishTally()
    settled = threading.Condition()
    sent = 0

    def settle(future: Future[str]) -> None:
        error = future.exception()
        with settled:
            if error is None:
                tally.published += 1
            else:
                tally.failed += 1
                tally.errors[type(error).__name__] += 1
            settled.notify_all()

    for payload in payloads:
        sent += 1
        try:
            future = publisher.publish(topic=topic, data=payload, attributes=attributes or {})
        except Exception as error:  # refused before sending, e.g. over the size limit
            with settled:
                tally.failed += 1
                tally.errors[type(error).__name__] += 1
            continue
        future.add_done_callback(settle)
    with settled:
        settled.wait_for(lambda: tally.published + tally.failed == sent)
    return tally
