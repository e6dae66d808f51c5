"""`make bench-ingest`: publish N records, time until all are queryable in the warehouse.

Starts its own Pub/Sub emulator, bqemulator and `manage.py run_subscriber` (one
streaming-pull stream, or `--streams N`; production settings otherwise) on free loopback
ports; a running `make run` is left alone. Once the subscriber is idle, it publishes N
distinct Faker records (or, with --backlog, publishes them before it starts the
subscriber) and polls COUNT(DISTINCT id) until all N are there. It prints:

  msgs/s              N / (last record queryable − first publish)
  CPU-s per 10,000    the subscriber's process_cpu_seconds_total over the run
  writes per 1,000    the subscriber's warehouse insert calls
  writes under way    seconds spent in insert calls per second: ~1 means one writer
                      thread would be the bottleneck
  peak RSS            the subscriber's resident memory, sampled while it works

and the messages the emulator itself dead-lettered (delivery attempts exhausted).
Bounded: loopback only, a deadline on every wait, everything stopped at the end.
Results also go to bench-results/ingest[-backlog][-streams-N].json.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import django

from scripts.devstack import REPO, Stack, StackError, free_port, metric_total, metric_totals


def wait_for(condition, *, timeout: float, what: str, interval: float = 0.2) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(interval)
    raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--timeout", type=float, default=300, help="give up after this")
    parser.add_argument(
        "--backlog",
        action="store_true",
        help="publish everything first, then start the subscriber (memory under a backlog)",
    )
    parser.add_argument(
        "--streams",
        type=int,
        default=1,
        help="streaming pulls the subscriber opens (INGEST_STREAMS)",
    )
    args = parser.parse_args()
    if not 1 <= args.streams <= 16:
        parser.error("--streams must be 1-16 (INGEST_STREAMS)")

    workdir = Path(tempfile.mkdtemp(prefix="latam-bench-ingest-"))
    stack = Stack(log_dir=workdir / "logs")
    pubsub_port, rest_port, metrics_port = free_port(), free_port(), free_port()
    grpc_port = free_port()
    os.environ.update(
        {
            "BIGQUERY_EMULATOR_HOST": f"127.0.0.1:{rest_port}",
            "BIGQUERY_EMULATOR_GRPC_HOST": f"127.0.0.1:{grpc_port}",
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{pubsub_port}",
            "GCP_PROJECT": "latam-bench",
            "DJANGO_ENV_FILE": os.devnull,
            "DJANGO_SETTINGS_MODULE": "latam.settings",
            "METRICS_PORT": str(metrics_port),
            "INGEST_STREAMS": str(args.streams),
            "LOG_LEVEL": "WARNING",
        }
    )
    django.setup()
    from django.conf import settings

    from ingestion.deadletters import dead_letters_pull
    from ingestion.publishing import MessagePublisher, messages_publish
    from latam.clients import pubsub_publisher, pubsub_subscriber
    from records import wiring
    from records.seeding import records_fake

    metrics_url = f"http://127.0.0.1:{metrics_port}"
    try:
        stack.start_pubsub_emulator(port=pubsub_port)
        stack.start_bigquery_emulator(
            project="latam-bench", rest_port=rest_port, grpc_port=grpc_port, data_dir=None
        )
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "bootstrap"], cwd=REPO, check=True, timeout=120)
        repository = wiring.record_repository()
        payloads = [
            json.dumps(record.as_dict()).encode()
            for record in records_fake(count=args.messages, seed=7)
        ]
        publisher = pubsub_publisher()
        topic = publisher.topic_path(settings.GCP_PROJECT, settings.PUBSUB_TOPIC)

        def publish() -> float:
            tally = messages_publish(payloads, publisher=MessagePublisher(publisher), topic=topic)
            if tally.failed:
                raise StackError(f"publishing failed: {tally.summary()}")
            return time.monotonic()

        if args.backlog:  # everything waits in the subscription before the subscriber starts
            published = publish()
        stack.start("subscriber", [*manage, "run_subscriber"])
        stack.wait_for_port("subscriber", metrics_port)
        cpu_before = metric_total(metrics_url, "process_cpu_seconds_total")
        started = time.monotonic()
        if not args.backlog:
            published = publish()
        peak_rss = 0.0

        def all_stored() -> bool:
            nonlocal peak_rss
            sample = metric_totals(
                metrics_url, "process_resident_memory_bytes", "latam_ingest_messages_stored_total"
            )
            peak_rss = max(peak_rss, sample["process_resident_memory_bytes"])
            return sample["latam_ingest_messages_stored_total"] >= args.messages

        def exhausted() -> int:
            """Messages Pub/Sub forwarded to the dead letters: attempts spent, not stored."""
            subscriber = pubsub_subscriber()
            subscription = subscriber.subscription_path(
                settings.GCP_PROJECT, settings.PUBSUB_DEAD_LETTER_SUBSCRIPTION
            )
            return len(
                dead_letters_pull(
                    subscriber=subscriber, subscription=subscription, limit=args.messages, wait=1
                )
            )

        try:
            wait_for(
                all_stored,
                timeout=args.timeout,
                what="the subscriber to store every message",
                interval=0.25,  # scrapes cost the subscriber CPU: not too often
            )
        except StackError as error:
            raise StackError(f"{error} ({exhausted()} dead-lettered by the emulator)") from None
        queryable = wait_for(
            lambda: repository.records_count() >= args.messages,
            timeout=args.timeout,
            what="every record to be queryable",
            interval=0.05,
        )
        cpu = metric_total(metrics_url, "process_cpu_seconds_total") - cpu_before
        writes = metric_total(metrics_url, "latam_warehouse_queries_total", operation="insert")
        write_seconds = metric_total(
            metrics_url, "latam_warehouse_query_duration_seconds_sum", operation="insert"
        )
        dead = metric_total(metrics_url, "latam_ingest_messages_dead_lettered_total")
        retried = metric_total(metrics_url, "latam_ingest_messages_retried_total")
        attempts_exhausted = exhausted()
    finally:
        stack.stop_all()

    elapsed = queryable - started
    result = {
        "messages": args.messages,
        "backlog": args.backlog,
        "publish_seconds": None if args.backlog else round(published - started, 2),
        "seconds_to_queryable": round(elapsed, 2),
        "msgs_per_s": round(args.messages / elapsed),
        "cpu_seconds_per_10k": round(cpu / args.messages * 10_000, 2),
        "writes_per_1000": round(writes / args.messages * 1000, 2),
        "writes_under_way": round(write_seconds / elapsed, 2),
        "subscriber_peak_rss_mib": round(peak_rss / 2**20, 1),
        "dead_lettered": int(dead),
        "retried": int(retried),
        "attempts_exhausted": attempts_exhausted,
        "batch_size": settings.INGEST_BATCH_SIZE,
        "streams": args.streams,
    }
    print(
        f"\n{args.messages} messages{' (a backlog when it starts)' if args.backlog else ''}, "
        f"{args.streams} streaming-pull stream{'s' if args.streams > 1 else ''}, batches of "
        f"{settings.INGEST_BATCH_SIZE} / {settings.INGEST_BATCH_MAX_SECONDS} s"
    )
    since = "the subscriber started" if args.backlog else "the first publish"
    print(
        f"msgs/s {result['msgs_per_s']}  "
        f"(all queryable {result['seconds_to_queryable']} s after {since})"
    )
    print(f"subscriber CPU-s per 10,000 messages  {result['cpu_seconds_per_10k']}")
    print(f"warehouse write calls per 1,000       {result['writes_per_1000']}")
    print(f"warehouse writes under way (average)  {result['writes_under_way']}")
    print(f"subscriber peak RSS                   {result['subscriber_peak_rss_mib']} MiB")
    print(
        f"dead-lettered {result['dead_lettered']} (attempts exhausted "
        f"{result['attempts_exhausted']}), retried {result['retried']}"
    )
    out = REPO / "bench-results"
    out.mkdir(exist_ok=True)
    name = "ingest" + ("-backlog" if args.backlog else "")
    name += f"-streams-{args.streams}" if args.streams != 1 else ""
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except StackError as error:
        print(f"bench-ingest: {error}", file=sys.stderr)
        sys.exit(1)
