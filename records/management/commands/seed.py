import itertools
import json
import time
from datetime import UTC, datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingestion.publishing import MessagePublisher, messages_publish
from latam.clients import pubsub_publisher
from records import selectors
from records.entities import StoredRecord
from records.repository import WarehouseUnavailable
from records.seeding import records_fake


class Command(BaseCommand):
    help = "Fill the records table with realistic Faker records (Latin-American locales)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, required=True, help="how many records")
        parser.add_argument("--seed", type=int, default=None, help="deterministic output")
        parser.add_argument("--batch-size", type=int, default=5000, help="rows per insert")
        parser.add_argument(
            "--via",
            choices=("warehouse", "pubsub"),
            default="warehouse",
            help="write to the warehouse directly, or publish to the ingest topic",
        )

    def handle(
        self, *args, count: int, seed: int | None, batch_size: int, via: str, **options
    ) -> None:
        if count < 1 or not 1 <= batch_size <= 10000:
            raise CommandError("--count must be ≥ 1 and --batch-size from 1 to 10000")
        if via == "pubsub":
            self._publish(count, seed)
            return
        repository = selectors.record_repository()
        started = time.perf_counter()
        written = refused = batches = 0
        fakes = records_fake(count=count, seed=seed)
        while batch := list(itertools.islice(fakes, batch_size)):
            now = datetime.now(UTC)
            rows = [StoredRecord(record=record, published_at=now) for record in batch]
            try:
                errors = repository.records_insert(rows=rows)
            except WarehouseUnavailable as error:
                raise CommandError(
                    f"{error} after {written} records; nothing else written"
                ) from error
            batches += 1
            refused += len(errors)
            written += len(rows) - len(errors)
        elapsed = time.perf_counter() - started
        table = f"{settings.GCP_PROJECT}.{settings.BIGQUERY_DATASET}.{settings.BIGQUERY_TABLE}"
        self.stdout.write(
            f"wrote {written} records to {table} in {batches} batches "
            f"({refused} refused, {elapsed:.1f} s, seed {seed if seed is not None else 'random'})"
        )

    def _publish(self, count: int, seed: int | None) -> None:
        publisher = pubsub_publisher()
        topic = publisher.topic_path(settings.GCP_PROJECT, settings.PUBSUB_TOPIC)
        started = time.perf_counter()
        tally = messages_publish(
            (
                json.dumps(record.as_dict()).encode()
                for record in records_fake(count=count, seed=seed)
            ),
            publisher=MessagePublisher(publisher),
            topic=topic,
        )
        summary = f"{topic}: {tally.summary()} in {time.perf_counter() - started:.1f} s"
        if tally.failed:
            raise CommandError(summary)
        self.stdout.write(summary)
