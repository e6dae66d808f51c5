import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from google.api_core import exceptions as google_exceptions
from prometheus_client import start_http_server

from ingestion.subscriber import MAX_STREAMS, subscriber_run_from_settings


class Command(BaseCommand):
    help = (
        "Consume PUBSUB_SUBSCRIPTION: validate each message, write valid records to the "
        "warehouse in batches, dead-letter invalid ones. Stops cleanly on SIGTERM/SIGINT."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=settings.INGEST_BATCH_SIZE)
        parser.add_argument(
            "--batch-max-seconds", type=float, default=settings.INGEST_BATCH_MAX_SECONDS
        )
        parser.add_argument("--metrics-port", type=int, default=settings.METRICS_PORT)
        parser.add_argument(
            "--streams",
            type=int,
            default=settings.INGEST_STREAMS,
            help="streaming pulls on the subscription (INGEST_STREAMS)",
        )

    def handle(
        self,
        *args: object,
        batch_size: int,
        batch_max_seconds: float,
        metrics_port: int,
        streams: int,
        **options: object,
    ) -> None:
        if not 1 <= batch_size <= 10_000 or not 0 < batch_max_seconds <= 60:
            raise CommandError("--batch-size must be 1–10000 and --batch-max-seconds 0–60")
        if not 1 <= streams <= MAX_STREAMS:
            raise CommandError(f"--streams must be 1–{MAX_STREAMS} (INGEST_STREAMS)")
        if streams > settings.INGEST_MAX_OUTSTANDING_MESSAGES:
            raise CommandError(
                f"--streams {streams} is more than INGEST_MAX_OUTSTANDING_MESSAGES "
                f"({settings.INGEST_MAX_OUTSTANDING_MESSAGES}): the streams share it"
            )
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        if metrics_port:
            try:
                start_http_server(metrics_port, addr=settings.METRICS_ADDRESS)
            except OSError as error:
                raise CommandError(
                    f"cannot serve metrics on {settings.METRICS_ADDRESS}:{metrics_port} "
                    f"({error.strerror}): set METRICS_PORT (or --metrics-port) to a free port, "
                    "or 0 for none"
                ) from error
        subscription = f"{settings.GCP_PROJECT}/{settings.PUBSUB_SUBSCRIPTION}"
        try:
            subscriber_run_from_settings(
                stop=stop,
                batch_size=batch_size,
                batch_max_seconds=batch_max_seconds,
                streams=streams,
            )
        except google_exceptions.NotFound as error:
            raise CommandError(
                f"subscription {subscription} not found: run `manage.py bootstrap` on the "
                "emulator, or apply the Terraform in Google Cloud"
            ) from error
        except google_exceptions.GoogleAPICallError as error:
            raise CommandError(f"streaming pull on {subscription} failed: {error}") from error
        except RuntimeError as error:  # the writer failed: exit, so the platform restarts us
            raise CommandError(str(error)) from error
