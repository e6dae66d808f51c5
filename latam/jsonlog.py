"""The JSON log format Cloud Logging reads (`severity`, `message`), shared by Django's
LOGGING and gunicorn's own logs. No Django import: gunicorn loads it before the app."""

import logging

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
