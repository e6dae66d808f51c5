from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from google.api_core import exceptions as google_exceptions

from ingestion.deadletters import (
    dead_letter_describe,
    dead_letters_pull,
    dead_letters_replay,
    dead_letters_settle,
)
from ingestion.publishing import MessagePublisher
from latam.clients import pubsub_publisher, pubsub_subscriber


class Command(BaseCommand):
    help = (
        "Inspect the dead-letter subscription: list messages with their error_code, error "
        "and delivery count (left in place), or --replay them to the ingest topic, or "
        "--purge them. At most --max messages."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        action = parser.add_mutually_exclusive_group()
        action.add_argument(
            "--replay", action="store_true", help="republish to the ingest topic, then ack"
        )
        action.add_argument("--purge", action="store_true", help="ack (delete) them")
        parser.add_argument(
            "--max", dest="limit", type=int, default=100, help="at most this many messages"
        )
        parser.add_argument(
            "--show-data", action="store_true", help="print each message's data (personal data)"
        )
        parser.add_argument(
            "--wait", type=float, default=3.0, help="seconds to wait for messages to arrive"
        )

    def handle(
        self,
        *args: object,
        replay: bool,
        purge: bool,
        limit: int,
        show_data: bool,
        wait: float,
        **_: object,
    ) -> None:
        if not 1 <= limit <= 10_000:
            raise CommandError("--max must be 1–10000")
        subscriber = pubsub_subscriber()
        subscription = subscriber.subscription_path(
            settings.GCP_PROJECT, settings.PUBSUB_DEAD_LETTER_SUBSCRIPTION
        )
        try:
            received = dead_letters_pull(
                subscriber=subscriber, subscription=subscription, limit=limit, wait=wait
            )
        except google_exceptions.NotFound as error:
            raise CommandError(f"{subscription} not found (manage.py bootstrap?)") from error
        if replay:
            publisher = pubsub_publisher()
            topic = publisher.topic_path(settings.GCP_PROJECT, settings.PUBSUB_TOPIC)
            replayed, failed = dead_letters_replay(
                subscriber=subscriber,
                subscription=subscription,
                received=received,
                publisher=MessagePublisher(publisher),
                topic=topic,
            )
            summary = f"replayed {replayed} dead letters to {topic}, {failed} failed"
            if failed:
                raise CommandError(summary)
            self.stdout.write(summary)
            return
        ack_ids = [item.ack_id for item in received]
        # Listing consumes nothing: every message is handed back at once.
        dead_letters_settle(
            subscriber=subscriber, subscription=subscription, ack_ids=ack_ids, ack=purge
        )
        if purge:
            self.stdout.write(f"purged {len(received)} dead letters from {subscription}")
            return
        for item in received:
            self.stdout.write(dead_letter_describe(item.message, show_data=show_data))
        self.stdout.write(f"{len(received)} dead letters listed from {subscription}")
