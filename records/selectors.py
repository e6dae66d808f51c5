"""Cached reads of records: what the views call. Staleness bounds are in settings."""

import hashlib

from django.conf import settings

from records import wiring
from records.caching import cache_prime, cached
from records.entities import Record


def _key(*parts: object) -> str:
    table = wiring.record_repository().table_id
    digest = hashlib.sha256("\x1f".join(map(str, (table, *parts))).encode()).hexdigest()
    return f"records:{parts[0]}:{digest[:40]}"


# The cache holds JSON-able data (see records.caching): a record as its dict, rebuilt here.
def _record_data(record: Record | None) -> dict[str, str] | None:
    return None if record is None else record.as_dict()


def _record(data: dict[str, str] | None) -> Record | None:
    return None if data is None else Record(**data)


def record_get(*, record_id: str) -> Record | None:
    data = cached(
        key=_key("get", record_id),
        kind="get",
        ttl=lambda found: settings.RECORDS_CACHE_TTL if found else settings.RECORDS_MISS_CACHE_TTL,
        compute=lambda: _record_data(wiring.record_repository().record_get(record_id=record_id)),
    )
    return _record(data)


def records_list(*, limit: int, offset: int = 0, after: str | None = None) -> list[Record]:
    """A page by offset, or (keyset) the records whose id follows `after`: each its own key,
    kept RECORDS_LIST_CACHE_TTL seconds."""

    def page_load() -> list[dict[str, str]]:
        records = wiring.record_repository().records_list(limit=limit, offset=offset, after=after)
        page = [r.as_dict() for r in records]
        # A page is as fresh as a point read: prime those, so that a consumer paging
        # through the collection and then fetching details costs no more queries.
        cache_prime(entries={_key("get", r["id"]): r for r in page}, ttl=settings.RECORDS_CACHE_TTL)
        return page

    page = cached(
        key=_key("list", limit, offset) if after is None else _key("list_after", limit, after),
        kind="list",
        ttl=lambda _: settings.RECORDS_LIST_CACHE_TTL,
        compute=page_load,
    )
    return [Record(**data) for data in page]


def records_count() -> int:
    """COUNT(DISTINCT id) reads the id of every row: one key, whatever the page, kept
    RECORDS_COUNT_CACHE_TTL seconds (longer than pages)."""
    return cached(
        key=_key("count"),
        kind="count",
        ttl=lambda _: settings.RECORDS_COUNT_CACHE_TTL,
        compute=lambda: wiring.record_repository().records_count(),
    )


class RecordSequence:
    """All records ordered by id, as the paginator wants them: `count()`, slicing (offset
    pages) and `after()` (keyset pages)."""

    def count(self) -> int:
        return records_count()

    def __getitem__(self, window: slice) -> list[Record]:
        return records_list(limit=window.stop - window.start, offset=window.start)

    def after(self, record_id: str, *, limit: int) -> tuple[list[Record], bool]:
        # One record more than the page tells whether another page follows (same bytes).
        page = records_list(limit=limit + 1, after=record_id)
        return page[:limit], len(page) > limit
