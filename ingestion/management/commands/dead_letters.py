from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from google.api_core import exceptions as google_exceptions

from ingestion.deadletters import POLICY_DELIVERY_COUNT, attributes_original
from latam.clients import pubsub_publisher, pubsub_subscriber

PULL_CHUNK = 100
SETTLE_CHUNK = 1000  # ack ids per request, well under Pub/Sub's request size limit


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

    def handle(self, *args, replay: bool, purge: bool, limit: int, **options) -> None:
        if not 1 <= limit <= 10_000:
            raise CommandError("--max must be 1–10000")
        subscriber = pubsub_subscriber()
        subscription = subscriber.subscription_path(
            settings.GCP_PROJECT, settings.PUBSUB_DEAD_LETTER_SUBSCRIPTION
        )
        received = self._pull(subscriber, subscription, limit, options["wait"])
        if replay:
            self._replay(subscriber, subscription, received)
        elif purge:
            _settle(subscriber, subscription, [item.ack_id for item in received], ack=True)
            self.stdout.write(f"purged {len(received)} dead letters from {subscription}")
        else:
            self._list(subscriber, subscription, received, options["show_data"])

    def _pull(self, subscriber, subscription: str, limit: int, wait: float) -> list:
        """Pull up to `limit` messages, holding each until we are done (no repeats)."""
        received: list = []
        while len(received) < limit:
            try:
                response = subscriber.pull(
                    subscription=subscription,
                    max_messages=min(PULL_CHUNK, limit - len(received)),
                    timeout=wait,
                    retry=None,
                )
            except google_exceptions.DeadlineExceeded:
                break
            except google_exceptions.NotFound as error:
                raise CommandError(f"{subscription} not found (manage.py bootstrap?)") from error
            if not response.received_messages:
                break
            received.extend(response.received_messages)
        return received

    def _list(self, subscriber, subscription: str, received: list, show_data: bool) -> None:
        for item in received:
            message = item.message
            attributes = dict(message.attributes)
            attempts = attributes.get("delivery_attempt") or attributes.get(
                POLICY_DELIVERY_COUNT, "?"
            )
            code = attributes.get("error_code", "delivery_attempts_exhausted")
            # The source message id is what the subscriber's logs name.
            source = attributes.get("source_message_id", "?")
            line = (
                f"{message.message_id}  {message.publish_time.isoformat()}  source={source}  "
                f"attempts={attempts}  {code}: {attributes.get('error', '')}"
            )
            self.stdout.write(line.rstrip())
            if show_data:
                self.stdout.write(f"    data: {message.data.decode(errors='replace')}")
        # Listing consumes nothing: hand every message back at once.
        _settle(subscriber, subscription, [item.ack_id for item in received], ack=False)
        self.stdout.write(f"{len(received)} dead letters listed from {subscription}")

    def _replay(self, subscriber, subscription: str, received: list) -> None:
        publisher = pubsub_publisher()
        topic = publisher.topic_path(settings.GCP_PROJECT, settings.PUBSUB_TOPIC)
        futures = [
            (
                item.ack_id,
                publisher.publish(
                    topic, item.message.data, **attributes_original(item.message.attributes)
                ),
            )
            for item in received
        ]
        replayed, failed = [], []
        for ack_id, future in futures:
            (failed if future.exception() else replayed).append(ack_id)
        # Acked only once republished; what failed goes back to the dead-letter subscription.
        _settle(subscriber, subscription, replayed, ack=True)
        _settle(subscriber, subscription, failed, ack=False)
        summary = f"replayed {len(replayed)} dead letters to {topic}, {len(failed)} failed"
        if failed:
            raise CommandError(summary)
        self.stdout.write(summary)


def _settle(subscriber, subscription: str, ack_ids: list[str], *, ack: bool) -> None:
    """Ack, or hand back for redelivery (deadline 0), in requests of bounded size."""
    for start in range(0, len(ack_ids), SETTLE_CHUNK):
        chunk = ack_ids[start : start + SETTLE_CHUNK]
        if ack:
            subscriber.acknowledge(subscription=subscription, ack_ids=chunk)
        else:
            subscriber.modify_ack_deadline(
                subscription=subscription, ack_ids=chunk, ack_deadline_seconds=0
            )
