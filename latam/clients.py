"""Google Cloud clients, built lazily and once per process from settings.

Never at import time: gunicorn forks workers after importing the app, and gRPC/HTTP
clients must be created in the process that uses them. Emulator endpoints switch the
clients to anonymous credentials; otherwise Application Default Credentials are used.
"""

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

import grpc
from django.conf import settings
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, pubsub_v1
from google.cloud.bigquery_storage_v1 import BigQueryWriteClient
from google.cloud.bigquery_storage_v1.services.big_query_write.transports import (
    BigQueryWriteGrpcTransport,
)
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

if TYPE_CHECKING:
    # The stubs' name for what a streaming call returns (no such class at run time).
    from grpc import _CallIterator

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")


def emulator_url(host: str) -> str:
    return host if host.startswith(("http://", "https://")) else f"http://{host}"


@functools.cache
def bigquery_client() -> bigquery.Client:
    # Short query mode: BigQuery may answer a query without creating a job (query_and_wait
    # only; BIGQUERY_SHORT_QUERY_MODE, off on the emulator, which ignores it).
    job_creation_mode = (
        bigquery.enums.JobCreationMode.JOB_CREATION_OPTIONAL
        if settings.BIGQUERY_SHORT_QUERY_MODE
        else None
    )
    if settings.BIGQUERY_EMULATOR_HOST:
        return bigquery.Client(
            project=settings.GCP_PROJECT,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(
                api_endpoint=emulator_url(settings.BIGQUERY_EMULATOR_HOST)
            ),
            default_job_creation_mode=job_creation_mode,
        )
    return bigquery.Client(
        project=settings.GCP_PROJECT,
        location=settings.BIGQUERY_LOCATION,
        default_job_creation_mode=job_creation_mode,
    )


# The write channel: messages of any size (the repository keeps each AppendRows request
# under BigQuery's own 10 MB), and a connection tried again every second at most while
# the warehouse is away (gRPC's default backoff grows to 120 s, so writes would resume up
# to two minutes after it is back).
_WRITE_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def _write_channel(
    *args: Any, options: Sequence[tuple[str, Any]] = (), **kwargs: Any
) -> grpc.Channel:
    """BigQuery's own channel (credentials, TLS), with the write channel's options."""
    return BigQueryWriteGrpcTransport.create_channel(
        *args, options=[*dict([*options, *_WRITE_CHANNEL_OPTIONS]).items()], **kwargs
    )


@functools.cache
def bigquery_write_client() -> BigQueryWriteClient:
    """The BigQuery Storage Write API's client (the subscriber's row writes, AppendRows):
    on the emulator an insecure channel to bqemulator's gRPC port, else BigQuery itself
    with Application Default Credentials."""
    if settings.BIGQUERY_EMULATOR_HOST:
        channel = grpc.insecure_channel(
            settings.BIGQUERY_EMULATOR_GRPC_HOST, options=_WRITE_CHANNEL_OPTIONS
        )
        return BigQueryWriteClient(transport=BigQueryWriteGrpcTransport(channel=channel))
    return BigQueryWriteClient(
        transport=functools.partial(BigQueryWriteGrpcTransport, channel=_write_channel)
    )


class _StreamingPullDeadline(grpc.StreamStreamClientInterceptor):
    """Ends each streaming pull on the emulator after `seconds` (the client reopens it:
    DEADLINE_EXCEEDED is retryable; acks travel apart, in unary calls).

    Why: the emulator (0.8.20) never learns that a streaming pull's client went away
    (its bundled grpc-java throws NoSuchMethodError on every cancelled call), so the
    stream of a killed subscriber lives on until the call's deadline — 1,800 s by
    default — taking messages, each lease a delivery attempt: after a few kills, valid
    messages were dead-lettered. Pub/Sub itself ends a stream when its client goes.
    With the deadline at one lease, a dead stream holds a message at most once."""

    def __init__(self, seconds: float):
        self._seconds = seconds

    def intercept_stream_stream(
        self,
        continuation: Callable[
            [grpc.ClientCallDetails, Iterator[_Request]], "_CallIterator[_Response]"
        ],
        client_call_details: grpc.ClientCallDetails,
        request_iterator: Iterator[_Request],
    ) -> "_CallIterator[_Response]":
        if client_call_details.method.endswith("/StreamingPull"):
            timeout = min(client_call_details.timeout or self._seconds, self._seconds)
            # grpc hands interceptors its own namedtuple of the call details; the stub types
            # the abstract ClientCallDetails, which declares no _replace.
            client_call_details = client_call_details._replace(  # type: ignore[attr-defined]
                timeout=timeout
            )
        return continuation(client_call_details, request_iterator)


class _TransportOption(TypedDict, total=False):
    transport: PublisherGrpcTransport | SubscriberGrpcTransport


def _pubsub_emulator_transport(
    transport_class: type[PublisherGrpcTransport] | type[SubscriberGrpcTransport],
) -> _TransportOption:
    """An insecure channel to the emulator, or nothing (the client's own secure one)."""
    if not settings.PUBSUB_EMULATOR_HOST:
        return {}
    channel = grpc.insecure_channel(settings.PUBSUB_EMULATOR_HOST)
    if transport_class is SubscriberGrpcTransport:
        channel = grpc.intercept_channel(
            channel, _StreamingPullDeadline(settings.INGEST_LEASE_SECONDS)
        )
    return {"transport": transport_class(channel=channel)}


@functools.cache
def pubsub_publisher() -> pubsub_v1.PublisherClient:
    """Batches up to 1,000 messages or 20 ms; `publish()` blocks rather than buffer more
    than 10,000 messages or 64 MiB, so publishing a huge file keeps memory flat."""
    return pubsub_v1.PublisherClient(
        batch_settings=pubsub_v1.types.BatchSettings(
            max_messages=1000, max_bytes=4 * 1024 * 1024, max_latency=0.02
        ),
        publisher_options=pubsub_v1.types.PublisherOptions(
            flow_control=pubsub_v1.types.PublishFlowControl(
                message_limit=10_000,
                byte_limit=64 * 1024 * 1024,
                limit_exceeded_behavior=pubsub_v1.types.LimitExceededBehavior.BLOCK,
            )
        ),
        **_pubsub_emulator_transport(PublisherGrpcTransport),
    )


@functools.cache
def pubsub_subscriber() -> pubsub_v1.SubscriberClient:
    return pubsub_v1.SubscriberClient(**_pubsub_emulator_transport(SubscriberGrpcTransport))


def clients_reset() -> None:
    """Forget the built clients (tests that point settings at another endpoint)."""
    for factory in (bigquery_client, pubsub_publisher, pubsub_subscriber):
        factory.cache_clear()
    bigquery_write_client.cache_clear()
