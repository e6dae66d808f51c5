"""Hostile or malformed requests: 400 JSON (never a 500), logged at WARNING without the
path or the values they carried."""

import json
import logging

import pytest
from prometheus_client import REGISTRY, generate_latest

from latam.jsonlog import cloud_logging_formatter
from records.entities import Record

SECRET_ID = "dni-30111222"


@pytest.fixture
def json_logs(caplog):
    """The log lines as the JSON formatter writes them to stdout, parsed."""
    caplog.set_level(logging.INFO)
    caplog.handler.setFormatter(cloud_logging_formatter())

    def lines() -> list[dict]:
        return [json.loads(line) for line in caplog.text.splitlines() if line.startswith("{")]

    return lines


@pytest.fixture
def stored(fake_repository):
    fake_repository.add([Record(id=SECRET_ID, nombre="Marisol", apellido="Prada", pais="Chile")])
    return fake_repository


def test_too_many_query_parameters_is_a_400_json_warning(client, stored, json_logs):
    query = "&".join([f"{SECRET_ID}=Marisol"] * 1001)

    response = client.get(f"/records?{query}", HTTP_ACCEPT="application/json")

    assert response.status_code == 400
    assert response.json() == {"error": "Bad request"}
    lines = json_logs()
    assert {line["severity"] for line in lines} <= {"INFO", "WARNING"}
    assert any(
        line["severity"] == "WARNING" and line.get("error_type") == "TooManyFieldsSent"
        for line in lines
    )
    assert all(SECRET_ID not in json.dumps(line) for line in lines)
    assert all("Marisol" not in json.dumps(line) for line in lines)


def test_a_disallowed_host_is_a_warning_without_the_path_or_the_request(client, stored, json_logs):
    response = client.get(f"/records/{SECRET_ID}", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response.json() == {"error": "Bad request"}
    lines = json_logs()
    assert lines
    assert {line["severity"] for line in lines} <= {"INFO", "WARNING"}
    warning = next(line for line in lines if line["severity"] == "WARNING")
    assert warning["error_type"] == "DisallowedHost"
    assert "request" not in warning
    for line in lines:
        assert SECRET_ID not in json.dumps(line)
        assert "/records" not in json.dumps(line)
        assert "evil.example" not in json.dumps(line)


@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz/", "/static/rest_framework/css/bootstrap.min.css"]
)
@pytest.mark.parametrize("method", ["POST", "DELETE", "PUT", "BREW"])
def test_probes_and_static_files_refuse_other_methods_with_json(
    client, fake_repository, path, method
):
    response = client.generic(method, path)

    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert set(json.loads(b"".join(response)) if response.streaming else response.json()) == {
        "error"
    }
    assert "GET" in response["Allow"]


def test_arbitrary_methods_do_not_grow_the_request_metrics(client, fake_repository):
    client.generic("X-HOSTILE-METHOD-42", "/records")

    text = generate_latest(REGISTRY).decode()

    assert "X-HOSTILE-METHOD-42" not in text
    assert 'latam_http_requests_total{method="other",route="record-list",status="405"}' in text


@pytest.mark.parametrize(
    "extra",
    [
        {"CONTENT_LENGTH": "abc"},
        {"CONTENT_LENGTH": "-1"},
        {"CONTENT_LENGTH": "99999999999999999999"},
        {"CONTENT_TYPE": "application/json; charset=no-such-charset"},
        {"CONTENT_TYPE": "multipart/form-data; boundary="},
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_malformed_bodies_and_their_headers_are_json_4xx(client, stored, method, extra):
    response = client.generic(
        method, "/records", data=b'{"id": 1' * 10, content_type="application/json", **extra
    )

    assert response.status_code in {200, 400, 405, 413}
    assert response["Content-Type"] == "application/json"
    if response.status_code >= 400:
        assert set(response.json()) == {"error"}


@pytest.mark.parametrize(
    "host", ["", "a b", "[::1", "evil.example:99999", "ex ample.com", "x" * 300, "é.example"]
)
def test_malformed_host_headers_are_400_json(client, stored, host):
    response = client.get("/records", HTTP_HOST=host)

    assert response.status_code == 400
    assert response.json() == {"error": "Bad request"}


@pytest.mark.parametrize("method", ["OPTIONS", "POST", "DELETE"])
def test_the_docs_page_refuses_other_methods_with_json(client, method):
    response = client.generic(method, "/api/docs/")

    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"error"}
