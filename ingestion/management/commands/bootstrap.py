"""`manage.py bootstrap`: the local stack's resources, each created by the side that owns
it — the table by the records repository (`table_ensure`), the Pub/Sub topology by
`ingestion.topology`. The command lives in `ingestion` because it needs both, and only
`ingestion` may import `records` (never the other way round)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ingestion.topology import topology_ensure
from latam.clients import pubsub_publisher, pubsub_subscriber
from records import wiring
from records.repository import WarehouseUnavailable


class Command(BaseCommand):
    help = (
        "Idempotently create the BigQuery dataset and table (clustered on id) and, on the "
        "emulators, the Pub/Sub topics and subscriptions (Terraform owns them in the cloud)."
    )

    def handle(self, *args: object, **options: object) -> None:
        repository = wiring.record_repository()
        table = repository.table_id
        try:
            created = repository.table_ensure(location=settings.BIGQUERY_LOCATION)
        except WarehouseUnavailable as error:
            raise CommandError(f"cannot reach BigQuery to create {table}: {error}") from error
        self.stdout.write(f"table {table}: {'created' if created else 'already exists'}")
        if not settings.PUBSUB_EMULATOR_HOST:
            self.stdout.write("Pub/Sub: not on the emulator, left to Terraform")
            return
        created_names = topology_ensure(
            publisher=pubsub_publisher(), subscriber=pubsub_subscriber()
        )
        for name in created_names:
            self.stdout.write(f"created {name}")
        self.stdout.write(f"Pub/Sub topology ready ({len(created_names)} created)")
