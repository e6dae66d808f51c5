"""A full run — producers, the subscriber process, gunicorn, consumers and attackers —
then every log line both processes wrote is scanned: no record value, no id, no path."""

import http.client
import json
import uuid

from ingestion.tests.support import eventually, pull_all
from latam.clients import pubsub_publisher


def request(url: str, method: str, target: str, headers: dict | None = None) -> int:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, target, headers=headers or {})
        return connection.getresponse().status
    finally:
        connection.close()


def test_no_log_line_of_a_full_run_holds_personal_data(
    subscribers, gunicorn_server, topology, warehouse, settings
):
    marker = uuid.uuid4().hex[:10]
    record_id, missing_id = f"dni-{marker}-1", f"dni-{marker}-2"
    nombre, apellido = f"Nombre{marker}", f"Apellido{marker}"
    secrets = [marker, marker.upper(), nombre, apellido, record_id, missing_id]
    subscriber = subscribers(LOG_LEVEL="DEBUG")
    server = gunicorn_server(BIGQUERY_TABLE=settings.BIGQUERY_TABLE, LOG_LEVEL="DEBUG")
    publisher = pubsub_publisher()
    valid = {"id": record_id, "nombre": nombre, "apellido": apellido, "pais": "Chile"}
    payloads = [
        json.dumps(valid),  # stored
        json.dumps({**valid, "apellido": f"{apellido}\u202e"}),  # invalid_field
        json.dumps({"id": missing_id, "nombre": nombre}),  # missing_field
        f'{{"nombre": "{nombre}", ',  # invalid_json
        f'{{"id": "{record_id}", "x": {"9" * 5000}}}',  # a huge number: missing fields
    ]
    for data in payloads:
        publisher.publish(topology.topic, data.encode(), origin=nombre).result(timeout=10)
    eventually(lambda: warehouse.record_get(record_id=record_id), what="the valid record")
    eventually(
        lambda: subscriber.metric("latam_ingest_messages_dead_lettered_total") == 4,
        what="the four dead letters",
    )
    assert len(pull_all(topology.dead_letter_subscription, ack=True, expected=4)) == 4

    statuses = [
        request(server.url, "GET", f"/records/{record_id}"),
        request(server.url, "GET", f"/records/{missing_id}"),
        request(server.url, "GET", f"/records/{record_id}/?limit={nombre}"),
        request(server.url, "GET", f"/records?limit={nombre}&offset={apellido}"),
        request(server.url, "GET", f"/records?{marker}=1&{'&'.join(['a=1'] * 1000)}"),
        request(server.url, "GET", f"/records/{record_id}?{'x' * 5000}"),  # gunicorn: 414
        request(server.url, "GET", f"/records/{record_id}", {"Host": f"{marker}.example"}),
        request(server.url, f"X{marker.upper()}", f"/records/{record_id}"),
        request(server.url, f"x{marker}", f"/records/{record_id}"),  # gunicorn: bad method
        request(server.url, "GET", f"/{marker}/{nombre}"),
        request(
            server.url,
            "GET",
            "/records",
            {"traceparent": f"00-{marker}-x", "X-Forwarded-For": marker, "User-Agent": nombre},
        ),
    ]
    assert statuses == [200, 404, 200, 400, 400, 414, 400, 405, 400, 404, 200]
    subscriber.process.terminate()
    subscriber.process.wait(15)

    logs = {"subscriber": subscriber.log.read_text(), "gunicorn": server.log.read_text()}
    for name, text in logs.items():
        lines = [line for line in text.splitlines() if line.strip()]
        assert len(lines) >= 5, f"{name} logged too little to prove anything"
        for line in lines:
            assert not any(secret in line for secret in secrets), f"{name}: {line}"
    assert "message dead-lettered" in logs["subscriber"]
    assert logs["gunicorn"].count('"route"') >= len(statuses) - 2  # all but gunicorn's own
