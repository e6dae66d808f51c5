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
