"""Read-through caching with one warehouse query per key, however many callers miss at once.

Callers that miss together (threads of a process, or processes sharing Redis) elect one
computer with `cache.add`; the others wait, bounded, for what it leaves: its value, or a
short-lived failure marker when the warehouse failed it. A marker fails its waiters at
once, and later callers of the key for RECORDS_FAILURE_CACHE_TTL seconds, without a query
of their own: an outage costs one query per key per marker, not one per caller.

Values must be JSON-able (dicts, lists, strings, numbers, booleans, None): Redis stores
them with django-redis' JSON serializer, never as pickles.
"""

import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache

from records.metrics import CACHE_REQUESTS
from records.repository import WarehouseUnavailable

T = TypeVar("T")

_WAIT_STEP_SECONDS = 0.005


def _failed_key(key: str) -> str:
    return f"{key}:failed"


def _lock_key(key: str) -> str:
    return f"{key}:computing"


def cached(*, key: str, kind: str, ttl: Callable[[T], int], compute: Callable[[], T]) -> T:
    """The value under `key`, computed by `compute` (once) and kept `ttl(value)` seconds.
    Raises WarehouseUnavailable when `compute` did so for this key moments ago."""
    bound = settings.BIGQUERY_TIMEOUT_SECONDS
    deadline = time.monotonic() + bound
    failed, lock = _failed_key(key), _lock_key(key)
    waited = False
    while True:
        # One round trip per step. Values are stored wrapped in a list, so that a cached
        # None (a known miss) is a hit.
        found = cache.get_many([key, failed, lock])
        if key in found:
            CACHE_REQUESTS.labels(kind, "coalesced" if waited else "hit").inc()
            value: T = found[key][0]  # what `compute` returned for this key
            return value
        if failed in found:
            CACHE_REQUESTS.labels(kind, "failed").inc()
            raise WarehouseUnavailable("the warehouse failed this read moments ago")
        # add() is False only when another caller holds the lock; django-redis answers
        # None when Redis is unreachable, and then there is nobody to wait for. A lock
        # that vanished without a value or a marker means its holder died: re-elect.
        if lock not in found and cache.add(lock, 1, timeout=bound) is not False:
            return _compute(key=key, kind=kind, ttl=ttl, compute=compute, holds_lock=True)
        if time.monotonic() >= deadline:
            return _compute(key=key, kind=kind, ttl=ttl, compute=compute, holds_lock=False)
        waited = True
        time.sleep(_WAIT_STEP_SECONDS)


def _compute(
    *, key: str, kind: str, ttl: Callable[[T], int], compute: Callable[[], T], holds_lock: bool
) -> T:
    CACHE_REQUESTS.labels(kind, "miss").inc()
    # The value or the failure marker is stored before the lock goes, so that waiters
    # find one of them rather than an empty slot.
    try:
        value = compute()
        cache.set(key, [value], ttl(value))
        return value
    except WarehouseUnavailable:
        cache.set(_failed_key(key), 1, settings.RECORDS_FAILURE_CACHE_TTL)
        raise
    finally:
        if holds_lock:
            cache.delete(_lock_key(key))


def cache_prime(*, entries: dict[str, object], ttl: int) -> None:
    """Store values computed elsewhere, in the form `cached` reads them."""
    cache.set_many({key: [value] for key, value in entries.items()}, ttl)
