"""Row writes through the BigQuery Storage Write API: AppendRows on the table's `_default`
stream, each row a protobuf message.

Why not `tabledata.insertAll` (the legacy streaming inserts): the Storage Write API costs
half as much per GiB ingested, with the first 2 TiB of each month free; it is what
Pub/Sub's own BigQuery subscriptions write with; and the rows it writes can be updated or
deleted by DML at once (rows from insertAll sit in a streaming buffer that DML cannot
touch for up to ~30 minutes).

The default stream commits each append when it is answered (at-least-once): there is no
insert id, so an append retried after a lost answer may store a row twice. Reads keep one
row per id (the latest `published_at`, then `ingested_at`), so that never shows.

One AppendRows call is a long-lived gRPC stream that carries request after request, each
answered in order. `AppendRowsWriter` keeps the calls it opened in a pool — one per writer
working at the same time — and opens a new one instead of reusing a call that failed, that
the server ended, or that idled longer than `max_idle_seconds`: the Python client is known
to fail the first append after a stream idled ~10 minutes.
"""

import queue
import re
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.api_core import exceptions as google_exceptions
from google.api_core.gapic_v1 import routing_header
from google.cloud.bigquery_storage_v1 import BigQueryWriteClient, types
from google.cloud.bigquery_storage_v1.services.big_query_write.transports import (
    BigQueryWriteGrpcTransport,
)
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from records.entities import StoredRecord

# BigQuery refuses an AppendRows request of 10 MB or more (INVALID_ARGUMENT): refused here
# before it is sent, the same on the emulator (whose cap is 10 MiB).
APPEND_ROWS_MAX_BYTES = 10_000_000
# A call that idled this long is replaced rather than reused.
MAX_IDLE_SECONDS = 120.0
_APPEND_ROWS = "/google.cloud.bigquery.storage.v1.BigQueryWrite/AppendRows"

# The table's columns (records.repository.SCHEMA, terraform/modules/bigquery/schemas/
# records.json) as proto2 fields, by the Storage Write API's type mapping: STRING is a
# `string`, TIMESTAMP an `int64` of microseconds since the Unix epoch (UTC). All optional in
# the proto: the table says which are REQUIRED, and a row without `message_id` is NULL there.
_COLUMNS = (
    ("id", descriptor_pb2.FieldDescriptorProto.TYPE_STRING),
    ("nombre", descriptor_pb2.FieldDescriptorProto.TYPE_STRING),
    ("apellido", descriptor_pb2.FieldDescriptorProto.TYPE_STRING),
    ("pais", descriptor_pb2.FieldDescriptorProto.TYPE_STRING),
    ("message_id", descriptor_pb2.FieldDescriptorProto.TYPE_STRING),
    ("published_at", descriptor_pb2.FieldDescriptorProto.TYPE_INT64),
    ("ingested_at", descriptor_pb2.FieldDescriptorProto.TYPE_INT64),
)
ROW_DESCRIPTOR = descriptor_pb2.DescriptorProto(
    name="StoredRecord",
    field=[
        descriptor_pb2.FieldDescriptorProto(
            name=name,
            number=number,
            type=kind,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
        for number, (name, kind) in enumerate(_COLUMNS, start=1)
    ],
)


def _row_class() -> Any:
    """The message class of ROW_DESCRIPTOR, in a pool of its own (the default pool is the
    Google clients')."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(
        descriptor_pb2.FileDescriptorProto(
            name="latam/records/stored_record.proto",
            package="latam.records",
            syntax="proto2",
            message_type=[ROW_DESCRIPTOR],
        )
    )
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("latam.records.StoredRecord"))


_Row = _row_class()
# The raw protobuf classes behind the client's proto-plus types: built and read without
# proto-plus' per-field copies (one request carries hundreds of rows).
_Request: Any = types.AppendRowsRequest.pb()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}
_COLUMN_NAMES = re.compile(r"\b(" + "|".join(name for name, _ in _COLUMNS) + r")\b")


def timestamp_micros(moment: datetime) -> int:
    """A TIMESTAMP as the Storage Write API takes it: microseconds since the epoch. A
    naive datetime is UTC, as BigQuery reads a TIMESTAMP literal without an offset."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def rows_serialize(rows: Sequence[StoredRecord], *, ingested_at: datetime) -> list[bytes]:
    """Each row as the bytes of a ROW_DESCRIPTOR message (~1.5 µs a row)."""
    ingested = timestamp_micros(ingested_at)
    return [
        _Row(
            id=row.record.id,
            nombre=row.record.nombre,
            apellido=row.record.apellido,
            pais=row.record.pais,
            message_id=row.message_id,
            published_at=timestamp_micros(row.published_at),
            ingested_at=ingested,
        ).SerializeToString()
        for row in rows
    ]


def append_failure(code: grpc.StatusCode, message: str) -> google_exceptions.GoogleAPICallError:
    """What a failed append means, as the client exception that records.repository maps
    to a reason: INVALID_ARGUMENT a request refused as a whole; PERMISSION_DENIED and
    UNAUTHENTICATED refused permission; NOT_FOUND a missing table. Any other status passes
    (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, RESOURCE_EXHAUSTED, ABORTED, and
    FAILED_PRECONDITION, which BigQuery answers while a table's new schema reaches the
    stream): never a refusal that would dead-letter valid rows."""
    if code in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.NOT_FOUND,
    ):
        error: google_exceptions.GoogleAPICallError = google_exceptions.from_grpc_status(
            code, message
        )
        return error
    return google_exceptions.ServiceUnavailable(f"AppendRows {code.name}: {message}")


def row_error_reason(code: int, message: str) -> str:
    """Why the table refused a row, without quoting it: the error code and the columns
    the message names (column names only, from a fixed list: never a value)."""
    try:
        name = types.RowError.RowErrorCode(code).name.lower()
    except ValueError:
        name = "row_error"
    columns = sorted(set(_COLUMN_NAMES.findall(message)))
    return f"{name}: {', '.join(columns)}" if columns else name


def _responses_read(call: Any, responses: "queue.SimpleQueue[Any]") -> None:
    """The reader thread of one call: each response, then how the call ended (an
    exception, or None when the server closed it). Holds no reference to its
    connection, so that a connection no one holds is collected and its call cancelled."""
    try:
        for response in call:
            responses.put(response)
    except grpc.RpcError as error:
        # gRPC's call errors are grpc.Call too (code, details); the stubs do not say so.
        code, details = getattr(error, "code", None), getattr(error, "details", None)
        responses.put(
            append_failure(
                code() if code else grpc.StatusCode.UNKNOWN, (details() if details else "") or ""
            )
        )
    else:
        responses.put(None)


def _call_end(call: Any, requests: "queue.SimpleQueue[Any]") -> None:
    requests.put(None)  # ends the request iterator (gRPC's sending thread)
    call.cancel()


class _Connection:
    """One AppendRows call: a request at a time, each waiting for its response."""

    def __init__(self, rpc: Callable[..., Any], *, metadata: Sequence[tuple[str, str]]):
        requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._requests = requests
        self._responses: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Waits for a connection (within each append's bound) rather than failing at once
        # while the channel backs off between attempts: the first append after the
        # warehouse is back is written.
        call = rpc(iter(requests.get, None), metadata=metadata, wait_for_ready=True)
        self._call = call
        self.schema_sent = False  # the writer schema goes with the first request only
        self.last_used = time.monotonic()
        threading.Thread(
            target=_responses_read,
            args=(call, self._responses),
            name="bigquery-append-rows",
            daemon=True,
        ).start()
        # Closed explicitly, or when no one holds it any more.
        self._finalizer = weakref.finalize(self, _call_end, call, requests)

    def reusable(self, now: float, max_idle_seconds: float) -> bool:
        """Open, nothing pending (a response queued while idle means the call ended), and
        not idle for too long."""
        return (
            now - self.last_used < max_idle_seconds
            and self._responses.empty()
            and bool(self._call.is_active())
        )

    def append(self, request: Any, *, deadline: float) -> Any:
        """Send `request` and return its response (raw protobuf); raise the call's failure,
        or TimeoutError past `deadline` (time.monotonic())."""
        self._requests.put(request)
        try:
            response = self._responses.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            raise TimeoutError("no AppendRows response within the bound") from None
        if isinstance(response, Exception):
            raise response
        if response is None:
            raise google_exceptions.ServiceUnavailable("the AppendRows call was closed")
        self.last_used = time.monotonic()
        return response

    def close(self) -> None:
        self._finalizer()


class AppendRowsWriter:
    """Appends rows to one table's default stream. Thread-safe: concurrent callers get
    calls of their own."""

    def __init__(
        self,
        *,
        client: Callable[[], BigQueryWriteClient],
        project: str,
        dataset: str,
        table: str,
        max_idle_seconds: float = MAX_IDLE_SECONDS,
    ):
        self._client = client  # called at the first append: a reader never opens one
        self._stream = f"projects/{project}/datasets/{dataset}/tables/{table}/streams/_default"
        # Routes the call to the table's region (what the client's own methods send).
        self._metadata = (routing_header.to_grpc_metadata((("write_stream", self._stream),)),)
        self._max_idle_seconds = max_idle_seconds
        self._rpc: Callable[..., Any] | None = None
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def append(self, rows: Sequence[bytes], *, timeout: float) -> dict[int, str]:
        """Append serialized rows in one request (fewer when some are refused); return the
        index → reason of each row the table refused, the others written. Raise the
        client's exception for a failed request (see `append_failure`), TimeoutError
        after `timeout` seconds in all."""
        deadline = time.monotonic() + timeout
        refused: dict[int, str] = {}
        pending = list(range(len(rows)))
        connection = self._connection_take()
        try:
            while pending:
                request = _Request(write_stream=self._stream)
                data = request.proto_rows
                data.rows.serialized_rows.extend([rows[index] for index in pending])
                if not connection.schema_sent:
                    data.writer_schema.proto_descriptor.CopyFrom(ROW_DESCRIPTOR)
                if request.ByteSize() >= APPEND_ROWS_MAX_BYTES:
                    raise google_exceptions.InvalidArgument(
                        f"AppendRows request over {APPEND_ROWS_MAX_BYTES} bytes"
                    )
                response = connection.append(request, deadline=deadline)
                connection.schema_sent = True
                if not response.row_errors:
                    if response.error.code:
                        raise append_failure(
                            _STATUS_CODES.get(response.error.code, grpc.StatusCode.UNKNOWN),
                            response.error.message,
                        )
                    break
                # None of the request's rows was written: send the others again.
                errors = {
                    pending[error.index]: row_error_reason(error.code, error.message)
                    for error in response.row_errors
                    if 0 <= error.index < len(pending)
                }
                if not errors:
                    raise google_exceptions.InvalidArgument("row errors that name no row")
                refused.update(errors)
                pending = [index for index in pending if index not in errors]
        except BaseException:
            connection.close()
            raise
        with self._lock:
            self._idle.append(connection)
        return refused

    def close(self) -> None:
        """End the calls held (a new append opens another)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _connection_take(self) -> _Connection:
        now = time.monotonic()
        with self._lock:
            stale = [c for c in self._idle if not c.reusable(now, self._max_idle_seconds)]
            self._idle = [c for c in self._idle if c not in stale]
            connection = self._idle.pop() if self._idle else None
            if self._rpc is None:
                self._rpc = self._rpc_build()
            rpc = self._rpc
        for old in stale:
            old.close()
        return connection or _Connection(rpc, metadata=self._metadata)

    def _rpc_build(self) -> Callable[..., Any]:
        transport = self._client().transport
        if not isinstance(transport, BigQueryWriteGrpcTransport):
            raise TypeError("the Storage Write API needs the client's gRPC transport")
        # The channel's own AppendRows stub, on raw protobuf messages (the client's
        # append_rows wrapper waits for a first response before it returns the call).
        return transport.grpc_channel.stream_stream(
            _APPEND_ROWS,
            request_serializer=_Request.SerializeToString,
            response_deserializer=types.AppendRowsResponse.pb().FromString,
        )
