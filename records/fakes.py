"""An in-memory RecordRepository for unit tests: same contract, no warehouse."""

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from records.entities import Record, StoredRecord
from records.repository import WarehouseUnavailable


class InMemoryRecordRepository:
    def __init__(self, records: Sequence[Record] = ()):
        self._rows: dict[str, StoredRecord] = {}
        self.calls: Counter[str] = Counter()
        self.unavailable = False
        self.rejected_ids: set[str] = set()
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

    def records_list(self, *, limit: int, offset: int) -> list[Record]:
        self._enter("list")
        ordered = sorted(self._rows)
        return [self._rows[key].record for key in ordered[offset : offset + limit]]

    def records_count(self) -> int:
        self._enter("count")
        return len(self._rows)

    def records_insert(self, *, rows: Sequence[StoredRecord]) -> dict[int, str]:
        self._enter("insert")
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
