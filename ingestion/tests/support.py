"""Helpers of the ingestion tests (fixtures are in conftest.py)."""

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from google.api_core import exceptions as google_exceptions

from latam.clients import pubsub_subscriber


@dataclass(frozen=True)
class Topology:
    topic: str
    subscription: str
    dead_letter_topic: str
    dead_letter_subscription: str


def pull_all(subscription: str, *, ack: bool, expected: int | None = None) -> list:
    """Messages on a subscription (synchronous pull), acked or handed back."""
    subscriber = pubsub_subscriber()
    received: list = []
    for _ in range(20):
        try:
            response = subscriber.pull(
                subscription=subscription, max_messages=100, timeout=2, retry=None
            )
        except google_exceptions.DeadlineExceeded:
            break
        received.extend(response.received_messages)
        if not response.received_messages or (expected and len(received) >= expected):
            break
    if received:
        ack_ids = [item.ack_id for item in received]
        if ack:
            subscriber.acknowledge(subscription=subscription, ack_ids=ack_ids)
        else:
            subscriber.modify_ack_deadline(
                subscription=subscription, ack_ids=ack_ids, ack_deadline_seconds=0
            )
    return received


def eventually(
    condition: Callable[[], object],
    *,
    timeout: float = 30,
    what: str = "the condition",
    interval: float = 0.1,
) -> object:
    """Poll until `condition()` is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
