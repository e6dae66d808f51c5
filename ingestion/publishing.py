"""Publishing many messages at once: batched by the client, counted as they settle."""

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from google.cloud import pubsub_v1


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
    publisher: pubsub_v1.PublisherClient,
    topic: str,
    attributes: Mapping[str, str] | None = None,
) -> PublishTally:
    """Publish each payload as one message; return once every one has settled. Memory
    stays flat: the publisher's flow control blocks while too much is in flight."""
    tally = PublishTally()
    settled = threading.Condition()
    sent = 0

    def settle(future) -> None:
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
            future = publisher.publish(topic, payload, **(attributes or {}))
        except Exception as error:  # refused before sending, e.g. over the size limit
            with settled:
                tally.failed += 1
                tally.errors[type(error).__name__] += 1
            continue
        future.add_done_callback(settle)
    with settled:
        settled.wait_for(lambda: tally.published + tally.failed == sent)
    return tally
