"""`manage.py bootstrap` against both emulators: everything created once, then left alone."""

from io import StringIO

import pytest
from django.core.management import call_command

from latam.clients import bigquery_client, clients_reset, pubsub_subscriber


@pytest.fixture
def emulators(settings, bigquery_emulator, pubsub_emulator):
    settings.BIGQUERY_EMULATOR_HOST = bigquery_emulator
    settings.PUBSUB_EMULATOR_HOST = pubsub_emulator
    settings.BIGQUERY_TABLE = "bootstrap_records"
    settings.PUBSUB_TOPIC = "bootstrap-topic"
    settings.PUBSUB_SUBSCRIPTION = "bootstrap-sub"
    settings.PUBSUB_DEAD_LETTER_TOPIC = "bootstrap-dead-letter"
    settings.PUBSUB_DEAD_LETTER_SUBSCRIPTION = "bootstrap-dead-letter-sub"
    clients_reset()
    return settings


def test_bootstrap_creates_table_and_topology_then_is_idempotent(emulators):
    first, second = StringIO(), StringIO()

    call_command("bootstrap", stdout=first)
    call_command("bootstrap", stdout=second)

    assert "created" in first.getvalue() and "(4 created)" in first.getvalue()
    assert "already exists" in second.getvalue() and "(0 created)" in second.getvalue()
    table = bigquery_client().get_table(f"{emulators.GCP_PROJECT}.latam.bootstrap_records")
    assert table.clustering_fields == ["id"]
    subscriber = pubsub_subscriber()
    subscription = subscriber.get_subscription(
        subscription=subscriber.subscription_path(emulators.GCP_PROJECT, "bootstrap-sub")
    )
    assert subscription.dead_letter_policy.max_delivery_attempts == 5
    assert subscription.dead_letter_policy.dead_letter_topic.endswith(
        "/topics/bootstrap-dead-letter"
    )
    dead_letters = subscriber.get_subscription(
        subscription=subscriber.subscription_path(
            emulators.GCP_PROJECT, "bootstrap-dead-letter-sub"
        )
    )
    assert dead_letters.topic.endswith("/topics/bootstrap-dead-letter")


def test_bootstrap_leaves_pubsub_to_terraform_in_the_cloud(settings, bigquery_emulator):
    settings.BIGQUERY_EMULATOR_HOST = bigquery_emulator
    settings.BIGQUERY_TABLE = "bootstrap_cloud"
    settings.PUBSUB_EMULATOR_HOST = ""
    clients_reset()
    output = StringIO()

    call_command("bootstrap", stdout=output)

    assert "left to Terraform" in output.getvalue()
