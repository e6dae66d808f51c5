"""Row writes through the BigQuery Storage Write API (AppendRows on the table's `_default`
stream), with the real client against bqemulator: what `records_insert` promises the
Ingestor and `manage.py seed` — rows refused one by one, requests refused as a whole,
a warehouse down or hanging, streams re-opened after a failure or idleness."""

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings
from google.cloud import bigquery

from latam.clients import bigquery_client, bigquery_write_client, clients_reset
from records import wiring
from records.entities import Record, StoredRecord
from records.repository import (
    SCHEMA,
    BigQueryRecordRepository,
    WarehouseRequestRefused,
    WarehouseUnavailable,
)
from records.tests.integration.append_rows_proxy import AppendRowsProxy
from scripts.devstack import REPO, Stack, free_port, metric_total

T0 = datetime(2026, 1, 1, 12, 30, 15, 123456, tzinfo=UTC)
INSERT_ALL = "/bigquery/v2/projects/{project_id}/datasets/{dataset_id}/tables/{table_id}/insertAll"


def stored(record_id: str, nombre: str = "Zoraida", *, at: datetime = T0, message_id=None):
    record = Record(id=record_id, nombre=nombre, apellido="Quintanilla", pais="Uruguay")
    return StoredRecord(record=record, published_at=at, message_id=message_id)


def emulator_metric(rest_host: str, name: str, **labels: str) -> float:
    """A counter of bqemulator's own /metrics (REST port): its gRPC calls by method
    (counted when a call opens), its REST requests by route."""
    return metric_total(f"http://{rest_host}", name, **labels)


def append_calls(rest_host: str) -> float:
    return emulator_metric(rest_host, "bqemulator_grpc_requests_total", method="AppendRows")


def table_rows(table_id: str) -> dict[str, dict]:
    rows = bigquery_client().query_and_wait(
        f"SELECT id, nombre, message_id, published_at, ingested_at FROM `{table_id}`"  # noqa: S608
    )
    return {row["id"]: dict(row.items()) for row in rows}


def table_replace(table_id: str, schema: list[bigquery.SchemaField]) -> None:
    client = bigquery_client()
    client.delete_table(table_id)
    client.create_table(bigquery.Table(table_id, schema=schema))


def test_rows_are_appended_through_the_storage_write_api_with_their_lineage(
    warehouse, bigquery_emulator
):
    calls_before = append_calls(bigquery_emulator)
    insert_all_before = emulator_metric(
        bigquery_emulator, "bqemulator_rest_requests_total", route=INSERT_ALL
    )
    started = datetime.now(UTC)

    refused = warehouse.records_insert(
        rows=[
            stored("a", message_id="1234567890123456"),
            stored("b", at=T0 + timedelta(microseconds=1)),
            stored("c", at=datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ]
    )

    finished = datetime.now(UTC)
    assert refused == {}
    rows = table_rows(warehouse.table_id)
    assert rows["a"]["message_id"] == "1234567890123456"
    assert rows["b"]["message_id"] is None
    # TIMESTAMP columns travel as int64 microseconds since the epoch: exact.
    assert rows["a"]["published_at"] == T0
    assert rows["b"]["published_at"] == T0 + timedelta(microseconds=1)
    assert rows["c"]["published_at"] == datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert len({row["ingested_at"] for row in rows.values()}) == 1  # one per request
    assert started <= rows["a"]["ingested_at"] <= finished
    assert warehouse.record_get(record_id="a") == stored("a").record
    # Through AppendRows (its call opened on the emulator's gRPC port), never insertAll.
    assert append_calls(bigquery_emulator) > calls_before
    assert (
        emulator_metric(bigquery_emulator, "bqemulator_rest_requests_total", route=INSERT_ALL)
        == insert_all_before
    )


@pytest.fixture
def strict_warehouse(settings, warehouse, bigquery_emulator_grpc) -> Iterator:
    """A table whose `message_id` is REQUIRED (rows without one break the table's rules,
    not the Record's), reached through a proxy that checks REQUIRED columns row by row as
    BigQuery does and bqemulator does not."""
    table_replace(
        warehouse.table_id,
        [bigquery.SchemaField(field.name, field.field_type, mode="REQUIRED") for field in SCHEMA],
    )
    proxy = AppendRowsProxy(bigquery_emulator_grpc, required=frozenset({"message_id"}))
    settings.BIGQUERY_EMULATOR_GRPC_HOST = proxy.address
    clients_reset()
    wiring.record_repository.cache_clear()
    repository = wiring.record_repository()
    yield repository, proxy
    repository.close()
    proxy.stop()


def test_a_row_the_table_refuses_is_reported_by_index_and_the_others_are_written(
    strict_warehouse,
):
    repository, proxy = strict_warehouse
    rows = [
        stored("kept-1", message_id="m-1"),
        stored("refused-1"),
        stored("kept-2", message_id="m-3"),
        stored("refused-2"),
    ]

    refused = repository.records_insert(rows=rows)

    assert sorted(refused) == [1, 3]
    for reason in refused.values():
        assert reason
        assert not {"refused", "Zoraida", "Quintanilla", "Uruguay", "m-"} & set(reason.split())
        assert "refused-" not in reason and "Zoraida" not in reason
    assert set(table_rows(repository.table_id)) == {"kept-1", "kept-2"}
    # BigQuery wrote none of the first request's rows: the others were sent again, alone.
    assert proxy.requests == 2


def test_a_request_whose_rows_are_all_refused_writes_nothing(strict_warehouse):
    repository, proxy = strict_warehouse

    refused = repository.records_insert(rows=[stored("refused-1"), stored("refused-2")])

    assert sorted(refused) == [0, 1]
    assert table_rows(repository.table_id) == {}
    assert proxy.requests == 1


def test_a_request_the_warehouse_refuses_as_a_whole_raises_request_refused(warehouse):
    # A table whose id is an INT64: bqemulator refuses a request holding a text id
    # (INVALID_ARGUMENT, no row errors), as BigQuery refuses an invalid request.
    table_replace(
        warehouse.table_id,
        [
            bigquery.SchemaField(
                field.name, "INT64" if field.name == "id" else field.field_type, field.mode
            )
            for field in SCHEMA
        ],
    )

    with pytest.raises(WarehouseRequestRefused) as refusal:
        warehouse.records_insert(rows=[stored("1"), stored("uno"), stored("2")])

    assert refusal.value.reason == "request_refused"
    assert table_rows(warehouse.table_id) == {}
    # The stream is fine after a refusal: the next valid request is written.
    assert warehouse.records_insert(rows=[stored("3")]) == {}
    assert list(table_rows(warehouse.table_id)) == [3]


def test_a_request_over_the_size_limit_raises_request_refused(warehouse):
    # Records near their longest (128 + 3 × 254 characters of two bytes): ~1.7 KB a row,
    # ~13 MB in one request, over AppendRows' 10 MB.
    long = "ñ" * 127

    def longest(n: int) -> StoredRecord:
        record = Record(id=f"{n:0128d}", nombre=long * 2, apellido=long * 2, pais=long * 2)
        return StoredRecord(record=record, published_at=T0, message_id=f"{n:016d}")

    rows = [longest(n) for n in range(8_000)]

    with pytest.raises(WarehouseRequestRefused):
        warehouse.records_insert(rows=rows)

    assert warehouse.records_count() == 0
    assert warehouse.records_insert(rows=rows[:4_000]) == {}  # half of it fits
    assert warehouse.records_count() == 4_000


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: a warehouse that hangs."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted, stop = [], threading.Event()

    def accept() -> None:
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


@pytest.mark.parametrize("endpoint", ["closed", "silent"])
def test_a_warehouse_down_or_hanging_raises_unavailable_within_the_bound(
    settings, warehouse, endpoint, request
):
    settings.BIGQUERY_EMULATOR_GRPC_HOST = (
        f"127.0.0.1:{free_port()}"
        if endpoint == "closed"
        else request.getfixturevalue("silent_server")
    )
    settings.BIGQUERY_TIMEOUT_SECONDS = 1
    clients_reset()
    wiring.record_repository.cache_clear()
    repository = wiring.record_repository()
    started = time.monotonic()

    with pytest.raises(WarehouseUnavailable) as failure:
        repository.records_insert(rows=[stored("a")])

    assert time.monotonic() - started < 2
    assert failure.value.reason == "unavailable"
    assert not isinstance(failure.value, WarehouseRequestRefused)


def test_the_stream_is_reopened_after_the_warehouse_restarts(settings, tmp_path):
    # A warehouse of its own, persistent, to stop and start again on the same ports.
    stack = Stack(log_dir=tmp_path / "bq-logs")
    rest_port, grpc_port, data = free_port(), free_port(), tmp_path / "bq-data"

    def warehouse_start() -> None:
        stack.start_bigquery_emulator(
            project=settings.GCP_PROJECT, rest_port=rest_port, grpc_port=grpc_port, data_dir=data
        )

    try:
        warehouse_start()
        settings.BIGQUERY_EMULATOR_HOST = f"127.0.0.1:{rest_port}"
        settings.BIGQUERY_EMULATOR_GRPC_HOST = f"127.0.0.1:{grpc_port}"
        settings.BIGQUERY_TIMEOUT_SECONDS = 2
        clients_reset()
        wiring.record_repository.cache_clear()
        repository = wiring.record_repository()
        repository.table_ensure(location="US")
        assert repository.records_insert(rows=[stored("before")]) == {}

        stack.stop("bqemulator")
        started = time.monotonic()
        with pytest.raises(WarehouseUnavailable):
            repository.records_insert(rows=[stored("during")])
        assert time.monotonic() - started < 3

        warehouse_start()
        assert repository.records_insert(rows=[stored("after")]) == {}
        assert set(table_rows(repository.table_id)) == {"before", "after"}
        # A new AppendRows call, on the emulator that came back.
        assert append_calls(settings.BIGQUERY_EMULATOR_HOST) >= 1
    finally:
        stack.stop_all()


def test_the_stream_is_reopened_after_idling(warehouse, bigquery_emulator):
    repository = BigQueryRecordRepository(
        client=bigquery_client(),
        write_client=bigquery_write_client,
        project=django_settings.GCP_PROJECT,
        dataset=django_settings.BIGQUERY_DATASET,
        table=django_settings.BIGQUERY_TABLE,
        timeout=5,
        append_stream_max_idle_seconds=0.5,
    )
    calls = append_calls(bigquery_emulator)

    repository.records_insert(rows=[stored("a")])
    repository.records_insert(rows=[stored("b")])
    assert append_calls(bigquery_emulator) == calls + 1  # one stream, reused at once
    time.sleep(0.6)
    repository.records_insert(rows=[stored("c")])

    assert append_calls(bigquery_emulator) == calls + 2  # idle too long: a new one
    assert set(table_rows(repository.table_id)) == {"a", "b", "c"}
    repository.close()


WRITER = """
import itertools
from datetime import UTC, datetime

import django

django.setup()
from records import wiring
from records.entities import Record, StoredRecord

repository = wiring.record_repository()
for n in itertools.count():
    record = Record(id=f"w{n}", nombre="Zoraida", apellido="Quintanilla", pais="Uruguay")
    rows = [StoredRecord(record=record, published_at=datetime.now(UTC))] * 300
    repository.records_insert(rows=rows)
    print(n, flush=True)
"""


def test_the_emulator_survives_writers_killed_mid_append_and_answers_queries_meanwhile(
    settings, warehouse
):
    """bqemulator as scripts/devstack.py starts it (scripts/bqemulator_serial.py). Bare,
    it appends on worker threads through the DuckDB connection its REST API uses:
    queries during appends failed, and writers SIGKILLed mid-append each left a worker
    stuck, until it opened no new stream."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "latam.settings",
        "DJANGO_ENV_FILE": os.devnull,
        "GCP_PROJECT": settings.GCP_PROJECT,
        "BIGQUERY_EMULATOR_HOST": settings.BIGQUERY_EMULATOR_HOST,
        "BIGQUERY_EMULATOR_GRPC_HOST": settings.BIGQUERY_EMULATOR_GRPC_HOST,
        "BIGQUERY_TABLE": settings.BIGQUERY_TABLE,
        "LOG_LEVEL": "CRITICAL",
    }
    counts = []
    for _ in range(10):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER],
            cwd=REPO,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert writer.stdout.readline(), "the writer could not open a stream and append"
        counts.append(warehouse.records_count())  # while it appends
        writer.kill()
        writer.wait(10)

    assert counts == sorted(counts) and counts[0] >= 1
    assert warehouse.records_insert(rows=[stored("after")]) == {}
    assert warehouse.record_get(record_id="after") == stored("after").record
