"""An in-memory RecordRepository for unit tests: same contract, no warehouse."""

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from records.entities import Record, StoredRecord
from records.repository import RecordRepository, WarehouseRequestRefused, WarehouseUnavailable


class InMemoryRecordRepository:
    table_id = "in-memory.latam.records"

    def __init__(self, records: Sequence[Record] = ()):
        self._rows: dict[str, StoredRecord] = {}
        self._table_exists = False
        self.calls: Counter[str] = Counter()
        self.unavailable = False
        # Writes only: what inserts raise (e.g. a permission refused) while reads work.
        self.insert_failure: WarehouseUnavailable | None = None
        self.rejected_ids: set[str] = set()  # rows refused one by one
        self.request_refusing_ids: set[str] = set()  # rows that get a whole request refused
        self.add(records)

    def add(self, records: Sequence[Record]) -> None:
        """Store records as if published now (test arrangement; not counted as a call)."""
        now = datetime.now(UTC)
        for record in records:
            self._rows[record.id] = StoredRecord(record=record, published_at=now)

    def _enter(self, operation: str) -> None:
        self.calls[operation] += 1
        if self.unavailable:
            raise WarehouseUnavailable(f"warehouse {operation} failed")

    def record_get(self, *, record_id: str) -> Record | None:
        self._enter("get")
        row = self._rows.get(record_id)
        return row.record if row else None

    def records_list(
        self, *, limit: int, offset: int = 0, after: str | None = None
    ) -> list[Record]:
        if after is not None and offset:
            raise ValueError("records_list takes an offset or a cursor (after), not both")
        self._enter("list")
        # Code point order is UTF-8 byte order: BigQuery's order of STRING values.
        ordered = sorted(key for key in self._rows if after is None or key > after)
        return [self._rows[key].record for key in ordered[offset : offset + limit]]

    def records_count(self) -> int:
        self._enter("count")
        return len(self._rows)

    def records_insert(self, *, rows: Sequence[StoredRecord]) -> dict[int, str]:
        self._enter("insert")
        if self.insert_failure is not None:
            raise self.insert_failure
        if any(row.record.id in self.request_refusing_ids for row in rows):
            raise WarehouseRequestRefused("warehouse insert failed", reason="request_refused")
        refused = {}
        for index, row in enumerate(rows):
            if row.record.id in self.rejected_ids:
                refused[index] = "invalid"
                continue
            current = self._rows.get(row.record.id)
            if current is None or row.published_at >= current.published_at:
                self._rows[row.record.id] = row
        return refused

    def warehouse_ping(self) -> None:
        self._enter("ping")

    def table_ensure(self, *, location: str) -> bool:
        self._enter("bootstrap")
        created, self._table_exists = not self._table_exists, True
        return created


if TYPE_CHECKING:
    # The type checker proves that the fake stands in for the real repository: every
    # protocol member, same signatures (mypy reads this; it never runs).
    def _implements_the_protocol(fake: InMemoryRecordRepository) -> RecordRepository:
        return fake
