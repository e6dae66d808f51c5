"""The write side end to end: the real clients, the Pub/Sub emulator and bqemulator.

Producers publish with `manage.py publish`; the subscriber (the code of
`run_subscriber`) runs in a thread; the API reads what it stored.
"""

import json
from io import StringIO

from django.core.cache import cache
from django.core.management import call_command
from rest_framework.test import APIClient

from ingestion.subscriber import Ingestor
from ingestion.tests.support import eventually, pull_all, stored_rows
from latam.clients import pubsub_publisher

JUAN = {"id": "12345", "nombre": "Juan", "apellido": "Perez", "pais": "Argentina"}


def publish(data: str) -> str:
    output = StringIO()
    call_command("publish", data=data, stdout=output)
    return output.getvalue()


def api_get(record_id: str):
    cache.clear()  # the API's documented staleness is tested on the read side
    return APIClient().get(f"/records/{record_id}")


def api_list() -> list:
    cache.clear()
    return APIClient().get("/records").json()


def test_published_record_is_served_by_the_api(subscriber_running, warehouse):
    with subscriber_running():
        output = publish(json.dumps(JUAN))
        response = eventually(
            lambda: (r := api_get("12345")).status_code == 200 and r, what="record 12345"
        )

    assert "1 published, 0 failed" in output
    assert response.json() == JUAN


def test_invalid_message_is_dead_lettered_with_its_reason_and_the_rest_is_stored(
    subscriber_running, topology, warehouse, tmp_path
):
    lines = [
        json.dumps({"id": "ok-1", "nombre": "Ana", "apellido": "Ruiz", "pais": "Chile"}),
        json.dumps({"id": "bad-1", "nombre": "Ana", "pais": "Chile"}),
        json.dumps({"id": "ok-2", "nombre": "Luis", "apellido": "Díaz", "pais": "México"}),
    ]
    source = tmp_path / "records.jsonl"
    source.write_text("\n".join(lines) + "\n")

    with subscriber_running(batch_size=10, batch_max_seconds=0.5):
        call_command("publish", str(source), "--attribute", "source=test", stdout=StringIO())
        eventually(lambda: warehouse.records_count() == 2, what="the two valid records")
        dead = eventually(
            lambda: pull_all(topology.dead_letter_subscription, ack=True, expected=1),
            what="the dead letter",
        )

    assert len(dead) == 1
    attributes = dict(dead[0].message.attributes)
    assert json.loads(dead[0].message.data) == json.loads(lines[1])
    assert attributes["error_code"] == "missing_field"
    assert attributes["error"] == "field 'apellido' is required"
    assert attributes["source"] == "test"
    assert warehouse.record_get(record_id="bad-1") is None
    assert {r.id for r in warehouse.records_list(limit=10, offset=0)} == {"ok-1", "ok-2"}
    assert pull_all(topology.subscription, ack=False) == []  # everything settled


def test_not_json_and_not_utf8_are_dead_lettered(subscriber_running, topology, warehouse):
    publisher = pubsub_publisher()
    with subscriber_running():
        for data in (b"not json", b"\xff\xfe{}", b"[1, 2]"):
            publisher.publish(topology.topic, data).result(timeout=10)
        dead = eventually(
            lambda: pull_all(topology.dead_letter_subscription, ack=True, expected=3),
            what="three dead letters",
        )

    codes = {item.message.data: item.message.attributes["error_code"] for item in dead}
    assert codes == {
        b"not json": "invalid_json",
        b"\xff\xfe{}": "not_utf8",
        b"[1, 2]": "not_object",
    }
    assert warehouse.records_count() == 0


def test_same_id_published_again_is_updated(subscriber_running, warehouse, settings):
    with subscriber_running(batch_max_seconds=0.1):
        publish(json.dumps(JUAN))
        eventually(lambda: warehouse.record_get(record_id="12345"), what="first version")
        publish(json.dumps({**JUAN, "nombre": "Juan Carlos", "pais": "Uruguay"}))
        eventually(lambda: len(stored_rows(warehouse, "12345")) == 2, what="the second version")

    assert api_get("12345").json() == {**JUAN, "nombre": "Juan Carlos", "pais": "Uruguay"}
    assert warehouse.records_count() == 1
    assert api_list() == [{**JUAN, "nombre": "Juan Carlos", "pais": "Uruguay"}]


def test_a_redelivered_message_is_one_record(subscriber_running, warehouse, settings, monkeypatch):
    """The row is written but the ack is lost (as in a crash right after the write):
    Pub/Sub delivers the same message again, and the API still shows one record."""
    deliveries: list[str] = []
    receive = Ingestor.receive

    def ack_lost_once(self, message):
        deliveries.append(message.message_id)
        if len(deliveries) == 1:
            message.ack = message.nack  # the first ack never reaches Pub/Sub
        receive(self, message)

    monkeypatch.setattr(Ingestor, "receive", ack_lost_once)
    with subscriber_running(batch_max_seconds=0.1):
        publish(json.dumps(JUAN))
        eventually(lambda: len(stored_rows(warehouse, "12345")) == 2, what="the redelivered row")

    assert deliveries[0] == deliveries[1]  # the same message, twice
    assert {row["message_id"] for row in stored_rows(warehouse, "12345")} == {deliveries[0]}
    assert warehouse.records_count() == 1
    assert api_list() == [JUAN]


def test_fake_records_published_are_ingested(subscriber_running, warehouse):
    output = StringIO()
    with subscriber_running(batch_size=50):
        call_command("publish", "--fake", "120", "--seed", "3", stdout=output)
        eventually(lambda: warehouse.records_count() == 120, what="120 seeded records")

    assert "120 published, 0 failed" in output.getvalue()
