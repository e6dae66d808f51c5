"""The API end to end on the real BigQuery client and bqemulator."""

import time
from datetime import UTC, datetime

import pytest

from latam.clients import clients_reset
from records import wiring
from records.entities import Record, StoredRecord

JUAN = Record(id="12345", nombre="Juan", apellido="Perez", pais="Argentina")


@pytest.fixture
def seeded(warehouse):
    others = [
        Record(id=f"r{n:03d}", nombre="Ana", apellido="Gómez", pais="Chile") for n in range(30)
    ]
    now = datetime.now(UTC)
    warehouse.records_insert(
        rows=[StoredRecord(record=r, published_at=now) for r in [JUAN, *others]]
    )
    return warehouse


def test_detail_answers_the_stored_record(client, seeded):
    response = client.get("/records/12345")

    assert response.status_code == 200
    assert response.json() == JUAN.as_dict()


def test_missing_record_is_404(client, seeded):
    response = client.get("/records/99999")

    assert response.status_code == 404
    assert response.json() == {"error": "Registro no encontrado"}


def test_list_pages_through_the_table_in_id_order(client, seeded):
    first = client.get("/records?limit=20")
    second = client.get("/records?limit=20&offset=20")

    ids = [r["id"] for r in first.json() + second.json()]
    assert ids == sorted(ids)
    assert len(ids) == 31 == len(set(ids))
    assert first["X-Total-Count"] == "31"
    assert 'rel="next"' in first["Link"] and 'rel="next"' not in second["Link"]


def test_readyz_is_200_when_the_table_answers(client, seeded):
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize("path", ["/records/12345", "/records?limit=5", "/readyz"])
def test_warehouse_down_is_503_within_the_bound(client, settings, path):
    settings.BIGQUERY_EMULATOR_HOST = "127.0.0.1:9"
    settings.BIGQUERY_TIMEOUT_SECONDS = 1
    clients_reset()
    wiring.record_repository.cache_clear()
    started = time.monotonic()

    response = client.get(path)

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "error" in response.json()
    assert time.monotonic() - started < 5
