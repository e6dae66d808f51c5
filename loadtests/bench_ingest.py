"""`make bench-ingest`: publish N records, time until all are queryable in the warehouse.

Starts its own Pub/Sub emulator, bqemulator and `manage.py run_subscriber` (one
streaming-pull stream, production settings) on free loopback ports; a running
`make run` is left alone. Once the subscriber is idle, it publishes N distinct Faker
records (or, with --backlog, publishes them before it starts the subscriber) and polls
COUNT(DISTINCT id) until all N are there. It prints:

  msgs/s              N / (last record queryable − first publish)
  CPU-s per 10,000    the subscriber's process_cpu_seconds_total over the run
  writes per 1,000    the subscriber's warehouse insert calls
  peak RSS            the subscriber's resident memory, sampled while it works

Bounded: loopback only, a deadline on every wait, everything stopped at the end.
Results also go to bench-results/ingest.json.
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

from scripts.devstack import REPO, Stack, StackError, free_port, metric_total


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
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="latam-bench-ingest-"))
    stack = Stack(log_dir=workdir / "logs")
    pubsub_port, rest_port, metrics_port = free_port(), free_port(), free_port()
    os.environ.update(
        {
            "BIGQUERY_EMULATOR_HOST": f"127.0.0.1:{rest_port}",
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{pubsub_port}",
            "GCP_PROJECT": "latam-bench",
            "DJANGO_ENV_FILE": os.devnull,
            "DJANGO_SETTINGS_MODULE": "latam.settings",
            "METRICS_PORT": str(metrics_port),
            "LOG_LEVEL": "WARNING",
        }
    )
    django.setup()
    from django.conf import settings

    from ingestion.publishing import MessagePublisher, messages_publish
    from latam.clients import pubsub_publisher
    from records import wiring
    from records.seeding import records_fake

    metrics_url = f"http://127.0.0.1:{metrics_port}"
    try:
        stack.start_pubsub_emulator(port=pubsub_port)
        stack.start_bigquery_emulator(
            project="latam-bench", rest_port=rest_port, grpc_port=free_port(), data_dir=None
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
            peak_rss = max(peak_rss, metric_total(metrics_url, "process_resident_memory_bytes"))
            stored = metric_total(metrics_url, "latam_ingest_messages_stored_total")
            return stored >= args.messages

        wait_for(
            all_stored,
            timeout=args.timeout,
            what="the subscriber to store every message",
            interval=0.25,  # scrapes cost the subscriber CPU: not too often
        )
        queryable = wait_for(
            lambda: repository.records_count() >= args.messages,
            timeout=args.timeout,
            what="every record to be queryable",
            interval=0.05,
        )
        cpu = metric_total(metrics_url, "process_cpu_seconds_total") - cpu_before
        writes = metric_total(metrics_url, "latam_warehouse_queries_total", operation="insert")
        dead = metric_total(metrics_url, "latam_ingest_messages_dead_lettered_total")
        retried = metric_total(metrics_url, "latam_ingest_messages_retried_total")
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
        "subscriber_peak_rss_mib": round(peak_rss / 2**20, 1),
        "dead_lettered": int(dead),
        "retried": int(retried),
        "batch_size": settings.INGEST_BATCH_SIZE,
    }
    print(
        f"\n{args.messages} messages{' (a backlog when it starts)' if args.backlog else ''}, "
        f"one streaming-pull stream, batches of "
        f"{settings.INGEST_BATCH_SIZE} / {settings.INGEST_BATCH_MAX_SECONDS} s"
    )
    since = "the subscriber started" if args.backlog else "the first publish"
    print(
        f"msgs/s {result['msgs_per_s']}  "
        f"(all queryable {result['seconds_to_queryable']} s after {since})"
    )
    print(f"subscriber CPU-s per 10,000 messages  {result['cpu_seconds_per_10k']}")
    print(f"warehouse write calls per 1,000       {result['writes_per_1000']}")
    print(f"subscriber peak RSS                   {result['subscriber_peak_rss_mib']} MiB")
    print(f"dead-lettered {result['dead_lettered']}, retried {result['retried']}")
    out = REPO / "bench-results"
    out.mkdir(exist_ok=True)
    name = "ingest-backlog.json" if args.backlog else "ingest.json"
    (out / name).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except StackError as error:
        print(f"bench-ingest: {error}", file=sys.stderr)
        sys.exit(1)
