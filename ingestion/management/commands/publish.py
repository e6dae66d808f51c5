import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingestion.publishing import MessagePublisher, messages_publish
from latam.clients import pubsub_publisher
from records.seeding import records_fake


class Command(BaseCommand):
    help = (
        "Publish JSON records to the ingest topic as-is, one message per line of FILE "
        "(or stdin), or the single --data value, or --fake N realistic Faker records. "
        "Invalid input is published too, so that what the subscriber refuses can be "
        "reproduced."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="JSON lines; '-' or nothing for stdin")
        parser.add_argument("--data", help='one message, e.g. \'{"id": "1", ...}\'')
        parser.add_argument(
            "--fake", type=int, metavar="N", help="N Faker records (Latin-American locales)"
        )
        parser.add_argument("--seed", type=int, help="with --fake: deterministic records")
        parser.add_argument("--topic", default=settings.PUBSUB_TOPIC)
        parser.add_argument(
            "--attribute",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="message attribute (repeatable)",
        )

    def handle(
        self,
        *args: object,
        file: str | None,
        data: str | None,
        fake: int | None,
        seed: int | None,
        topic: str,
        attribute: list[str],
        **options: object,
    ) -> None:
        if sum(source is not None for source in (file, data, fake)) > 1:
            raise CommandError("give one of FILE, --data or --fake")
        if fake is not None and fake < 1:
            raise CommandError("--fake must be ≥ 1")
        attributes: dict[str, str] = {}
        for item in attribute:
            key, separator, value = item.partition("=")
            if not separator or not key:
                raise CommandError(f"--attribute must be KEY=VALUE, got {item!r}")
            attributes[key] = value
        if data is not None:
            self._publish([data.encode()], topic, attributes)
        elif fake is not None:
            records = records_fake(count=fake, seed=seed)
            self._publish((json.dumps(r.as_dict()).encode() for r in records), topic, attributes)
        elif file is None or file == "-":
            self._publish(_lines(sys.stdin.buffer), topic, attributes)
        else:
            path = Path(file)
            if not path.is_file():
                raise CommandError(f"{file}: no such file")
            with path.open("rb") as stream:
                self._publish(_lines(stream), topic, attributes)

    def _publish(self, payloads: Iterable[bytes], topic: str, attributes: dict[str, str]) -> None:
        publisher = pubsub_publisher()
        topic_path = publisher.topic_path(settings.GCP_PROJECT, topic)
        tally = messages_publish(
            payloads, publisher=MessagePublisher(publisher), topic=topic_path, attributes=attributes
        )
        message = f"{topic_path}: {tally.summary()}"
        if "NotFound" in tally.errors:
            message += " — does the topic exist? (`manage.py bootstrap` on the emulator)"
        if tally.failed:
            raise CommandError(message)
        self.stdout.write(message)


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    """Each non-blank line, without its line ending, bytes untouched (even if not UTF-8)."""
    for line in stream:
        if line.strip():
            yield line.rstrip(b"\r\n")
