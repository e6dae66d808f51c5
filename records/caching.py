"""Read-through caching with one warehouse query per key, however many callers miss at once.

Callers that miss together (threads of a process, or processes sharing Redis) elect one
computer with `cache.add`; the others wait, bounded, for the value it stores.
"""

import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache

from records.metrics import CACHE_REQUESTS

T = TypeVar("T")

_MISSING = object()
_WAIT_STEP_SECONDS = 0.005


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
    value = _wait_for_other_caller(key)
    if value is not _MISSING:
        CACHE_REQUESTS.labels(kind, "coalesced").inc()
        return value  # type: ignore[return-value]
    CACHE_REQUESTS.labels(kind, "miss").inc()
    try:
        value = compute()
        cache.set(key, (value,), ttl(value))
    finally:
        cache.delete(_lock_key(key))
    return value


def cache_prime(*, entries: dict[str, object], ttl: int) -> None:
    """Store values computed elsewhere, in the form `cached` reads them."""
    cache.set_many({key: (value,) for key, value in entries.items()}, ttl)


def _wait_for_other_caller(key: str) -> object:
    """Take the compute lock for `key`, or wait (bounded) for whoever holds it."""
    bound = settings.BIGQUERY_TIMEOUT_SECONDS
    # add() is False only when another caller holds the lock; django-redis answers None
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
