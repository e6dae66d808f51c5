"""The BigQuery repository with the real client against bqemulator."""

import socket
import threading
import time
from datetime import UTC, datetime

import pytest

from latam.clients import clients_reset
from records import wiring
from records.entities import Record, StoredRecord
from records.repository import WarehouseUnavailable

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stored(record_id: str, nombre: str = "Juan", *, at: datetime = T0, message_id=None):
    record = Record(id=record_id, nombre=nombre, apellido="Pérez", pais="Argentina")
    return StoredRecord(record=record, published_at=at, message_id=message_id)


def test_values_are_parameters_not_sql(warehouse):
    warehouse.records_insert(rows=[stored("a")])

    assert warehouse.record_get(record_id="' OR '1'='1") is None
    assert warehouse.record_get(record_id="a' --") is None


def test_ping_succeeds_on_an_existing_table(warehouse):
    warehouse.warehouse_ping()


def test_ping_fails_on_a_missing_table(settings, warehouse):
    settings.BIGQUERY_TABLE = "does_not_exist"
    wiring.record_repository.cache_clear()

    with pytest.raises(WarehouseUnavailable):
        wiring.record_repository().warehouse_ping()


def test_table_is_clustered_on_id_with_required_columns(warehouse, settings):
    from latam.clients import bigquery_client

    table = bigquery_client().get_table(
        f"{settings.GCP_PROJECT}.{settings.BIGQUERY_DATASET}.{settings.BIGQUERY_TABLE}"
    )

    assert table.clustering_fields == ["id"]
    modes = {field.name: field.mode for field in table.schema}
    assert all(modes[name] == "REQUIRED" for name in ("id", "nombre", "apellido", "pais"))


def test_unreachable_warehouse_raises_within_the_bound(settings):
    settings.BIGQUERY_EMULATOR_HOST = "127.0.0.1:9"  # nothing listens there
    settings.BIGQUERY_TIMEOUT_SECONDS = 1
    clients_reset()
    started = time.monotonic()

    with pytest.raises(WarehouseUnavailable):
        wiring.record_repository().record_get(record_id="a")

    assert time.monotonic() - started < 5


@pytest.fixture
def silent_server():
    """Accepts connections and never answers: a warehouse that hangs."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_hanging_warehouse_raises_within_the_bound(settings, silent_server):
    settings.BIGQUERY_EMULATOR_HOST = silent_server
    settings.BIGQUERY_TIMEOUT_SECONDS = 1
    clients_reset()
    started = time.monotonic()

    with pytest.raises(WarehouseUnavailable):
        wiring.record_repository().records_count()

    assert time.monotonic() - started < 5
