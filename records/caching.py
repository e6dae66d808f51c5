"""Read-through caching with one warehouse query per key, however many callers miss at once.

Threads of a process queue on a striped lock; processes sharing a cache (Redis) elect one
computer with `cache.add` and the others wait, bounded, for its value.
"""

import threading
import time
import zlib
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache

from records.metrics import CACHE_REQUESTS

T = TypeVar("T")

_MISSING = object()
_STRIPES = [threading.Lock() for _ in range(256)]
_WAIT_STEP_SECONDS = 0.01


def _stripe(key: str) -> threading.Lock:
    return _STRIPES[zlib.crc32(key.encode()) % len(_STRIPES)]


def _lock_key(key: str) -> str:
    return f"{key}:computing"


def _lookup(key: str) -> object:
    # Values are stored wrapped in a 1-tuple so that a cached None (a known miss) is a hit.
    wrapped = cache.get(key, _MISSING)
    return wrapped if wrapped is _MISSING else wrapped[0]


def cached(*, key: str, kind: str, ttl: Callable[[T], int], compute: Callable[[], T]) -> T:
    """The value under `key`, computed by `compute` (once) and kept `ttl(value)` seconds."""
    value = _lookup(key)
    if value is not _MISSING:
        CACHE_REQUESTS.labels(kind, "hit").inc()
        return value  # type: ignore[return-value]
    with _stripe(key):
        value = _lookup(key)
        if value is not _MISSING:
            CACHE_REQUESTS.labels(kind, "coalesced").inc()
            return value  # type: ignore[return-value]
        CACHE_REQUESTS.labels(kind, "miss").inc()
        value = _wait_for_other_process(key)
        if value is not _MISSING:
            return value  # type: ignore[return-value]
        try:
            value = compute()
            cache.set(key, (value,), ttl(value))
        finally:
            cache.delete(_lock_key(key))
        return value


def cache_prime(*, entries: dict[str, object], ttl: int) -> None:
    """Store values computed elsewhere, in the form `cached` reads them."""
    cache.set_many({key: (value,) for key, value in entries.items()}, ttl)


def _wait_for_other_process(key: str) -> object:
    """Take the cross-process lock for `key`, or wait (bounded) for whoever holds it."""
    bound = settings.BIGQUERY_TIMEOUT_SECONDS
    # add() is False only when another process holds the lock; django-redis answers None
    # when Redis is unreachable, and then there is nobody to wait for.
    if cache.add(_lock_key(key), 1, timeout=bound) is not False:
        return _MISSING
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        time.sleep(_WAIT_STEP_SECONDS)
        value = _lookup(key)
        if value is not _MISSING:
            return value
    return _MISSING
