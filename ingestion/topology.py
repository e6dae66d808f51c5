"""The Pub/Sub topology (docs/contracts.md), created idempotently on the emulator.

In Google Cloud, Terraform owns these resources (terraform/modules/pubsub); locally,
`manage.py bootstrap` creates the same shape: ingest topic, its subscription with a
dead-letter policy, the dead-letter topic and its subscription.

One difference: no retry policy on the emulator. Its exponential-backoff implementation
(emulator 0.8.20) holds messages nacked by a closing stream for minutes, even with a
1–5 s policy, so a restarted subscriber would wait for them; without a policy they come
back as soon as their lease lapses. Terraform sets the 10–600 s policy in the cloud.
"""

from collections.abc import Callable

from django.conf import settings
from google.api_core import exceptions as google_exceptions
from google.cloud import pubsub_v1
from google.protobuf import duration_pb2

TIMEOUT_SECONDS = 30


def _ensure(create: Callable[..., object], **request: object) -> bool:
    try:
        create(request=request, timeout=TIMEOUT_SECONDS)
        return True
    except google_exceptions.AlreadyExists:
        return False


def topology_ensure(
    *, publisher: pubsub_v1.PublisherClient, subscriber: pubsub_v1.SubscriberClient
) -> list[str]:
    """Create what is missing; return the names of what was created."""
    project = settings.GCP_PROJECT
    topic = publisher.topic_path(project, settings.PUBSUB_TOPIC)
    dead_letter_topic = publisher.topic_path(project, settings.PUBSUB_DEAD_LETTER_TOPIC)
    subscription = subscriber.subscription_path(project, settings.PUBSUB_SUBSCRIPTION)
    dead_letter_subscription = subscriber.subscription_path(
        project, settings.PUBSUB_DEAD_LETTER_SUBSCRIPTION
    )
    created = []
    for name in (topic, dead_letter_topic):
        if _ensure(publisher.create_topic, name=name):
            created.append(name)
    if _ensure(
        subscriber.create_subscription,
        name=subscription,
        topic=topic,
        ack_deadline_seconds=60,
        dead_letter_policy={
            "dead_letter_topic": dead_letter_topic,
            "max_delivery_attempts": settings.PUBSUB_MAX_DELIVERY_ATTEMPTS,
        },
    ):
        created.append(subscription)
    if _ensure(
        subscriber.create_subscription,
        name=dead_letter_subscription,
        topic=dead_letter_topic,
        ack_deadline_seconds=60,
        message_retention_duration=duration_pb2.Duration(seconds=7 * 24 * 3600),
    ):
        created.append(dead_letter_subscription)
    return created
