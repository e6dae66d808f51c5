"""Where the read and write sides get their warehouse: built once per process, lazily
(never at import: gunicorn forks after importing the app), from settings.

Every entry point — views through the selectors, the probes, `seed`, `bootstrap`, the
subscriber — asks `record_repository()`; tests replace it with the in-memory one.
"""

import functools

from django.conf import settings

from latam.clients import bigquery_client, bigquery_write_client
from records.repository import BigQueryRecordRepository, RecordRepository


@functools.cache
def record_repository() -> RecordRepository:
    return BigQueryRecordRepository(
        client=bigquery_client(),
        write_client=bigquery_write_client,  # built at the first write only
        project=settings.GCP_PROJECT,
        dataset=settings.BIGQUERY_DATASET,
        table=settings.BIGQUERY_TABLE,
        timeout=settings.BIGQUERY_TIMEOUT_SECONDS,
        max_bytes_billed=settings.BIGQUERY_MAX_BYTES_BILLED,
    )
