"""Caching of reads: what is cached, for how long, and one query per concurrent miss."""

import pickle
import threading
import time

import pytest
from django.core.cache import cache
from django_redis.serializers.json import JSONSerializer

from records import selectors
from records.caching import cached
from records.entities import Record
from records.repository import WarehouseUnavailable

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
    monkeypatch.setattr(cache, "set", lambda key, value, timeout: recorded.setdefault(key, timeout))

    selectors.record_get(record_id="a-1")
    selectors.record_get(record_id="missing")

    assert recorded == {
        selectors._key("get", "a-1"): settings.RECORDS_CACHE_TTL,
        selectors._key("get", "missing"): settings.RECORDS_MISS_CACHE_TTL,
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


def slow_failing_gets(repository, monkeypatch, *, seconds: float) -> None:
    """Make the warehouse fail each point read after `seconds`, as a timeout would."""
    original = repository.record_get

    def slow_get(*, record_id):
        time.sleep(seconds)
        return original(record_id=record_id)

    monkeypatch.setattr(repository, "record_get", slow_get)
    repository.unavailable = True


def test_concurrent_misses_during_an_outage_cost_one_query_and_fail_promptly(
    repository, monkeypatch, settings
):
    slow_failing_gets(repository, monkeypatch, seconds=0.2)
    outcomes = []

    def call() -> None:
        started = time.monotonic()
        try:
            selectors.record_get(record_id="a-1")
            outcomes.append(("answered", time.monotonic() - started))
        except WarehouseUnavailable:
            outcomes.append(("unavailable", time.monotonic() - started))

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert repository.calls["get"] == 1
    assert [outcome for outcome, _ in outcomes] == ["unavailable"] * 5
    # Waiters stop when the computer gives up, not at the bound.
    assert max(elapsed for _, elapsed in outcomes) < settings.BIGQUERY_TIMEOUT_SECONDS / 5


def test_a_failure_is_shared_briefly_then_the_warehouse_is_asked_again(repository, settings):
    settings.RECORDS_FAILURE_CACHE_TTL = 1
    repository.unavailable = True
    with pytest.raises(WarehouseUnavailable):
        selectors.record_get(record_id="a-1")
    repository.unavailable = False

    with pytest.raises(WarehouseUnavailable):
        selectors.record_get(record_id="a-1")  # the failure marker still stands
    assert repository.calls["get"] == 1
    time.sleep(1.1)

    assert selectors.record_get(record_id="a-1") == ANA
    assert repository.calls["get"] == 2


def test_a_waiter_stops_when_the_computer_leaves_without_a_value():
    # Another process took the lock and died (or failed with a bug): nothing to wait for.
    cache.add("k:computing", 1, timeout=5)
    threading.Timer(0.1, lambda: cache.delete("k:computing")).start()
    started = time.monotonic()

    value = cached(key="k", kind="get", ttl=lambda _: 60, compute=lambda: "mine")

    assert value == "mine"
    assert time.monotonic() - started < 1


def test_selectors_read_back_what_the_json_serializer_stores(repository, monkeypatch):
    # Every value goes through django-redis' JSON serializer, as it does with Redis.
    serializer = JSONSerializer({})
    original_set, original_set_many = cache.set, cache.set_many

    def json_set(key, value, *args, **kwargs):
        original_set(key, serializer.loads(serializer.dumps(value)), *args, **kwargs)

    def json_set_many(entries, *args, **kwargs):
        original_set_many(
            {key: serializer.loads(serializer.dumps(value)) for key, value in entries.items()},
            *args,
            **kwargs,
        )

    monkeypatch.setattr(cache, "set", json_set)
    monkeypatch.setattr(cache, "set_many", json_set_many)
    selectors.records_list(limit=10, offset=0)
    selectors.records_count()
    selectors.record_get(record_id="missing")

    answers = (
        selectors.records_list(limit=10, offset=0),
        selectors.records_count(),
        selectors.record_get(record_id="a-1"),
        selectors.record_get(record_id="missing"),
    )

    assert answers == ([ANA], 1, ANA, None)
    assert dict(repository.calls) == {"list": 1, "count": 1, "get": 1}


def test_the_json_serializer_refuses_a_pickle_payload():
    payload = pickle.dumps((ANA,))

    with pytest.raises(ValueError):
        JSONSerializer({}).loads(payload)


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


def test_the_count_is_kept_for_its_own_longer_ttl(repository, settings, monkeypatch):
    recorded = {}
    monkeypatch.setattr(
        cache, "set", lambda key, value, timeout, **_: recorded.setdefault(key, timeout)
    )

    selectors.records_count()
    selectors.records_list(limit=10, offset=0)

    assert recorded[selectors._key("count")] == settings.RECORDS_COUNT_CACHE_TTL == 300
    assert recorded[selectors._key("list", 10, 0)] == settings.RECORDS_LIST_CACHE_TTL == 10


def test_cursor_pages_are_cached_and_prime_point_reads(repository):
    for _ in range(3):
        assert selectors.records_list(limit=10, after="a-0") == [ANA]

    assert selectors.record_get(record_id="a-1") == ANA
    assert (repository.calls["list"], repository.calls["get"]) == (1, 0)


def test_a_cursor_page_and_an_offset_page_are_different_keys(repository):
    selectors.records_list(limit=10, offset=0)
    selectors.records_list(limit=10, after="0")

    assert repository.calls["list"] == 2
