"""The records repository: a small protocol and its BigQuery implementation.

Reads see one row per id, the latest `published_at` (then `ingested_at`) winning, so
rewrites and redeliveries never show twice. All values travel as query parameters; only
identifiers checked at construction are part of the SQL text.
"""

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import requests
from google.api_core import exceptions as google_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud import bigquery
from google.cloud.bigquery.table import Row
from google.cloud.bigquery_storage_v1 import BigQueryWriteClient

from records.entities import Record, StoredRecord
from records.metrics import WAREHOUSE_BYTES_PROCESSED, WAREHOUSE_LATENCY, WAREHOUSE_QUERIES
from records.storage_write import MAX_IDLE_SECONDS, AppendRowsWriter, rows_serialize

logger = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA = [
    bigquery.SchemaField("id", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("nombre", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("apellido", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("pais", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("message_id", "STRING", description="Pub/Sub message id, if any"),
    bigquery.SchemaField("published_at", "TIMESTAMP", mode="REQUIRED"),
    bigquery.SchemaField("ingested_at", "TIMESTAMP", mode="REQUIRED"),
]
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.\-]{1,1024}$")
# The failures that mean "the warehouse cannot answer now": callers turn them into 503s
# (API) or retries (ingestion). Anything else is a bug and propagates.
_WAREHOUSE_FAILURES = (
    google_exceptions.GoogleAPIError,
    auth_exceptions.GoogleAuthError,
    requests.RequestException,
    TimeoutError,
    ConnectionError,
)


# Failures that need an operator, not time: the credentials lack a permission, or the
# dataset or table is missing. Writers hold their rows and alert; they never drop them.
PERMANENT_REASONS = frozenset({"denied", "missing"})
# BigQuery answers 403 for quotas and rate limits too: those pass.
_TRANSIENT_FORBIDDEN = frozenset({"quotaExceeded", "rateLimitExceeded"})
# A query whose bytes would exceed its maximum_bytes_billed, refused without charge: a 400
# from jobs.query, or a failed job (which the client raises as a 500).
_COST_REFUSED = "bytesBilledLimitExceeded"
# Logged once per such refusal (WARNING, `operation` and `reason` only); a Terraform
# log-based metric counts it and alerts (docs/runbooks/api-query-cost.md).
COST_REFUSED_LOG = "warehouse query refused for its cost"


class WarehouseUnavailable(Exception):
    """The warehouse cannot serve the call now: down, too slow, or refusing it.
    `reason` is `unavailable` or `quota` (it passes), `denied` or `missing` (permanent), or
    `cost` (a read query over its bytes bound: the API's own alert, not a writer's)."""

    def __init__(self, message: str, *, reason: str = "unavailable"):
        super().__init__(message)
        self.reason = reason

    @property
    def permanent(self) -> bool:
        return self.reason in PERMANENT_REASONS


class WarehouseRequestRefused(WarehouseUnavailable):
    """A write request refused as a whole (invalid, or over the request size limit): some
    of its rows are at fault, not the warehouse."""


def _failure(operation: str, error: Exception) -> WarehouseUnavailable:
    """The WarehouseUnavailable that a client, transport or auth failure means."""
    message = f"warehouse {operation} failed"
    code = getattr(error, "code", None)
    details = getattr(error, "errors", None) or ()
    if _COST_REFUSED in {item.get("reason") for item in details if isinstance(item, dict)}:
        return WarehouseUnavailable(message, reason="cost")
    if isinstance(error, google_exceptions.BadRequest) or code == 413:
        return WarehouseRequestRefused(message, reason="request_refused")
    if isinstance(error, google_exceptions.NotFound):
        return WarehouseUnavailable(message, reason="missing")
    if isinstance(error, google_exceptions.Forbidden):
        reasons = {item.get("reason") for item in error.errors if isinstance(item, dict)}
        transient = reasons & _TRANSIENT_FORBIDDEN
        return WarehouseUnavailable(message, reason="quota" if transient else "denied")
    if isinstance(error, google_exceptions.Unauthorized) or (
        isinstance(error, auth_exceptions.GoogleAuthError)
        and not isinstance(error, auth_exceptions.TransportError)
    ):
        return WarehouseUnavailable(message, reason="denied")
    return WarehouseUnavailable(message)


class RecordRepository(Protocol):
    table_id: str  # project.dataset.table: what it reads and writes

    def record_get(self, *, record_id: str) -> Record | None: ...

    def records_list(
        self, *, limit: int, offset: int = 0, after: str | None = None
    ) -> list[Record]:
        """Up to `limit` records ordered by id: from the `offset`-th, or (keyset) those whose
        id is greater than `after`. Raise ValueError when given both."""
        ...

    def records_count(self) -> int: ...

    def records_insert(self, *, rows: Sequence[StoredRecord]) -> dict[int, str]:
        """Write rows; return the index → reason of each row the warehouse refused.
        Raise WarehouseRequestRefused when it refuses the request as a whole."""
        ...

    def warehouse_ping(self) -> None:
        """Raise WarehouseUnavailable unless the table answers."""
        ...

    def table_ensure(self, *, location: str) -> bool:
        """Create the dataset and the table if missing; True when the table was created."""
        ...


class BigQueryRecordRepository:
    def __init__(
        self,
        *,
        client: bigquery.Client,
        project: str,
        dataset: str,
        table: str,
        timeout: float,
        max_bytes_billed: int | None = None,
        write_client: Callable[[], BigQueryWriteClient],
        append_stream_max_idle_seconds: float = MAX_IDLE_SECONDS,
    ):
        """`write_client` builds the Storage Write API's client, at the first write (the
        API's processes never write); `client` serves queries and table management."""
        for identifier in (project, dataset, table):
            if not _IDENTIFIER.match(identifier):
                raise ValueError(f"invalid BigQuery identifier: {identifier!r}")
        self._client = client
        self._dataset_id = f"{project}.{dataset}"
        self.table_id = f"{project}.{dataset}.{table}"
        self._timeout = timeout
        # Retries stop at the deadline so that one call is bounded as a whole.
        self._retry = bigquery.DEFAULT_RETRY.with_deadline(timeout)
        self._max_bytes_billed = max_bytes_billed or None  # None, or 0: no bound
        # Writes: AppendRows on the table's default stream (the Storage Write API).
        self._writer = AppendRowsWriter(
            client=write_client,
            project=project,
            dataset=dataset,
            table=table,
            max_idle_seconds=append_stream_max_idle_seconds,
        )
        table_sql = f"`{self.table_id}`"
        columns = "SELECT id, nombre, apellido, pais"
        latest = (
            "QUALIFY ROW_NUMBER() OVER "
            "(PARTITION BY id ORDER BY published_at DESC, ingested_at DESC) = 1"
        )
        # Only the checked table identifier is formatted in; values are @parameters.
        self._sql_get = (
            f"{columns} FROM {table_sql} WHERE id = @id "
            "ORDER BY published_at DESC, ingested_at DESC LIMIT 1"
        )
        self._sql_list = (
            f"{columns} FROM {table_sql} {latest} ORDER BY id LIMIT @limit OFFSET @offset"
        )
        # Keyset: the table is clustered on id, so BigQuery skips the blocks before @after.
        self._sql_list_after = (
            f"{columns} FROM {table_sql} WHERE id > @after {latest} ORDER BY id LIMIT @limit"
        )
        self._sql_count = f"SELECT COUNT(DISTINCT id) AS total FROM {table_sql}"  # noqa: S608

    @contextmanager
    def _call(self, operation: str) -> Iterator[None]:
        started = time.perf_counter()
        outcome = "error"
        try:
            yield
            outcome = "ok"
        except _WAREHOUSE_FAILURES as error:
            failure = _failure(operation, error)
            if failure.reason == "cost":
                outcome = "cost_refused"
                logger.warning(
                    COST_REFUSED_LOG, extra={"operation": operation, "reason": failure.reason}
                )
            else:
                logger.warning(
                    "warehouse call failed",
                    extra={
                        "operation": operation,
                        "error_type": type(error).__name__,
                        "reason": failure.reason,
                    },
                )
            raise failure from error
        finally:
            WAREHOUSE_QUERIES.labels(operation, outcome).inc()
            WAREHOUSE_LATENCY.labels(operation).observe(time.perf_counter() - started)

    def _query(
        self,
        operation: str,
        sql: str,
        params: list[bigquery.ScalarQueryParameter],
        convert: Callable[[list[Row]], T],
    ) -> T:
        with self._call(operation):
            rows = self._client.query_and_wait(
                sql,
                job_config=bigquery.QueryJobConfig(
                    query_parameters=params,
                    use_query_cache=True,
                    # Over it, refused without charge (reason cost). BigQuery checks its
                    # estimate, which on a clustered table is before pruning: the bytes of
                    # the columns read, in every row.
                    maximum_bytes_billed=self._max_bytes_billed,
                    # The job ends with the call's bound rather than running on unread.
                    job_timeout_ms=int(self._timeout * 1000),
                ),
                api_timeout=self._timeout,
                wait_timeout=self._timeout,
                retry=self._retry,
                # None turns job retries off, as documented; the annotation omits None.
                job_retry=None,  # type: ignore[arg-type]
            )
            WAREHOUSE_BYTES_PROCESSED.labels(operation).inc(rows.total_bytes_processed or 0)
            return convert(list(rows))

    def record_get(self, *, record_id: str) -> Record | None:
        params = [bigquery.ScalarQueryParameter("id", "STRING", record_id)]
        rows = self._query("get", self._sql_get, params, _records_from_rows)
        return rows[0] if rows else None

    def records_list(
        self, *, limit: int, offset: int = 0, after: str | None = None
    ) -> list[Record]:
        limit_param = bigquery.ScalarQueryParameter("limit", "INT64", limit)
        if after is None:
            params = [limit_param, bigquery.ScalarQueryParameter("offset", "INT64", offset)]
            return self._query("list", self._sql_list, params, _records_from_rows)
        if offset:
            raise ValueError("records_list takes an offset or a cursor (after), not both")
        params = [limit_param, bigquery.ScalarQueryParameter("after", "STRING", after)]
        return self._query("list_after", self._sql_list_after, params, _records_from_rows)

    def records_count(self) -> int:
        return self._query("count", self._sql_count, [], lambda rows: int(rows[0]["total"]))

    def records_insert(self, *, rows: Sequence[StoredRecord]) -> dict[int, str]:
        """One AppendRows request (records/storage_write.py), answered before this returns:
        the rows are committed then. Rows the table refuses come back by index (BigQuery
        writes none of a request with such rows: the others are sent again, alone)."""
        if not rows:
            return {}
        serialized = rows_serialize(rows, ingested_at=datetime.now(UTC))
        with self._call("insert"):
            return self._writer.append(serialized, timeout=self._timeout)

    def close(self) -> None:
        """End the write streams held open (the next write opens one again)."""
        self._writer.close()

    def warehouse_ping(self) -> None:
        with self._call("ping"):
            self._client.get_table(self.table_id, timeout=self._timeout, retry=self._retry)

    def table_ensure(self, *, location: str) -> bool:
        """Create the dataset and the table if missing; True when the table was created."""
        with self._call("bootstrap"):
            dataset = bigquery.Dataset(self._dataset_id)
            dataset.location = location
            self._client.create_dataset(dataset, exists_ok=True, timeout=self._timeout)
            try:
                self._client.get_table(self.table_id, timeout=self._timeout)
                return False
            except google_exceptions.NotFound:
                table = bigquery.Table(self.table_id, schema=SCHEMA)
                table.clustering_fields = ["id"]
                self._client.create_table(table, exists_ok=True, timeout=self._timeout)
                return True


def _records_from_rows(rows: list[Row]) -> list[Record]:
    return [
        Record(id=row["id"], nombre=row["nombre"], apellido=row["apellido"], pais=row["pais"])
        for row in rows
    ]
