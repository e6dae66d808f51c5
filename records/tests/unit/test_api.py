"""The HTTP contract (docs/contracts.md), against the in-memory repository."""

import re

import pytest
from prometheus_client import REGISTRY, generate_latest
from rest_framework.throttling import AnonRateThrottle

from records.entities import Record
from records.tests.unit.conftest import link_targets
from records.views import RecordViewSet


@pytest.mark.parametrize("path", ["/records", "/records/"])
def test_list_is_a_json_array_ordered_by_id_with_the_default_limit(client, stored, path):
    response = client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert isinstance(body, list)
    assert body == [record.as_dict() for record in stored[:100]]


def test_list_headers_carry_total_and_next_link_on_the_first_page(client, stored):
    response = client.get("/records?limit=10")

    assert response["X-Total-Count"] == "250"
    links = link_targets(response["Link"])
    assert set(links) == {"next"}
    assert links["next"].endswith("/records?limit=10&offset=10")


def test_middle_page_links_both_ways(client, stored):
    response = client.get("/records?limit=10&offset=30")

    assert [r["id"] for r in response.json()] == [f"id-{n:04d}" for n in range(30, 40)]
    links = link_targets(response["Link"])
    assert links["next"].endswith("limit=10&offset=40")
    assert links["prev"].endswith("limit=10&offset=20")


def test_last_page_has_only_prev(client, stored):
    response = client.get("/records?limit=100&offset=200")

    assert len(response.json()) == 50
    assert set(link_targets(response["Link"])) == {"prev"}


def test_offset_past_the_end_is_an_empty_array(client, stored):
    response = client.get("/records?offset=999")

    assert response.status_code == 200
    assert response.json() == []
    assert response["X-Total-Count"] == "250"


def test_limit_bounds_are_inclusive(client, stored):
    assert len(client.get("/records?limit=1").json()) == 1
    assert len(client.get("/records?limit=1000").json()) == 250


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=abc", "limit"),
        ("limit=", "limit"),
        ("limit=-1", "limit"),
        ("limit=1.5", "limit"),
        ("limit=%2B5", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("offset=9999999999999999999", "offset"),
    ],
)
def test_malformed_or_out_of_range_parameters_are_400_naming_the_parameter(
    client, stored, query, parameter
):
    response = client.get(f"/records?{query}")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert f"'{parameter}'" in response.json()["error"]
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize("path", ["/records/id-0007", "/records/id-0007/"])
def test_detail_returns_exactly_the_four_fields(client, stored, path):
    response = client.get(path)

    assert response.status_code == 200
    assert response.json() == {
        "id": "id-0007",
        "nombre": "Nombre7",
        "apellido": "Pérez",
        "pais": "Chile",
    }


def test_unknown_id_is_404_registro_no_encontrado(client, stored):
    response = client.get("/records/does-not-exist")

    assert response.status_code == 404
    assert response.json() == {"error": "Registro no encontrado"}


def test_an_id_that_cannot_exist_is_404_without_a_warehouse_query(client, fake_repository):
    response = client.get("/records/" + "x" * 129)

    assert response.status_code == 404
    assert response.json() == {"error": "Registro no encontrado"}
    assert fake_repository.calls["get"] == 0


def test_unicode_and_reserved_characters_in_ids_round_trip(client, fake_repository):
    fake_repository.add([Record(id="Pérez 1?&#", nombre="A", apellido="B", pais="C")])

    response = client.get("/records/P%C3%A9rez%201%3F%26%23")

    assert response.status_code == 200
    assert response.json()["id"] == "Pérez 1?&#"


@pytest.mark.parametrize("path", ["/records", "/records/some-id", "/readyz"])
def test_warehouse_unavailable_is_503_json_with_retry_after(client, fake_repository, path):
    fake_repository.unavailable = True

    response = client.get(path)

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"] == "application/json"
    assert "error" in response.json()


def test_unknown_paths_are_json_404(client):
    response = client.get("/nothing/here")

    assert response.status_code == 404
    assert response.json() == {"error": "Not found"}


def test_writes_are_405_json(client, fake_repository):
    response = client.post("/records", data={"id": "1"}, content_type="application/json")

    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert "POST" in response.json()["error"]


def test_browsers_get_the_browsable_api(client, stored):
    response = client.get("/records?limit=2", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"id-0000" in response.content


def test_openapi_schema_describes_both_paths(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    # drf-spectacular writes the optional trailing slash as "/"; both forms are served.
    assert {"/records/", "/records/{id}/"} <= set(schema["paths"])
    detail = schema["paths"]["/records/{id}/"]["get"]["responses"]
    assert {"200", "404", "503"} <= set(detail)
    assert "Retry-After" in detail["503"]["headers"]
    listing = schema["paths"]["/records/"]["get"]["responses"]["200"]
    assert {"X-Total-Count", "Link"} <= set(listing["headers"])


def test_docs_ui_assets_are_served_locally(client):
    page = client.get("/api/docs/")
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.content.decode())

    assert page.status_code == 200
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    assert "//" not in "".join(assets).replace("/static/", "")
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_healthz_answers_without_the_warehouse(client, fake_repository):
    fake_repository.unavailable = True

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_pings_the_warehouse_once_within_its_cache_window(client, fake_repository):
    assert client.get("/readyz").status_code == 200
    assert client.get("/readyz/").status_code == 200

    assert fake_repository.calls["ping"] == 1


def test_metrics_count_requests_warehouse_queries_and_cache_results(client, stored):
    client.get("/records/id-0001")
    client.get("/records/id-0001")

    text = generate_latest(REGISTRY).decode()

    assert re.search(
        r'latam_http_requests_total\{method="GET",route="record-detail",status="200"\} [1-9]', text
    )
    assert 'latam_cache_requests_total{kind="get",result="hit"}' in text
    assert "latam_http_request_duration_seconds_bucket" in text


@pytest.mark.parametrize("path", ["/metrics", "/metrics/"])
def test_metrics_are_not_served_to_api_consumers(client, stored, path):
    response = client.get(path)

    assert response.status_code == 404
    assert response.json() == {"error": "Not found"}


def test_throttled_clients_get_429_json_with_retry_after(client, stored, monkeypatch):
    monkeypatch.setattr(RecordViewSet, "throttle_classes", [AnonRateThrottle])
    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "2/minute"})

    statuses = [client.get("/records/id-0001").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    response = client.get("/records/id-0001")
    assert int(response["Retry-After"]) > 0
    assert "error" in response.json()


@pytest.mark.parametrize("path", ["/healthz", "/readyz/"])
def test_probes_answer_whatever_the_host_header(client, fake_repository, path):
    assert client.get(path, HTTP_HOST="10.0.0.7:8080").status_code == 200


def test_other_paths_reject_hosts_not_allowed(client, fake_repository):
    response = client.get("/records", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response.json() == {"error": "Bad request"}
