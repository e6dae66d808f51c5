"""The Google Cloud client factories (latam/clients.py): options taken from settings."""

import google.auth
import pytest
from google.auth.credentials import AnonymousCredentials

from latam.clients import bigquery_client, clients_reset


@pytest.fixture(params=["emulator", "cloud"])
def endpoint(request, settings, monkeypatch):
    if request.param == "emulator":
        settings.BIGQUERY_EMULATOR_HOST = "127.0.0.1:9"  # nothing is called
    else:
        settings.BIGQUERY_EMULATOR_HOST = ""
        # Application Default Credentials, without a machine that has them.
        monkeypatch.setattr(
            google.auth, "default", lambda *args, **kwargs: (AnonymousCredentials(), "p")
        )
    clients_reset()
    return request.param


def test_short_query_mode_lets_bigquery_answer_without_creating_a_job(settings, endpoint):
    settings.BIGQUERY_SHORT_QUERY_MODE = True

    assert bigquery_client().default_job_creation_mode == "JOB_CREATION_OPTIONAL"


def test_without_short_query_mode_the_client_keeps_its_default(settings, endpoint):
    settings.BIGQUERY_SHORT_QUERY_MODE = False

    assert bigquery_client().default_job_creation_mode is None
