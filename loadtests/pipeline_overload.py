"""Pipeline overload: a burst of messages into a running pipeline, with 1 and with 4 streams.

For each stream count, a fresh local pipeline (loadtests.harness.Pipeline: Pub/Sub
emulator, bqemulator, `manage.py run_subscriber --streams N`, all on loopback) is started;
once the subscriber is idle, `--messages` distinct Faker records are published as fast as
the publisher goes (a burst into a running subscriber, not a backlog waiting for it), and
every ~0.5 s the backlog is sampled: published (accepted by the emulator, counted by this
process as each publish settles) − stored (the subscriber's
`latam_ingest_messages_stored_total`). It prints, per run:

  publish s        first publish → the last one accepted by the emulator
  drain s          first publish → every message stored (and the distinct ids checked)
  after publish s  last publish → every message stored
  peak backlog     the largest published − stored seen
  p50/p95/p99      publish → confirmed write, from the subscriber's histogram
                   `latam_ingest_publish_to_stored_seconds` (scraped from its /metrics,
                   interpolated inside buckets as Prometheus' histogram_quantile does)
                   and, exactly per record, from the warehouse: ingested_at − published_at
                   of each id's first row (ingested_at is taken as the append is sent, so
                   these are short of the histogram's by the append's own time)
  within 60 s      share of records stored within the freshness objective (histogram)

Writes docs/critical-points/pipeline-overload.json and two plots there: the backlog over
time of both runs, and the distribution (CDF) of the end-to-end latency. Bounded:
loopback only, a fixed number of messages, a deadline on every wait, everything stopped
at the end. Run from the repository root: `.venv/bin/python -m loadtests.pipeline_overload`.
"""

import argparse
import bisect
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from loadtests.harness import Pipeline, StackError, wait_for
from scripts.devstack import REPO

HISTOGRAM = "latam_ingest_publish_to_stored_seconds"
STORED = "latam_ingest_messages_stored_total"
OLDEST = "latam_ingest_oldest_unacked_message_age_seconds"
OBJECTIVE_S = 60.0
QUANTILES = (0.5, 0.95, 0.99)
SAMPLE_S = 0.5
OUT = REPO / "docs" / "critical-points"


# --- pure logic (unit-tested) ---------------------------------------------------------------
Buckets = list[tuple[float, float]]  # (upper bound `le`, cumulative count), +Inf last


def histogram_buckets(exposition: str, name: str) -> Buckets:
    """The cumulative buckets of histogram `name` in a Prometheus text exposition, summed
    over its label sets, sorted by bound."""
    counts: dict[float, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                le = float(sample.labels["le"])
                counts[le] = counts.get(le, 0.0) + sample.value
    if not counts:
        raise ValueError(f"no histogram {name} in the exposition")
    return sorted(counts.items())


def quantile_from_buckets(q: float, buckets: Buckets) -> float:
    """The q-quantile of a cumulative histogram, linearly interpolated inside its bucket
    (Prometheus' histogram_quantile: the first bucket starts at 0; a quantile in the +Inf
    bucket is the highest finite bound). NaN when the histogram is empty."""
    if not 0 <= q <= 1:
        raise ValueError("q must be in [0, 1]")
    if not buckets or not math.isinf(buckets[-1][0]):
        raise ValueError("the buckets must end with +Inf")
    total = buckets[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    lower, below = 0.0, 0.0
    for le, cumulative in buckets:
        if cumulative >= rank and cumulative > below:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * (rank - below) / (cumulative - below)
        lower, below = le, cumulative
    return lower


def share_within(bound: float, buckets: Buckets) -> float:
    """Share of observations ≤ `bound`, which must be a bucket bound (as the SLO's cut is)."""
    for le, cumulative in buckets:
        if le == bound:
            return cumulative / buckets[-1][1] if buckets[-1][1] else math.nan
    raise ValueError(f"{bound} is not a bucket bound")


def quantile_exact(q: float, values: Sequence[float]) -> float:
    """The q-quantile of sorted `values`, linearly interpolated between closest ranks."""
    if not values:
        return math.nan
    position = q * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


@dataclass
class Sample:
    t: float  # seconds since the first publish
    published: int
    stored: float
    oldest_unacked_s: float

    @property
    def backlog(self) -> float:
        """Published, not yet stored (redelivered copies stored twice never count below 0)."""
        return max(self.published - self.stored, 0.0)


def drained_at(samples: Iterable[Sample], total: int, share: float = 1.0) -> float | None:
    """The first sample's time at which `share` of the `total` messages were stored (all
    of them published)."""
    return next((s.t for s in samples if s.published >= total and s.stored >= share * total), None)


def share_at_most(bound: float, values: Sequence[float]) -> float:
    """Share of sorted `values` ≤ `bound`."""
    return bisect.bisect_right(values, bound) / len(values) if values else math.nan


# --- one run ----------------------------------------------------------------------------------
@dataclass
class Run:
    streams: int
    messages: int
    publish_s: float = 0.0
    drain_s: float = 0.0
    after_publish_s: float = 0.0
    peak_backlog: float = 0.0
    distinct_stored: int = 0
    dead_lettered: float = 0.0
    histogram: Buckets = field(default_factory=list)
    quantiles_histogram: dict[str, float] = field(default_factory=dict)
    quantiles_exact: dict[str, float] = field(default_factory=dict)
    within_objective: float = 0.0
    exact_latencies: list[float] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)


def scrape(metrics_url: str) -> dict[str, float]:
    """Every sample of a /metrics endpoint, summed by sample name (labels dropped)."""
    with urllib.request.urlopen(f"{metrics_url}/metrics", timeout=5) as response:  # noqa: S310
        text = response.read().decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def exposition(metrics_url: str) -> str:
    with urllib.request.urlopen(f"{metrics_url}/metrics", timeout=5) as response:  # noqa: S310
        return str(response.read().decode())


def exact_latencies(timeout: float) -> list[float]:
    """Per id, seconds from publish_time to its first row's ingested_at, sorted."""
    from latam.clients import bigquery_client
    from records import wiring

    table = wiring.record_repository().table_id
    sql = (
        "SELECT MIN(TIMESTAMP_DIFF(ingested_at, published_at, MICROSECOND)) AS us "  # noqa: S608
        f"FROM `{table}` GROUP BY id"  # our own table id, checked by the repository
    )
    rows = bigquery_client().query_and_wait(sql, wait_timeout=timeout, page_size=50_000)
    return sorted(max(row["us"], 0) / 1e6 for row in rows)


class Published:
    """Messages the emulator accepted so far (futures settled), counted as they settle."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted = 0
        self.failed = 0

    def settle(self, future: Future[str]) -> None:
        with self._lock:
            if future.exception() is None:
                self.accepted += 1
            else:
                self.failed += 1


def publish_counting(payloads: Sequence[bytes], counter: Published, timeout: float = 300) -> None:
    """Publish every payload as fast as the client batches them (it blocks past 10,000 in
    flight), counting each as the emulator accepts it, so the backlog is known as it
    grows; StackError if one fails or they are not all accepted within `timeout`."""
    from django.conf import settings

    from latam.clients import pubsub_publisher

    publisher = pubsub_publisher()
    topic = publisher.topic_path(settings.GCP_PROJECT, settings.PUBSUB_TOPIC)
    for payload in payloads:
        publisher.publish(topic, payload).add_done_callback(counter.settle)
    wait_for(
        lambda: counter.accepted + counter.failed >= len(payloads),
        timeout=timeout,
        what="the emulator to accept every message",
        interval=0.01,
    )
    if counter.failed:
        raise StackError(f"{counter.failed} messages could not be published")


def run_from_json(data: dict[str, Any]) -> Run:
    run = Run(**data)
    run.histogram = [(float(le), float(c)) for le, c in data["histogram"]]
    run.samples = [Sample(**sample) for sample in data["samples"]]
    return run


def run_in_child(streams: int, messages: int, *, timeout: float, workdir: Path) -> Run:
    """`run_once` in a process of its own: settings and clients are built once per process
    (from the pipeline's ports), and each run gets a fresh pipeline."""
    result = workdir / f"run-{streams}.json"
    if result.exists():  # --workdir of an earlier invocation: that run is kept
        print(f"  kept from {result}", flush=True)
        return run_from_json(json.loads(result.read_text()))
    command = [sys.executable, "-m", "loadtests.pipeline_overload", "--messages", str(messages)]
    command += ["--timeout", str(timeout), "--run-one", str(streams), "--result", str(result)]
    try:
        subprocess.run(command, cwd=REPO, check=True, timeout=timeout + 600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        raise StackError(f"the {streams}-stream run failed: {error}") from None
    return run_from_json(json.loads(result.read_text()))


def run_once(streams: int, messages: int, *, timeout: float, seed: int) -> Run:
    run = Run(streams=streams, messages=messages)
    # As .env locally: the emulator spends a delivery attempt on every message it pushes
    # to a stream it has ended (latam/clients.py), far more often with several streams.
    with Pipeline(
        name=f"pipeline-overload-{streams}", env={"PUBSUB_MAX_DELIVERY_ATTEMPTS": "100"}
    ) as pipeline:
        payloads = pipeline.fake_payloads(messages, seed=seed)
        metrics_url = pipeline.subscriber_start(streams=streams)
        wait_for(  # the streams are open: the burst meets a subscriber ready for it
            lambda: scrape(metrics_url).get("latam_ingest_streams_open", 0) >= streams,
            timeout=60,
            what="the subscriber's streams",
        )
        counter = Published()
        finished: list[float] = []
        failure: list[BaseException] = []

        def publish() -> None:
            try:
                publish_counting(payloads, counter)
                finished.append(time.monotonic())
            except BaseException as error:  # reported by the sampling loop
                failure.append(error)

        started = time.monotonic()
        publisher = threading.Thread(target=publish, name="burst", daemon=True)
        publisher.start()
        deadline = started + timeout
        while True:
            metrics = scrape(metrics_url)
            sample = Sample(
                t=round(time.monotonic() - started, 3),
                published=counter.accepted,
                stored=metrics.get(STORED, 0.0),
                oldest_unacked_s=round(metrics.get(OLDEST, 0.0), 3),
            )
            run.samples.append(sample)
            if failure:
                raise StackError(f"publishing failed: {failure[0]}")
            if finished and sample.stored >= messages:
                break
            if time.monotonic() > deadline:
                raise StackError(
                    f"{streams} stream(s): {sample.stored:.0f} of {messages} stored "
                    f"({counter.accepted} published) after {timeout:.0f} s"
                )
            time.sleep(max(SAMPLE_S - (time.monotonic() - started - sample.t), 0))
        run.publish_s = round(finished[0] - started, 2)
        run.drain_s = drained_at(run.samples, messages) or sample.t
        run.after_publish_s = round(sample.t - run.publish_s, 2)
        run.peak_backlog = max(s.backlog for s in run.samples)
        run.distinct_stored = pipeline.stored_count()
        if run.distinct_stored != messages:
            raise StackError(f"{run.distinct_stored} distinct ids stored, not {messages}")
        text = exposition(metrics_url)
        run.dead_lettered = scrape(metrics_url).get("latam_ingest_messages_dead_lettered_total", 0)
        run.histogram = histogram_buckets(text, HISTOGRAM)
        run.quantiles_histogram = {
            f"p{round(q * 100)}": round(quantile_from_buckets(q, run.histogram), 3)
            for q in QUANTILES
        }
        run.within_objective = round(share_within(OBJECTIVE_S, run.histogram), 5)
        try:
            run.exact_latencies = exact_latencies(timeout=180)
        except Exception as error:  # the histogram's figures stand without them
            print(f"per-record latencies not read ({type(error).__name__}: {error})")
        run.quantiles_exact = {
            f"p{round(q * 100)}": round(quantile_exact(q, run.exact_latencies), 3)
            for q in QUANTILES
        }
    return run


# --- report -----------------------------------------------------------------------------------
def summary(run: Run) -> dict[str, float | None]:
    """Figures read from a run's samples and per-record latencies."""
    return {
        "stored_99_percent_s": drained_at(run.samples, run.messages, 0.99),
        "stored_99_9_percent_s": drained_at(run.samples, run.messages, 0.999),
        "max_latency_s": round(run.exact_latencies[-1], 3) if run.exact_latencies else None,
        "within_objective_exact": round(share_at_most(OBJECTIVE_S, run.exact_latencies), 5),
    }


def table(runs: Sequence[Run]) -> str:
    header = (
        f"{'streams':>7} {'publish':>7} {'99% in':>7} {'all in':>7} {'peak backlog':>12} "
        f"{'p50 s':>13} {'p95 s':>13} {'p99 s':>13} {'max s':>6} {'<=60 s':>16}"
    )
    lines = [header, "-" * len(header)]
    for run in runs:
        h, e, more = run.quantiles_histogram, run.quantiles_exact, summary(run)
        most = more["stored_99_percent_s"] or math.nan
        lines.append(
            f"{run.streams:>7} {run.publish_s:>6.1f}s {most:>6.1f}s"
            f" {run.drain_s:>6.1f}s {run.peak_backlog:>12,.0f} "
            + " ".join(f"{h[k]:>5.2f} ({e[k]:>5.2f})" for k in ("p50", "p95", "p99"))
            + f" {more['max_latency_s'] or math.nan:>6.1f}"
            + f" {run.within_objective:>7.2%} ({more['within_objective_exact'] or math.nan:.2%})"
        )
    lines += [
        "publish: first publish → last accepted; 99% in / all in: first publish → that many"
        " stored (drain time)",
        "p50/p95/p99 and <=60 s: from the subscriber's histogram (per record, from the"
        " warehouse); max: per record",
    ]
    return "\n".join(lines)


def plots(runs: Sequence[Run], out: Path, title: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    backlog_png, cdf_png = out / "pipeline-overload-backlog.png", out / "pipeline-overload-cdf.png"

    figure, (axes, ages) = plt.subplots(
        2, 1, figsize=(9, 7), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    for run, colour in zip(runs, colours, strict=False):
        label = f"{run.streams} stream{'s' if run.streams > 1 else ''}"
        times = [s.t for s in run.samples]
        axes.plot(
            times,
            [s.backlog for s in run.samples],
            color=colour,
            label=f"{label}: drained in {run.drain_s:.1f} s",
        )
        ages.plot(times, [s.oldest_unacked_s for s in run.samples], color=colour, label=label)
        for panel in (axes, ages):
            panel.axvline(run.publish_s, color=colour, linestyle=":", linewidth=1)
    axes.plot([], [], color="grey", linestyle=":", label="last message published")
    axes.set_title(f"Backlog after a burst of {runs[0].messages:,} messages{title}")
    axes.set_ylabel("backlog (published − stored),\nmessages")
    axes.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
    axes.set_ylim(bottom=0)
    axes.set_xlim(left=0)
    axes.grid(alpha=0.3)
    axes.legend()
    ages.set_title("Oldest message the subscriber holds for writing", fontsize=10)
    ages.set_xlabel("seconds since the first publish")
    ages.set_ylabel("age since publish, s")
    ages.set_ylim(bottom=0)
    ages.grid(alpha=0.3)
    ages.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(backlog_png, dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(9, 5))
    for run, colour in zip(runs, colours, strict=False):
        label = f"{run.streams} stream{'s' if run.streams > 1 else ''}"
        values = run.exact_latencies
        axes.plot(  # empty when the warehouse query failed: the buckets remain
            values,
            [(i + 1) / len(values) for i in range(len(values))],
            color=colour,
            label=f"{label}: per record (warehouse, append sent), max {values[-1]:.0f} s"
            if values
            else f"{label}: per record (not read)",
        )
        finite = [(le, c) for le, c in run.histogram if not math.isinf(le)]
        total = run.histogram[-1][1]
        axes.plot(
            [le for le, _ in finite],
            [c / total for _, c in finite],
            color=colour,
            linestyle="none",
            marker="o",
            label=f"{label}: histogram buckets (/metrics)",
        )
    axes.axvline(OBJECTIVE_S, color="black", linestyle="--", linewidth=1, label="objective: 60 s")
    # Log seconds: the bulk (seconds to a minute) and the late redeliveries both show.
    longest = max(max(run.exact_latencies, default=0.0) for run in runs)
    axes.set_xscale("log")
    axes.set_xlim(0.1, max(longest * 1.5, OBJECTIVE_S * 2))
    axes.xaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:g}"))
    axes.set_ylim(0, 1.02)
    axes.set_title(f"End-to-end latency, publish → queryable ({runs[0].messages:,} burst){title}")
    axes.set_xlabel("seconds from publish_time to the write (log scale)")
    axes.set_ylabel("share of records (CDF)")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize=9)
    figure.tight_layout()
    figure.savefig(cdf_png, dpi=110)
    plt.close(figure)
    return [backlog_png, cdf_png]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--streams", default="1,4", help="stream counts, one run each")
    parser.add_argument("--timeout", type=float, default=300, help="per run, after publishing")
    parser.add_argument("--out", type=Path, default=OUT, help="where the JSON and plots go")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where each run's result is kept; a run already there is not run again",
    )
    parser.add_argument("--run-one", type=int, help=argparse.SUPPRESS)  # the child's part
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    streams = [int(n) for n in args.streams.split(",")]
    if not all(1 <= n <= 16 for n in streams) or args.messages < 1:
        parser.error("--streams must be 1-16 each (INGEST_STREAMS), --messages positive")
    if args.run_one is not None:
        run = run_once(args.run_one, args.messages, timeout=args.timeout, seed=7 + args.run_one)
        args.result.write_text(json.dumps(asdict(run)))
        return 0

    runs = []
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="latam-pipeline-overload-"))
    workdir.mkdir(parents=True, exist_ok=True)
    for n in streams:
        print(f"{args.messages:,} messages, {n} stream(s)…", flush=True)
        runs.append(run_in_child(n, args.messages, timeout=args.timeout, workdir=workdir))
    print()
    print(table(runs))

    args.out.mkdir(parents=True, exist_ok=True)
    host = f" ({os.cpu_count()} CPUs)"
    pngs = plots(runs, args.out, title="")
    result: dict[str, Any] = {
        "what": "a burst published into a running subscriber; publish → confirmed write",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"loopback emulators{host}",
        "messages": args.messages,
        "objective_s": OBJECTIVE_S,
        "runs": [
            {
                **{k: v for k, v in asdict(run).items() if k not in ("samples", "exact_latencies")},
                **summary(run),
                "histogram": [["+Inf" if math.isinf(le) else le, c] for le, c in run.histogram],
                "samples": [{**asdict(s), "backlog": s.backlog} for s in run.samples],
            }
            for run in runs
        ],
        "plots": [str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p) for p in pngs],
    }
    path = args.out / "pipeline-overload.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {path} and {', '.join(str(p.name) for p in pngs)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except StackError as error:
        print(f"pipeline-overload: {error}", file=sys.stderr)
        sys.exit(1)
