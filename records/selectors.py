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


def records_list(*, limit: int, offset: int) -> list[Record]:
    def page_load() -> list[dict[str, str]]:
        page = [
            r.as_dict() for r in wiring.record_repository().records_list(limit=limit, offset=offset)
        ]
        # A page is as fresh as a point read: prime those, so that a consumer paging
        # through the collection and then fetching details costs no more queries.
        cache_prime(entries={_key("get", r["id"]): r for r in page}, ttl=settings.RECORDS_CACHE_TTL)
        return page

    page = cached(
        key=_key("list", limit, offset),
        kind="list",
        ttl=lambda _: settings.RECORDS_LIST_CACHE_TTL,
        compute=page_load,
    )
    return [Record(**data) for data in page]


def records_count() -> int:
    return cached(
        key=_key("count"),
        kind="count",
        ttl=lambda _: settings.RECORDS_LIST_CACHE_TTL,
        compute=lambda: wiring.record_repository().records_count(),
    )


class RecordSequence:
    """All records ordered by id, as DRF's paginator wants them: `count()` and slicing."""

    def count(self) -> int:
        return records_count()

    def __getitem__(self, window: slice) -> list[Record]:
        return records_list(limit=window.stop - window.start, offset=window.start)
