"""Every read query is bounded in bytes and time, says what it processed, and a refusal
for its cost is told apart: the real BigQuery client, against bqemulator and against a
stub of the REST endpoint where the emulator cannot answer like BigQuery (it ignores
maximumBytesBilled, and reports 0 bytes processed)."""

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import REGISTRY

from latam.clients import bigquery_client, clients_reset
from records import wiring
from records.entities import Record, StoredRecord
from records.repository import WarehouseUnavailable

COST_MESSAGE = "warehouse query refused for its cost"
FIELDS = ["id", "nombre", "apellido", "pais"]


@dataclass
class StubBigQuery:
    """A BigQuery REST endpoint that records each jobs.query request and answers `reply`."""

    host: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    reply: tuple[int, dict[str, Any]] = (500, {})

    def answer_rows(self, rows: list[list[str]], *, total_bytes_processed: str | None) -> None:
        body: dict[str, Any] = {
            "kind": "bigquery#queryResponse",
            "jobComplete": True,
            "schema": {"fields": [{"name": n, "type": "STRING"} for n in FIELDS]},
            "rows": [{"f": [{"v": value} for value in row]} for row in rows],
            "totalRows": str(len(rows)),
            # What JOB_CREATION_OPTIONAL answers when no job was created: a query id.
            "queryId": "stub-query-id",
        }
        if total_bytes_processed is not None:
            body["totalBytesProcessed"] = total_bytes_processed
        self.reply = (200, body)

    def answer_cost_refusal(self) -> None:
        message = "Query exceeded limit for bytes billed: 1000. 10485760 or higher required."
        self.reply = (
            400,
            {
                "error": {
                    "code": 400,
                    "message": message,
                    "errors": [
                        {
                            "message": message,
                            "domain": "global",
                            "reason": "bytesBilledLimitExceeded",
                        }
                    ],
                    "status": "INVALID_ARGUMENT",
                }
            },
        )


@pytest.fixture
def stub_bigquery() -> Iterator[StubBigQuery]:
    stub = StubBigQuery()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            stub.requests.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
            status, body = stub.reply
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.host = f"127.0.0.1:{server.server_address[1]}"
    yield stub
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def stubbed(settings, stub_bigquery):
    """The BigQuery repository, built from settings, talking to the stub."""
    settings.BIGQUERY_EMULATOR_HOST = stub_bigquery.host
    settings.BIGQUERY_TIMEOUT_SECONDS = 4
    settings.BIGQUERY_MAX_BYTES_BILLED = 123_456_789
    settings.BIGQUERY_SHORT_QUERY_MODE = True
    clients_reset()
    wiring.record_repository.cache_clear()
    return stub_bigquery


def repository():
    wiring.record_repository.cache_clear()
    return wiring.record_repository()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    "read",
    [
        lambda r: r.records_list(limit=5, offset=0),
        lambda r: r.records_list(limit=5, after="a"),
        lambda r: r.record_get(record_id="a"),
    ],
    ids=["list", "list-after", "get"],
)
def test_every_read_query_carries_its_byte_and_time_bounds(stubbed, read):
    stubbed.answer_rows([["a", "Ana", "Gómez", "Chile"]], total_bytes_processed="1")

    read(repository())

    (request,) = stubbed.requests
    assert request["path"].split("?")[0].endswith("/queries")  # jobs.query, one request
    body = request["body"]
    assert body["maximumBytesBilled"] == "123456789"
    assert body["jobTimeoutMs"] == "4000"
    assert body["jobCreationMode"] == "JOB_CREATION_OPTIONAL"
    assert body["useQueryCache"] is True


def test_the_count_carries_its_bounds_too(stubbed):
    stubbed.reply = (
        200,
        {
            "jobComplete": True,
            "schema": {"fields": [{"name": "total", "type": "INTEGER"}]},
            "rows": [{"f": [{"v": "7"}]}],
            "totalRows": "1",
            "totalBytesProcessed": "10485760",
        },
    )

    assert repository().records_count() == 7
    assert stubbed.requests[0]["body"]["maximumBytesBilled"] == "123456789"


def test_without_short_query_mode_every_query_asks_for_a_job(stubbed, settings):
    settings.BIGQUERY_SHORT_QUERY_MODE = False
    clients_reset()
    stubbed.answer_rows([], total_bytes_processed="0")

    repository().records_list(limit=5, offset=0)

    assert "jobCreationMode" not in stubbed.requests[0]["body"]


def test_bytes_processed_are_counted_per_operation(stubbed):
    stubbed.answer_rows([["a", "Ana", "Gómez", "Chile"]], total_bytes_processed="8400000000")
    before = {
        operation: sample("latam_warehouse_bytes_processed_total", operation=operation)
        for operation in ("list", "list_after")
    }

    repository().records_list(limit=1, offset=0)
    repository().records_list(limit=1, after="0")
    repository().records_list(limit=1, after="0")

    assert {
        operation: sample("latam_warehouse_bytes_processed_total", operation=operation) - value
        for operation, value in before.items()
    } == {"list": 8_400_000_000, "list_after": 2 * 8_400_000_000}


def test_a_missing_bytes_processed_counts_nothing_and_reads_fine(stubbed):
    stubbed.answer_rows([["a", "Ana", "Gómez", "Chile"]], total_bytes_processed=None)
    before = sample("latam_warehouse_bytes_processed_total", operation="get")

    assert repository().record_get(record_id="a") == Record(
        id="a", nombre="Ana", apellido="Gómez", pais="Chile"
    )
    assert sample("latam_warehouse_bytes_processed_total", operation="get") == before


def test_a_query_refused_for_its_cost_is_logged_once_counted_and_unavailable(stubbed, caplog):
    stubbed.answer_cost_refusal()
    before = sample("latam_warehouse_queries_total", operation="list_after", outcome="cost_refused")
    caplog.set_level(logging.INFO, logger="records.repository")

    with pytest.raises(WarehouseUnavailable) as raised:
        repository().records_list(limit=5, after="secret-id")

    assert raised.value.reason == "cost"
    assert len(stubbed.requests) == 1, "a refusal for its cost is not retried"
    lines = [r for r in caplog.records if r.name == "records.repository"]
    assert [(r.levelno, r.getMessage()) for r in lines] == [(logging.WARNING, COST_MESSAGE)]
    assert (lines[0].operation, lines[0].reason) == ("list_after", "cost")
    assert "secret-id" not in caplog.text
    after = sample("latam_warehouse_queries_total", operation="list_after", outcome="cost_refused")
    assert after - before == 1


# --- bqemulator -----------------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_emulator_accepts_the_bounds_and_the_short_mode(warehouse, settings):
    """bqemulator 1.4 takes maximumBytesBilled, jobTimeoutMs and jobCreationMode and
    ignores them (it never refuses for cost, always creates a job), and reports 0 bytes."""
    settings.BIGQUERY_MAX_BYTES_BILLED = 1  # BigQuery itself would refuse every query
    settings.BIGQUERY_SHORT_QUERY_MODE = True
    clients_reset()
    bounded = repository()
    record = Record(id="a", nombre="Ana", apellido="Gómez", pais="Chile")
    bounded.records_insert(rows=[StoredRecord(record=record, published_at=T0)])
    before = sample("latam_warehouse_bytes_processed_total", operation="list")

    assert bigquery_client().default_job_creation_mode == "JOB_CREATION_OPTIONAL"
    assert bounded.records_list(limit=5, offset=0) == [record]
    assert bounded.records_list(limit=5, after="0") == [record]
    assert bounded.records_count() == 1
    assert bounded.record_get(record_id="a") == record
    assert sample("latam_warehouse_bytes_processed_total", operation="list") == before
