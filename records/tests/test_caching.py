"""Caching of reads: what is cached, for how long, and one query per concurrent miss."""

import threading
import time

import pytest
from django.core.cache import cache

from records import selectors
from records.caching import cached
from records.entities import Record

ANA = Record(id="a-1", nombre="Ana", apellido="Gómez", pais="Perú")


@pytest.fixture
def repository(fake_repository):
    fake_repository.add([ANA])
    return fake_repository


def test_point_reads_are_cached(repository):
    assert selectors.record_get(record_id="a-1") == ANA
    assert selectors.record_get(record_id="a-1") == ANA

    assert repository.calls["get"] == 1


def test_misses_are_cached_too(repository):
    assert selectors.record_get(record_id="missing") is None
    assert selectors.record_get(record_id="missing") is None

    assert repository.calls["get"] == 1


def test_misses_are_cached_for_less_time_than_hits(repository, settings, monkeypatch):
    recorded = {}
    monkeypatch.setattr(
        cache, "set", lambda key, value, timeout: recorded.setdefault(value, timeout)
    )

    selectors.record_get(record_id="a-1")
    selectors.record_get(record_id="missing")

    assert recorded == {
        (ANA,): settings.RECORDS_CACHE_TTL,
        (None,): settings.RECORDS_MISS_CACHE_TTL,
    }
    assert settings.RECORDS_MISS_CACHE_TTL < settings.RECORDS_CACHE_TTL


def test_list_pages_and_count_are_cached(repository):
    for _ in range(3):
        assert selectors.records_list(limit=10, offset=0) == [ANA]
        assert selectors.records_count() == 1

    assert (repository.calls["list"], repository.calls["count"]) == (1, 1)


def test_a_list_page_primes_point_reads_of_its_records(repository):
    selectors.records_list(limit=10, offset=0)

    assert selectors.record_get(record_id="a-1") == ANA
    assert repository.calls["get"] == 0


def test_different_pages_are_different_keys(repository):
    selectors.records_list(limit=10, offset=0)
    selectors.records_list(limit=10, offset=1)

    assert repository.calls["list"] == 2


def test_entries_expire(repository, settings):
    settings.RECORDS_CACHE_TTL = 1
    selectors.record_get(record_id="a-1")
    time.sleep(1.1)

    selectors.record_get(record_id="a-1")

    assert repository.calls["get"] == 2


def test_concurrent_misses_for_one_key_cost_one_query(repository, monkeypatch):
    original = repository.record_get

    def slow_get(*, record_id):
        time.sleep(0.2)
        return original(record_id=record_id)

    monkeypatch.setattr(repository, "record_get", slow_get)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(selectors.record_get(record_id="a-1")))
        for _ in range(16)
    ]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [ANA] * 16
    assert repository.calls["get"] == 1


def test_a_waiter_takes_the_value_another_process_computes():
    # Another process holds the compute lock (as it would through Redis) and then stores.
    cache.add("k:computing", 1, timeout=5)
    threading.Timer(0.1, lambda: cache.set("k", ("theirs",), 60)).start()

    value = cached(key="k", kind="get", ttl=lambda _: 60, compute=lambda: "mine")

    assert value == "theirs"


def test_failures_are_not_cached_and_release_the_lock(repository):
    repository.unavailable = True
    with pytest.raises(Exception, match="warehouse"):
        selectors.record_get(record_id="a-1")
    repository.unavailable = False

    assert selectors.record_get(record_id="a-1") == ANA
    assert repository.calls["get"] == 2


def test_a_redis_outage_degrades_to_the_warehouse(client, repository, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens there
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    settings.DJANGO_REDIS_IGNORE_EXCEPTIONS = True
    started = time.monotonic()

    response = client.get("/records/a-1")

    assert time.monotonic() - started < 2  # no waiting for a lock nobody can hold
    assert response.status_code == 200
    assert response.json() == ANA.as_dict()
    assert repository.calls["get"] == 1
