"""The producer's and the operator's tools: `publish` and `dead_letters`, on the emulator."""

import io
import json
import socket
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ingestion.publishing import MessagePublisher
from ingestion.tests.support import Topology, eventually, pull_all, stored_rows
from latam.clients import pubsub_publisher

RECORD = {"id": "7", "nombre": "Ana", "apellido": "Ruiz", "pais": "Chile"}


def run(*args, **options) -> str:
    output = StringIO()
    call_command(*args, stdout=output, **options)
    return output.getvalue()


# --- publish --------------------------------------------------------------------------
def test_publish_sends_each_line_as_is_skipping_blank_lines(topology: Topology, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"id": "1"}\r\n\n   \nnot json\n\xff\xfe\n')

    output = run("publish", str(source), "--attribute", "batch=b1", "--attribute", "k=v=w")

    assert "3 published, 0 failed" in output
    received = pull_all(topology.subscription, ack=True, expected=3)
    assert sorted(item.message.data for item in received) == sorted(
        [b'{"id": "1"}', b"not json", b"\xff\xfe"]
    )
    assert all(dict(item.message.attributes) == {"batch": "b1", "k": "v=w"} for item in received)


def test_publish_reads_stdin(topology: Topology, monkeypatch):
    lines = "\n".join(json.dumps({**RECORD, "id": str(n)}) for n in range(25)) + "\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(lines.encode())))

    output = run("publish")

    assert "25 published, 0 failed" in output
    received = pull_all(topology.subscription, ack=True, expected=25)
    assert sorted(int(json.loads(item.message.data)["id"]) for item in received) == list(range(25))


def test_publish_refuses_bad_arguments(topology: Topology, tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run("publish", str(tmp_path / "missing.jsonl"))
    with pytest.raises(CommandError, match="KEY=VALUE"):
        run("publish", "--data", "{}", "--attribute", "novalue")
    with pytest.raises(CommandError, match="one of FILE, --data or --fake"):
        run("publish", "x.jsonl", "--data", "{}")
    with pytest.raises(CommandError, match="one of FILE, --data or --fake"):
        run("publish", "--fake", "3", "--data", "{}")
    with pytest.raises(CommandError, match="--fake must be"):
        run("publish", "--fake", "0")


def test_publish_to_a_missing_topic_fails_clearly(topology: Topology):
    with pytest.raises(CommandError, match=r"0 published, 1 failed \(NotFound ×1\).*bootstrap"):
        run("publish", "--data", json.dumps(RECORD), "--topic", "no-such-topic")


def test_publish_fake_publishes_valid_deterministic_records(topology: Topology):
    output = run("publish", "--fake", "40", "--seed", "5")

    assert "40 published, 0 failed" in output
    received = pull_all(topology.subscription, ack=True, expected=40)
    records = [json.loads(item.message.data) for item in received]
    assert len({record["id"] for record in records}) == 40
    assert all(set(record) == {"id", "nombre", "apellido", "pais"} for record in records)
    run("publish", "--fake", "40", "--seed", "5")
    again = pull_all(topology.subscription, ack=True, expected=40)
    assert sorted(item.message.data for item in again) == sorted(
        item.message.data for item in received
    )


# --- dead_letters ---------------------------------------------------------------------
def dead_letter(topology: Topology, data: bytes, **attributes: str) -> None:
    pubsub_publisher().publish(topology.dead_letter_topic, data, **attributes).result(timeout=10)


def test_dead_letters_lists_without_consuming(topology: Topology):
    dead_letter(
        topology,
        b"{oops",
        error_code="invalid_json",
        error="data is not JSON",
        delivery_attempt="1",
        source_message_id="42",
    )
    dead_letter(topology, b"{}", CloudPubSubDeadLetterSourceDeliveryCount="5")

    first = run("dead_letters", "--wait", "1")
    second = run("dead_letters", "--wait", "1", "--show-data")

    assert "source=42  attempts=1  invalid_json: data is not JSON" in first
    assert "attempts=5  delivery_attempts_exhausted" in first
    assert "2 dead letters listed" in first
    assert "{oops" not in first  # data only on request: it may hold personal data
    assert "2 dead letters listed" in second and "data: {oops" in second


def test_dead_letters_replay_republishes_original_attributes_then_acks(topology: Topology):
    dead_letter(
        topology,
        json.dumps(RECORD).encode(),
        error_code="warehouse_rejected",
        error="warehouse: invalid",
        delivery_attempt="2",
        source_message_id="9",
        producer="crm",
    )

    output = run("dead_letters", "--replay", "--wait", "1")

    assert "replayed 1 dead letters" in output
    replayed = pull_all(topology.subscription, ack=True, expected=1)
    assert [json.loads(item.message.data) for item in replayed] == [RECORD]
    # The producer's attributes, and when the data was first published: its dead letter's
    # own publish time here, as for a letter that Pub/Sub's policy forwarded.
    attributes = dict(replayed[0].message.attributes)
    assert attributes.pop("source_publish_time") < replayed[0].message.publish_time.isoformat()
    assert attributes == {"producer": "crm"}
    assert "0 dead letters listed" in run("dead_letters", "--wait", "1")


PUBLISH_PARAMETER_NAMES = {
    "topic": "crm",
    "data": "d",
    "ordering_key": "k",
    "timeout": "1",
    "retry": "r",
    "error_code": "E-17",
}


def test_attributes_named_like_publish_parameters_survive_dead_lettering_and_replay(
    subscriber_running, topology: Topology, warehouse
):
    publisher = MessagePublisher(pubsub_publisher())
    publisher.publish(
        topic=topology.topic, data=b"{not json", attributes=PUBLISH_PARAMETER_NAMES
    ).result(timeout=10)
    with subscriber_running():
        [letter] = eventually(
            lambda: pull_all(topology.dead_letter_subscription, ack=False, expected=1),
            what="the dead letter",
        )
    attributes = dict(letter.message.attributes)
    assert attributes["error_code"] == "invalid_json"
    assert attributes["producer.error_code"] == "E-17"

    output = run("dead_letters", "--replay", "--wait", "1")

    assert "replayed 1 dead letters" in output
    [replayed] = pull_all(topology.subscription, ack=True, expected=1)
    attributes = dict(replayed.message.attributes)
    attributes.pop("source_publish_time")
    assert attributes == PUBLISH_PARAMETER_NAMES


def test_publish_sends_attributes_named_like_publish_parameters(topology: Topology):
    options = [f"{key}={value}" for key, value in PUBLISH_PARAMETER_NAMES.items()]

    run("publish", "--data", "{}", *[arg for o in options for arg in ("--attribute", o)])

    [received] = pull_all(topology.subscription, ack=True, expected=1)
    assert dict(received.message.attributes) == PUBLISH_PARAMETER_NAMES


def test_dead_letters_purge_is_bounded_by_max(topology: Topology):
    for n in range(5):
        dead_letter(topology, f"bad {n}".encode(), error_code="invalid_json", error="x")

    output = run("dead_letters", "--purge", "--max", "3", "--wait", "1")

    assert "purged 3 dead letters" in output
    assert "2 dead letters listed" in run("dead_letters", "--wait", "1")
    with pytest.raises(CommandError, match="--max"):
        run("dead_letters", "--max", "0")


def test_replaying_an_old_version_never_hides_a_newer_one(
    subscriber_running, topology: Topology, warehouse
):
    older = {**RECORD, "nombre": "Vieja"}
    with subscriber_running():
        # The older version was dead-lettered (say, refused) an hour ago...
        dead_letter(
            topology,
            json.dumps(older).encode(),
            error_code="warehouse_rejected",
            error="x",
            source_publish_time=(datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        )
        # ...and the producer has published a newer one since.
        run("publish", "--data", json.dumps({**RECORD, "nombre": "Nueva"}))
        eventually(lambda: warehouse.record_get(record_id="7"), what="the newer record")

        run("dead_letters", "--replay", "--wait", "1")
        eventually(
            lambda: len(stored_rows(warehouse, "7")) == 2, what="the replayed row stored too"
        )

    assert warehouse.record_get(record_id="7").nombre == "Nueva"


def test_replayed_dead_letter_is_stored_by_the_subscriber(
    subscriber_running, topology: Topology, warehouse
):
    dead_letter(topology, json.dumps(RECORD).encode(), error_code="warehouse_rejected", error="x")
    with subscriber_running():
        run("dead_letters", "--replay", "--wait", "1")
        eventually(lambda: warehouse.record_get(record_id="7"), what="the replayed record")


# --- run_subscriber -------------------------------------------------------------------
def test_run_subscriber_on_a_missing_subscription_fails_clearly(settings, topology, warehouse):
    settings.PUBSUB_SUBSCRIPTION = "no-such-subscription"

    with pytest.raises(CommandError, match=r"no-such-subscription not found.*bootstrap"):
        run("run_subscriber", "--metrics-port", "0")


def test_run_subscriber_refuses_bad_batching(topology):
    with pytest.raises(CommandError, match="--batch-size"):
        run("run_subscriber", "--batch-size", "0", "--metrics-port", "0")


def test_run_subscriber_names_a_metrics_port_already_taken(topology):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(CommandError, match=rf"127\.0\.0\.1:{port}.*METRICS_PORT"):
            run("run_subscriber", "--metrics-port", str(port))
