"""The Storage Write API writer (records/storage_write.py) without a warehouse: the row
message and its type mapping, what each status means, and the append loop on a fake
AppendRows call (the integration tests run it against bqemulator)."""

import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import grpc
import pytest
from google.cloud.bigquery_storage_v1 import types
from google.protobuf import descriptor_pb2
from google.rpc import code_pb2, status_pb2

from records import storage_write
from records.entities import Record, StoredRecord
from records.repository import SCHEMA, WarehouseRequestRefused, _failure
from records.storage_write import (
    ROW_DESCRIPTOR,
    AppendRowsWriter,
    append_failure,
    row_error_reason,
    rows_serialize,
    timestamp_micros,
)

Request = types.AppendRowsRequest.pb()
Response = types.AppendRowsResponse.pb()
RowError = types.RowError.pb()
T0 = datetime(2026, 1, 1, 12, 30, 15, 123456, tzinfo=UTC)


def stored(record_id: str, *, message_id: str | None = None) -> StoredRecord:
    record = Record(id=record_id, nombre="Zoraida", apellido="Quintanilla", pais="Uruguay")
    return StoredRecord(record=record, published_at=T0, message_id=message_id)


def test_the_row_message_has_the_table_columns_by_the_storage_write_type_mapping():
    proto_type = {
        "STRING": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        "TIMESTAMP": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    }

    assert [(f.name, f.type) for f in ROW_DESCRIPTOR.field] == [
        (column.name, proto_type[column.field_type]) for column in SCHEMA
    ]
    assert {f.label for f in ROW_DESCRIPTOR.field} == {
        descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    }


def test_timestamps_are_exact_microseconds_since_the_epoch():
    assert timestamp_micros(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert timestamp_micros(T0) == 1_767_270_615_123_456
    assert timestamp_micros(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == -1
    minus_three = timezone(timedelta(hours=-3))
    assert timestamp_micros(T0.astimezone(minus_three)) == timestamp_micros(T0)
    assert timestamp_micros(T0.replace(tzinfo=None)) == timestamp_micros(T0)  # naive: UTC


def test_rows_serialize_to_the_row_message():
    ingested = T0 + timedelta(seconds=2)
    first, second = rows_serialize(
        [stored("a", message_id="123"), stored("b")], ingested_at=ingested
    )
    row = storage_write._Row.FromString(first)
    without_message_id = storage_write._Row.FromString(second)

    assert (row.id, row.nombre, row.apellido, row.pais, row.message_id) == (
        "a",
        "Zoraida",
        "Quintanilla",
        "Uruguay",
        "123",
    )
    assert row.published_at == timestamp_micros(T0)
    assert row.ingested_at == timestamp_micros(ingested)
    assert not without_message_id.HasField("message_id")  # NULL in the table


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, "request_refused"),
        (grpc.StatusCode.PERMISSION_DENIED, "denied"),
        (grpc.StatusCode.UNAUTHENTICATED, "denied"),
        (grpc.StatusCode.NOT_FOUND, "missing"),
        (grpc.StatusCode.UNAVAILABLE, "unavailable"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "unavailable"),
        (grpc.StatusCode.INTERNAL, "unavailable"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "unavailable"),
        (grpc.StatusCode.FAILED_PRECONDITION, "unavailable"),
        (grpc.StatusCode.UNKNOWN, "unavailable"),
    ],
)
def test_each_append_status_means_a_reason(code, reason):
    failure = _failure("insert", append_failure(code, "details"))

    assert failure.reason == reason
    assert isinstance(failure, WarehouseRequestRefused) == (reason == "request_refused")


def test_row_error_reasons_name_columns_never_values():
    message = "Field nombre: STRING(5) has maximum length 5 but got 'Zoraida' (pais 'Perú')"

    assert row_error_reason(RowError.FIELDS_ERROR, message) == "fields_error: nombre, pais"
    assert row_error_reason(RowError.FIELDS_ERROR, "Zoraida") == "fields_error"
    assert row_error_reason(99, "") == "row_error"


class FakeCall:
    """An AppendRows call: answers each request with `answer(request)` (a Response, or
    None to never answer)."""

    def __init__(self, requests, answer):
        self.requests, self.answer = requests, answer
        self.seen: list = []
        self.cancelled = threading.Event()
        self.ended = False

    def __iter__(self):
        for request in self.requests:
            self.seen.append(request)
            response = self.answer(request)
            if response is not None:
                yield response
        self.ended = True

    def is_active(self) -> bool:
        return not self.cancelled.is_set() and not self.ended

    def cancel(self) -> None:
        self.cancelled.set()


class FakeRpc:
    def __init__(self, answer):
        self.answer = answer
        self.calls: list[FakeCall] = []

    def __call__(self, requests, *, metadata, wait_for_ready):
        assert wait_for_ready is True
        assert dict(metadata)["x-goog-request-params"] == (
            "write_stream=projects/p/datasets/d/tables/t/streams/_default"
        )
        call = FakeCall(requests, self.answer)
        self.calls.append(call)
        return call


def writer_on(rpc: FakeRpc, **options) -> AppendRowsWriter:
    writer = AppendRowsWriter(client=None, project="p", dataset="d", table="t", **options)
    writer._rpc_build = lambda: rpc  # no client: the fake call stands in for the channel
    return writer


def ok(request):
    return Response(append_result=Response.AppendResult())


def refusing(*ids: str):
    """BigQuery's answer to a request holding rows with these ids: row_errors, nothing
    written."""

    def answer(request):
        rows = [
            storage_write._Row.FromString(raw) for raw in request.proto_rows.rows.serialized_rows
        ]
        errors = [
            RowError(index=index, code=RowError.FIELDS_ERROR, message="Field nombre: bad")
            for index, row in enumerate(rows)
            if row.id in ids
        ]
        if not errors:
            return ok(request)
        status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="row errors")
        return Response(error=status, row_errors=errors)

    return answer


def serialized(*ids: str) -> list[bytes]:
    return rows_serialize([stored(i) for i in ids], ingested_at=T0)


def test_refused_rows_come_back_by_index_and_the_others_are_sent_again():
    rpc = FakeRpc(refusing("b", "d"))
    writer = writer_on(rpc)

    refused = writer.append(serialized("a", "b", "c", "d", "e"), timeout=5)

    assert refused == {1: "fields_error: nombre", 3: "fields_error: nombre"}
    first, second = rpc.calls[0].seen
    assert len(first.proto_rows.rows.serialized_rows) == 5
    assert [
        storage_write._Row.FromString(raw).id for raw in second.proto_rows.rows.serialized_rows
    ] == ["a", "c", "e"]
    # write_stream on every request (bqemulator needs it), the schema on the first only.
    stream = "projects/p/datasets/d/tables/t/streams/_default"
    assert first.write_stream == second.write_stream == stream
    assert first.proto_rows.HasField("writer_schema")
    assert not second.proto_rows.HasField("writer_schema")
    assert len(rpc.calls) == 1  # the same call throughout


def test_every_row_refused_writes_nothing_and_sends_once():
    rpc = FakeRpc(refusing("a", "b"))

    assert writer_on(rpc).append(serialized("a", "b"), timeout=5) == {
        0: "fields_error: nombre",
        1: "fields_error: nombre",
    }
    assert len(rpc.calls[0].seen) == 1


def test_a_request_error_without_row_errors_is_raised_and_the_call_replaced():
    def answer(request):
        status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="bad request")
        return Response(error=status)

    rpc = FakeRpc(answer)
    writer = writer_on(rpc)

    with pytest.raises(Exception) as raised:
        writer.append(serialized("a"), timeout=5)

    assert isinstance(_failure("insert", raised.value), WarehouseRequestRefused)
    assert rpc.calls[0].cancelled.is_set()
    rpc.answer = ok
    assert writer.append(serialized("a"), timeout=5) == {}
    assert len(rpc.calls) == 2
    assert rpc.calls[1].seen[0].proto_rows.HasField("writer_schema")  # a new call's first


def test_a_request_of_10_mb_or_more_is_refused_before_it_is_sent():
    rpc = FakeRpc(ok)
    rows = [b"x" * 1_000_000] * 10

    with pytest.raises(Exception) as raised:
        writer_on(rpc).append(rows, timeout=5)

    assert isinstance(_failure("insert", raised.value), WarehouseRequestRefused)
    assert rpc.calls[0].seen == []


def test_an_unanswered_append_times_out_within_its_bound_and_the_call_is_cancelled():
    rpc = FakeRpc(lambda request: None)
    started = time.monotonic()

    with pytest.raises(TimeoutError):
        writer_on(rpc).append(serialized("a"), timeout=0.3)

    assert 0.3 <= time.monotonic() - started < 1
    assert rpc.calls[0].cancelled.is_set()


def test_a_call_is_reused_until_it_idles_too_long():
    rpc = FakeRpc(ok)
    writer = writer_on(rpc, max_idle_seconds=0.2)

    writer.append(serialized("a"), timeout=5)
    writer.append(serialized("b"), timeout=5)
    assert len(rpc.calls) == 1
    time.sleep(0.25)
    writer.append(serialized("c"), timeout=5)

    assert len(rpc.calls) == 2
    assert rpc.calls[0].cancelled.is_set()


def test_a_call_the_server_ended_is_replaced():
    rpc = FakeRpc(ok)
    writer = writer_on(rpc)
    writer.append(serialized("a"), timeout=5)

    rpc.calls[0].ended = True  # the server closed it while idle
    writer.append(serialized("b"), timeout=5)

    assert len(rpc.calls) == 2
    assert rpc.calls[0].cancelled.is_set()


def test_concurrent_writers_get_calls_of_their_own():
    release = threading.Event()

    def slow(request):
        release.wait(5)
        return ok(request)

    rpc = FakeRpc(slow)
    writer = writer_on(rpc)
    threads = [
        threading.Thread(target=writer.append, args=(serialized(str(n)),), kwargs={"timeout": 5})
        for n in range(3)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    release.set()
    for thread in threads:
        thread.join(5)

    assert len(rpc.calls) == 3
    writer.close()
    assert all(call.cancelled.is_set() for call in rpc.calls)
