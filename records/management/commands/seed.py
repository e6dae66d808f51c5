import itertools
import time
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser

from records import wiring
from records.entities import StoredRecord
from records.repository import WarehouseUnavailable
from records.seeding import records_fake


class Command(BaseCommand):
    help = (
        "Fill the records table with realistic Faker records (Latin-American locales). "
        "To send them through Pub/Sub as producers do: manage.py publish --fake N."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, required=True, help="how many records")
        parser.add_argument("--seed", type=int, default=None, help="deterministic output")
        parser.add_argument("--batch-size", type=int, default=5000, help="rows per insert")

    def handle(
        self, *args: object, count: int, seed: int | None, batch_size: int, **options: object
    ) -> None:
        if count < 1 or not 1 <= batch_size <= 10000:
            raise CommandError("--count must be ≥ 1 and --batch-size from 1 to 10000")
        repository = wiring.record_repository()
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
        self.stdout.write(
            f"wrote {written} records to {repository.table_id} in {batches} batches "
            f"({refused} refused, {elapsed:.1f} s, seed {seed if seed is not None else 'random'})"
        )
