"""The test environment, as a pytest plugin (`-p latam.tests.environment` in pyproject.toml):
pytest-django reads the settings before any conftest.py is imported, so this must run
earlier, as a plugin. Hermetic: nothing reaches real Google Cloud (the emulator endpoints
point at a closed port until a fixture starts an emulator) and a local `.env` never
leaks in. Every test of every app runs in it.

mypy loads it as a plugin too (`plugins` in pyproject.toml), for the same reason:
django-stubs imports the settings, which refuse to load outside local development
without a secret key, and would read the developer's own `.env`."""

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy.plugin import Plugin

os.environ.update(
    {
        "GCP_PROJECT": "latam-test",
        "BIGQUERY_EMULATOR_HOST": "127.0.0.1:9",
        "BIGQUERY_EMULATOR_GRPC_HOST": "127.0.0.1:9",
        "PUBSUB_EMULATOR_HOST": "127.0.0.1:9",
        "CACHE_URL": "locmemcache://tests",
        "API_THROTTLE_RATE": "",
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
        "BIGQUERY_TIMEOUT_SECONDS": "5",
        "DJANGO_ENV_FILE": os.devnull,
    }
)
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def plugin(version: str) -> "type[Plugin]":
    """mypy's entry point: pyproject.toml lists this file first among mypy's plugins, so
    that django-stubs' plugin, loaded next, imports the settings in this environment too
    (importing this module is all it takes). It adds nothing to the type check."""
    from mypy.plugin import Plugin

    return Plugin
