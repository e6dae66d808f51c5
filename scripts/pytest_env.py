"""pytest plugin (loaded by `-p` before pytest-django reads settings): a hermetic test
environment. Nothing reaches real Google Cloud: the emulator endpoints point at a closed
port until a fixture starts an emulator, and local `.env` values never leak in."""

import os

os.environ.update(
    {
        "GCP_PROJECT": "latam-test",
        "BIGQUERY_EMULATOR_HOST": "127.0.0.1:9",
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
