"""A dependency failing on every call logs a line every few seconds, not one per call."""

import logging
import logging.config

import pytest
from django.conf import settings

from latam import jsonlog
from latam.jsonlog import Throttle


def _record(message: str = "Exception ignored", name: str = "django_redis.cache"):
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, (), None)


def test_one_record_per_period_then_the_count_held_back(monkeypatch: pytest.MonkeyPatch):
    now = [100.0]
    monkeypatch.setattr(jsonlog.time, "monotonic", lambda: now[0])
    throttle = Throttle(seconds=10)
    assert throttle.filter(_record())
    passed = [throttle.filter(_record()) for _ in range(500)]
    assert not any(passed)
    now[0] += 10
    after = _record()
    assert throttle.filter(after)
    assert after.suppressed == 500  # type: ignore[attr-defined]
    # Each message (and logger) has its own period.
    assert throttle.filter(_record("another failure"))
    assert throttle.filter(_record(name="other.logger"))


def test_a_quiet_period_starts_afresh(monkeypatch: pytest.MonkeyPatch):
    now = [0.0]
    monkeypatch.setattr(jsonlog.time, "monotonic", lambda: now[0])
    throttle = Throttle(seconds=10)
    assert throttle.filter(_record())
    now[0] += 60
    record = _record()
    assert throttle.filter(record)
    assert not hasattr(record, "suppressed")


def test_the_redis_cache_logger_is_throttled():
    logger_config = settings.LOGGING["loggers"]["django_redis.cache"]
    assert logger_config["filters"] == ["throttle"]
    assert settings.LOGGING["filters"]["throttle"]["()"] == "latam.jsonlog.Throttle"
    logging.config.dictConfig(settings.LOGGING)
    filters = logging.getLogger("django_redis.cache").filters
    assert any(isinstance(f, Throttle) for f in filters)
