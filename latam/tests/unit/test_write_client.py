"""The Storage Write API's client factory (latam/clients.py): built lazily, once, from
settings, on the channel the writes need."""

import google.auth
from google.auth.credentials import AnonymousCredentials
from google.cloud.bigquery_storage_v1.services.big_query_write.transports import (
    BigQueryWriteGrpcTransport,
)

from latam.clients import bigquery_write_client, clients_reset

RECONNECT = {"grpc.initial_reconnect_backoff_ms": 500, "grpc.max_reconnect_backoff_ms": 1000}


def test_on_the_emulator_the_client_talks_grpc_to_its_grpc_port(settings):
    settings.BIGQUERY_EMULATOR_HOST = "127.0.0.1:9"
    settings.BIGQUERY_EMULATOR_GRPC_HOST = "127.0.0.1:9"  # nothing is called
    clients_reset()

    client = bigquery_write_client()

    assert isinstance(client.transport, BigQueryWriteGrpcTransport)
    assert bigquery_write_client() is client  # once per process


def test_in_the_cloud_the_client_uses_bigquerys_channel_with_a_short_reconnect(
    settings, monkeypatch
):
    settings.BIGQUERY_EMULATOR_HOST = ""
    monkeypatch.setattr(
        google.auth, "default", lambda *args, **kwargs: (AnonymousCredentials(), "p")
    )
    channels = []
    create_channel = BigQueryWriteGrpcTransport.create_channel

    def spy(*args, **kwargs):
        channels.append((args, kwargs))
        return create_channel(*args, **kwargs)

    monkeypatch.setattr(BigQueryWriteGrpcTransport, "create_channel", spy)
    clients_reset()

    client = bigquery_write_client()

    assert isinstance(client.transport, BigQueryWriteGrpcTransport)
    ((args, kwargs),) = channels
    assert args[0].startswith("bigquerystorage.googleapis.com")
    options = dict(kwargs["options"])
    assert options["grpc.max_send_message_length"] == -1
    assert RECONNECT.items() <= options.items()
