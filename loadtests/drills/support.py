"""What the drills of this package share beyond the harness."""

import threading
from collections.abc import Callable

from loadtests.harness import Pipeline, StackError

# The local stack's own setting (.env.example): the emulator spends a delivery attempt on
# every message it pushes to a stream that is gone — a killed subscriber's, or one the
# emulator channel ended (latam/clients.py) — which Pub/Sub does not; with Terraform's 5,
# valid messages would be dead-lettered for the emulator's sake.
EMULATOR_ENV = {"PUBSUB_MAX_DELIVERY_ATTEMPTS": "100"}


class Publishing(threading.Thread):
    """`pipeline.publish(payloads)` in a daemon thread (one that hangs never keeps the
    drills' process alive); `then` gets the time.monotonic() at which all were accepted."""

    def __init__(
        self,
        pipeline: Pipeline,
        payloads: list[bytes],
        *,
        then: Callable[[float], object] = lambda _: None,
    ):
        super().__init__(name="publish", daemon=True)
        self._pipeline, self._payloads, self._then = pipeline, payloads, then
        self.accepted: float | None = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.accepted = self._pipeline.publish(self._payloads)
            self._then(self.accepted)
        except Exception as error:  # reported by finish()
            self.error = error

    def finish(self, timeout: float) -> float:
        """Wait for it; the time all were accepted, or StackError."""
        self.join(timeout)
        if self.error is not None:
            raise StackError(f"publishing failed: {self.error}")
        if self.accepted is None:
            raise StackError(
                f"publishing {len(self._payloads):,} messages took over {timeout:.0f} s"
            )
        return self.accepted


def publish_within(pipeline: Pipeline, payloads: list[bytes], *, timeout: float) -> float:
    """Publish, and raise StackError if it fails or takes over `timeout` seconds."""
    publishing = Publishing(pipeline, payloads)
    publishing.start()
    return publishing.finish(timeout)
