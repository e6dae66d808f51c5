"""bqemulator, with its Storage Write API's AppendRows served on the event loop, and no
table copy after each write.

Run as bqemulator itself: `python -m scripts.bqemulator_serial start [its options]`
(scripts/devstack.py does, for `make run`, the test session and the benchmarks).

bqemulator (1.4.0) serves its REST API on an asyncio event loop and AppendRows, a
synchronous generator, on the loop's worker threads (min(32, CPUs + 4) of them). Two
faults follow, both seen with `manage.py run_subscriber` writing on this machine:

- Both use one DuckDB connection, which is not safe across threads: a REST query
  answered while rows are appended failed inside the emulator (IndexError, KeyError), and
  the emulator could hang, REST included.
- A client that dies in the middle of an append (SIGKILL) leaves its worker thread
  waiting for a request that never comes; after ~6 such (2 CPUs) the emulator opens no
  new AppendRows call.

Here AppendRows is the same code as an asynchronous generator: it runs on the loop, one
request at a time with REST requests (as insertAll did), and a call whose client is gone
is cancelled by gRPC like any other.

bqemulator also serves time travel by copying the whole table after every write
(`SnapshotManager.record_change`: `CREATE TABLE … AS SELECT *`, kept for 7 days): a table
grown by appends holds Σ(its sizes) rows, 11.4 GB of RSS at 1 M rows appended 5,000 at a
time, and a long `make run` grows without end. BigQuery's time travel costs no copy per
write and the product never reads `FOR SYSTEM_TIME AS OF`, so a write here publishes its
change event (the emulator's caches follow it) and keeps no copy; BQEMULATOR_TABLE_COPIES=1
keeps them (`make bench-scale --copies` measures what they cost).

Nothing else of the emulator changes.
"""

import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from bqemulator.cli import main
from bqemulator.domain.events import TableDataChanged
from bqemulator.grpc_api import write_servicer
from bqemulator.versioning import snapshots
from google.cloud.bigquery_storage_v1 import types


async def _handle_append_rows(
    self: write_servicer.BigQueryWriteHandler, request_iterator: Any, context: Any
) -> AsyncIterator[bytes]:
    """write_servicer.BigQueryWriteHandler._handle_append_rows, line for line, with
    `async for` over the requests."""
    bound_ctx = None
    proto_decoder = None
    arrow_schema_bytes = None
    max_request_bytes = self._ctx.settings.write_api_max_request_bytes
    max_buffered_rows = self._ctx.settings.write_api_max_stream_rows
    async for request_bytes in request_iterator:
        if len(request_bytes) > max_request_bytes:
            yield write_servicer._oversize_error_response(
                request_bytes_len=len(request_bytes),
                max_bytes=max_request_bytes,
                bound_ctx=bound_ctx,
            )
            continue
        request = types.AppendRowsRequest.deserialize(request_bytes)
        bound_ctx = self._ensure_stream_bound(request.write_stream, bound_ctx, context)
        if bound_ctx is None:
            return
        bound_stream, target_schema = bound_ctx
        try:
            rows_table, proto_decoder, arrow_schema_bytes = write_servicer._rows_for_request(
                request, proto_decoder, arrow_schema_bytes, target_schema
            )
        except ValueError as exc:
            yield write_servicer._error_response(bound_stream.name, str(exc))
            continue
        offset = int(request.offset) if write_servicer._has_offset(request) else None
        yield self._perform_append(bound_stream, rows_table, offset, max_buffered_rows)


write_servicer.BigQueryWriteHandler._handle_append_rows = _handle_append_rows  # type: ignore[assignment,method-assign]


def _record_change(
    self: snapshots.SnapshotManager, project_id: str, dataset_id: str, table_id: str
) -> None:
    """SnapshotManager.record_change without the table copy: the change event only."""
    self._events.publish(TableDataChanged(project_id, dataset_id, table_id))


if os.environ.get("BQEMULATOR_TABLE_COPIES") != "1":
    snapshots.SnapshotManager.record_change = _record_change  # type: ignore[assignment,method-assign]

if __name__ == "__main__":
    sys.argv[0] = "bqemulator"
    sys.exit(main())
