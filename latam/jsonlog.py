"""The JSON log format Cloud Logging reads (`severity`, `message`), shared by Django's
LOGGING and gunicorn's own logs. No Django import: gunicorn loads it before the app."""

import logging
import threading
import time

from pythonjsonlogger.json import JsonFormatter


def cloud_logging_formatter() -> logging.Formatter:
    return JsonFormatter(
        "{levelname}{message}{name}",
        style="{",
        rename_fields={"levelname": "severity", "name": "logger"},
        timestamp="time",
    )


class GunicornRequestRedactor(logging.Filter):
    """gunicorn's own lines about a request quote what the client sent (the method, the
    request line, the path with its record id): keep that the request was refused or
    failed, not what it said."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("Invalid request from"):
            record.msg, record.args = "invalid request refused by gunicorn", ()
        elif message.startswith("Error handling request"):
            record.msg, record.args = "error handling a request", ()
        return True


class Throttle(logging.Filter):
    """One record per `seconds` for each logger and message, the next one saying how many
    were held back (`suppressed`): a dependency failing on every call, such as Redis down
    under load (django-redis logs each call it ignores, with its traceback), writes a line
    every few seconds instead of thousands."""

    def __init__(self, seconds: float = 10.0):
        super().__init__()
        self.seconds = seconds
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key, now = (record.name, str(record.msg)), time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.seconds:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
        if held:
            record.suppressed = held
        return True
