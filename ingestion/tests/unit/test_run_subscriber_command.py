"""`manage.py run_subscriber --streams`, and what `subscriber_run_from_settings` opens, on
fakes (the command's other options are tested against the emulators)."""

import signal
import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from google.cloud.pubsub_v1.subscriber.scheduler import ThreadScheduler

from ingestion import subscriber
from ingestion.management.commands import run_subscriber
from ingestion.tests.support import FakePublisher, FakeSubscriberClient


@pytest.fixture
def runs(monkeypatch) -> list[dict]:
    """What the command passed to `subscriber_run_from_settings` (which returns at once)."""
    calls: list[dict] = []
    monkeypatch.setattr(
        run_subscriber, "subscriber_run_from_settings", lambda **kwargs: calls.append(kwargs)
    )
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # pytest keeps its handlers
    return calls


def run(*args: str) -> None:
    call_command("run_subscriber", "--metrics-port", "0", *args, stdout=StringIO())


def test_streams_default_to_INGEST_STREAMS_and_the_option_overrides_it(settings, runs):
    settings.INGEST_STREAMS = 3

    run()
    run("--streams", "2")

    assert [call["streams"] for call in runs] == [3, 2]


@pytest.mark.parametrize("streams", ["0", "17", "-1"])
def test_streams_out_of_range_are_refused(runs, streams):
    with pytest.raises(CommandError, match="--streams must be"):
        run("--streams", streams)

    assert runs == []


def test_more_streams_than_outstanding_messages_are_refused(settings, runs):
    settings.INGEST_MAX_OUTSTANDING_MESSAGES = 2

    with pytest.raises(CommandError, match="INGEST_MAX_OUTSTANDING_MESSAGES"):
        run("--streams", "3")

    assert runs == []


def test_from_settings_opens_the_streams_asked_for_on_one_client_and_the_total_flow_control(
    settings, monkeypatch, fake_repository
):
    settings.INGEST_MAX_OUTSTANDING_MESSAGES = 1000
    settings.INGEST_MAX_OUTSTANDING_BYTES = 4096
    client = FakeSubscriberClient()
    publisher = FakePublisher()
    publisher.topic_path = lambda project, topic: f"projects/{project}/topics/{topic}"
    monkeypatch.setattr(subscriber, "pubsub_subscriber", lambda: client)
    monkeypatch.setattr(subscriber, "pubsub_publisher", lambda: publisher)
    stop = threading.Event()
    stop.set()  # opens the streams, then stops at once

    subscriber.subscriber_run_from_settings(
        stop=stop, batch_size=10, batch_max_seconds=1, streams=4
    )

    assert len(client.streams) == 4
    assert {stream.subscription for stream in client.streams} == {
        f"projects/{settings.GCP_PROJECT}/subscriptions/{settings.PUBSUB_SUBSCRIPTION}"
    }
    assert sum(stream.flow_control.max_messages for stream in client.streams) == 1000
    assert sum(stream.flow_control.max_bytes for stream in client.streams) == 4096
    assert all(stream.cancelled.is_set() for stream in client.streams)
    # Each stream has a callback scheduler of its own (a stream that closes shuts its
    # scheduler down), with one thread.
    schedulers = [stream.scheduler for stream in client.streams]
    assert all(isinstance(s, ThreadScheduler) for s in schedulers)
    assert all(s._executor._max_workers == 1 for s in schedulers)  # type: ignore[attr-defined]
    assert len({id(s) for s in schedulers}) == 4
