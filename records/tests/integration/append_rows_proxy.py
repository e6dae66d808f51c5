"""A gRPC front for bqemulator's Storage Write API that refuses rows as BigQuery does.

bqemulator (1.4.0) takes AppendRows but never answers with `row_errors`: it writes NULL
into a REQUIRED column, and a value it cannot convert fails the whole request (or the
call). BigQuery checks each row against the table: a request with bad rows comes back
with `row_errors` (index, code, message) and an INVALID_ARGUMENT `error`, and none of
its rows is written. This proxy adds exactly that for the columns named `required`, and
forwards every other request, unchanged, to the emulator, so the client under test
talks real gRPC to something that behaves like BigQuery and the rows land in bqemulator.
"""

import queue
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.cloud.bigquery_storage_v1 import types
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.rpc import code_pb2, status_pb2

SERVICE = "google.cloud.bigquery.storage.v1.BigQueryWrite"
APPEND_ROWS = f"/{SERVICE}/AppendRows"
Request = types.AppendRowsRequest.pb()
Response = types.AppendRowsResponse.pb()
RowError = types.RowError.pb()


def _row_class(descriptor: descriptor_pb2.DescriptorProto) -> type:
    file = descriptor_pb2.FileDescriptorProto(name=f"{uuid.uuid4().hex}.proto", syntax="proto2")
    file.message_type.add().CopyFrom(descriptor)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(descriptor.name))


class AppendRowsProxy:
    def __init__(self, upstream: str, *, required: frozenset[str]):
        self.calls = 0  # AppendRows calls opened by clients
        self.requests = 0  # AppendRows requests received
        self._required = required
        self._lock = threading.Lock()
        self._upstream = grpc.insecure_channel(upstream)
        self._append_upstream = self._upstream.stream_stream(
            APPEND_ROWS,
            request_serializer=Request.SerializeToString,
            response_deserializer=Response.FromString,
        )
        self._server = grpc.server(ThreadPoolExecutor(max_workers=8))
        handler = grpc.stream_stream_rpc_method_handler(
            self._append_rows,
            request_deserializer=Request.FromString,
            response_serializer=Response.SerializeToString,
        )
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"AppendRows": handler}),)
        )
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None)
        self._upstream.close()

    def _append_rows(self, requests: Iterator, context: grpc.ServicerContext) -> Iterator:
        with self._lock:
            self.calls += 1
        forwarded: queue.SimpleQueue = queue.SimpleQueue()
        upstream = self._append_upstream(
            iter(forwarded.get, None), metadata=context.invocation_metadata()
        )
        responses = iter(upstream)
        schema, row_class, schema_forwarded = None, None, False
        try:
            for request in requests:
                with self._lock:
                    self.requests += 1
                if request.proto_rows.HasField("writer_schema"):
                    schema = request.proto_rows.writer_schema
                    row_class = _row_class(schema.proto_descriptor)
                assert row_class is not None, "rows before a writer_schema"
                errors = [
                    RowError(
                        index=index,
                        code=RowError.FIELDS_ERROR,
                        message=f"The required field {name} is missing.",
                    )
                    for index, raw in enumerate(request.proto_rows.rows.serialized_rows)
                    for name in sorted(self._required)
                    if not row_class.FromString(raw).HasField(name)
                ]
                if errors:
                    yield Response(
                        write_stream=request.write_stream,
                        error=status_pb2.Status(
                            code=code_pb2.INVALID_ARGUMENT,
                            message="Errors found while processing rows.",
                        ),
                        row_errors=errors,
                    )
                    continue
                if not schema_forwarded and not request.proto_rows.HasField("writer_schema"):
                    # The refused request carried the schema: the emulator needs it first.
                    request.proto_rows.writer_schema.CopyFrom(schema)
                schema_forwarded = True
                forwarded.put(request)
                yield next(responses)
        finally:
            forwarded.put(None)
            upstream.cancel()
