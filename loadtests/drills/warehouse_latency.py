"""Drill 3, warehouse latency: a proxy in front of bqemulator delays every answer by 2 s,
then by more than the API's bound, while messages flow and the API is read.

Two latency proxies (loadtests/latency_proxy.py) stand in front of bqemulator: one before
its REST port (the API's queries and probes), one before its gRPC port (the subscriber's
AppendRows writes); the API and the subscriber are pointed at them. A producer publishes
20 messages a second throughout; API consumers read ids that must reach the warehouse (a
new id each time), ids read just before the delays (cached), and /readyz. The proxies add
2 s to every answer for PHASE_S, then BIGQUERY_TIMEOUT_SECONDS + 2 s for PHASE_S, then
nothing.

Passes when the API answers every request within BIGQUERY_TIMEOUT_SECONDS (+ a margin),
with nothing but 200, 404 and 503 JSON errors with Retry-After (503s once the warehouse
is slower than the bound); cached reads stay 200 and fast; the subscriber's writes slow
down (their mean latency takes the added delay) and fail while the delay is over the
bound, and once it is gone every record is stored, none dead-lettered.
DRILL_PHASE_SECONDS shortens each phase, for development only.
"""

import json
import os
import time

from loadtests.drills import Checks, Outcome, Report
from loadtests.drills.api_traffic import (
    ApiConsumers,
    MetricsSampler,
    Panel,
    SteadyPublisher,
    Window,
    drill_plot,
    percentile,
)
from loadtests.drills.timeline import Timeline
from loadtests.harness import Pipeline, StackError, wait_for
from loadtests.latency_proxy import LatencyProxy

NAME = "warehouse_latency"
PHASE_S = float(os.environ.get("DRILL_PHASE_SECONDS", "25"))
RATE = 20  # messages a second
BEFORE_S = 15  # publishing and reading before the first delay
AFTER_S = 5  # publishing after the last
CACHED_IDS = 20
BOUND_MARGIN_S = 1.0  # over BIGQUERY_TIMEOUT_SECONDS: the request's own work, a busy CPU
CACHED_FAST_S = 1.0  # a cached read's p99 bound
RECOVERY_TIMEOUT_S = 90
SUBSCRIBER_METRICS = {
    "stored": ("latam_ingest_messages_stored_total", {}),
    "received": ("latam_ingest_messages_received_total", {}),
    "outstanding": ("latam_ingest_outstanding_messages", {}),
    "dead_lettered": ("latam_ingest_messages_dead_lettered_total", {}),
    "write_failures": ("latam_ingest_write_failures_total", {}),
    "insert_seconds": ("latam_warehouse_query_duration_seconds_sum", {"operation": "insert"}),
    "inserts": ("latam_warehouse_query_duration_seconds_count", {"operation": "insert"}),
}


def drill(report: Report) -> Outcome:
    checks = Checks()
    figures: dict[str, float | int | str] = {"phase_s": round(PHASE_S)}
    with Pipeline(name="warehouse-latency", redis=True) as pipeline:
        from django.conf import settings

        from records import wiring

        bound = settings.BIGQUERY_TIMEOUT_SECONDS
        cache_ttl = settings.RECORDS_CACHE_TTL
        delays = [2.0, bound + 2.0]
        payloads = pipeline.fake_payloads(
            RATE * round(BEFORE_S + len(delays) * PHASE_S + AFTER_S), seed=303
        )
        ids = [json.loads(payload)["id"] for payload in payloads]
        timeline = Timeline()
        with (
            LatencyProxy(pipeline.ports["bq_rest"]) as rest,
            LatencyProxy(pipeline.ports["bq_grpc"]) as grpc,
        ):
            proxied = {
                "BIGQUERY_EMULATOR_HOST": rest.address,
                "BIGQUERY_EMULATOR_GRPC_HOST": grpc.address,
            }
            subscriber_metrics = pipeline.subscriber_start(env=proxied)
            base_url, _ = pipeline.api_start(workers=2, threads=4, env=proxied)
            consumers = ApiConsumers(base_url, timeline)
            consumers.add("uncached read", lambda n: f"/records/drill-absent-{n}", pause=0.2)
            consumers.add("/readyz", lambda n: "/readyz", pause=0.5)
            publisher = SteadyPublisher(pipeline, payloads, rate=RATE, timeline=timeline)
            sampler = MetricsSampler(timeline, subscriber_metrics, SUBSCRIBER_METRICS, interval=0.5)

            def delay_set(seconds: float) -> float:
                rest.delay = grpc.delay = seconds
                timeline.record("delay", seconds)
                return timeline.now()

            with sampler, publisher, consumers:
                delay_set(0.0)
                published_from = timeline.now()
                wait_for(
                    lambda: pipeline.stored_count() >= CACHED_IDS * 2,
                    timeout=60,
                    what="the first records stored",
                )
                repository = wiring.record_repository()  # direct, not through the proxies
                cached = [i for i in ids[: CACHED_IDS * 2] if repository.record_get(record_id=i)]
                cached = cached[:CACHED_IDS]
                time.sleep(max(published_from + BEFORE_S - 3 - timeline.now(), 0))
                # Read once through the API: cached from now on, for RECORDS_CACHE_TTL.
                warmed = consumers.once("cached read", [f"/records/{i}" for i in cached])
                checks.check(
                    all(a.status == 200 for a in warmed), "a stored record was not found by the API"
                )
                consumers.add(
                    "cached read", lambda n: f"/records/{cached[n % len(cached)]}", pause=0.05
                )
                time.sleep(max(published_from + BEFORE_S - timeline.now(), 0))

                phases: list[tuple[float, float, float]] = []  # (start, end, delay)
                for delay in delays:
                    start = delay_set(delay)
                    time.sleep(PHASE_S)
                    phases.append((start, timeline.now(), delay))
                delay_removed = delay_set(0.0)
                phases.append((published_from, phases[0][0], 0.0))  # the baseline, last

                publisher.join(timeout=RECOVERY_TIMEOUT_S)
                try:
                    stored = wait_for(
                        lambda: pipeline.stored_count() >= len(set(ids)),
                        timeout=RECOVERY_TIMEOUT_S,
                        what="every record stored",
                    )
                    figures["all_stored_s"] = round(timeline.at(stored) - delay_removed, 1)
                except StackError as error:
                    checks.check(False, str(error))
                time.sleep(3)
                timeline.record("delay", 0.0)
            subscriber_alive = pipeline.process("subscriber").poll() is None
            metrics = {name: timeline.last(name) for name in SUBSCRIBER_METRICS}
            final_count = pipeline.stored_count()
            dead_letters = pipeline.dead_letters(limit=10)
            figures["proxied_connections"] = rest.connections + grpc.connections

    # --- what consumers saw ---------------------------------------------------------------
    answers = consumers.of()
    server_errors = [a for a in answers if a.status >= 500 and a.status != 503]
    unanswered = [a for a in answers if a.status == 0]
    unavailable = [a for a in answers if a.status == 503]
    slowest = max((a.seconds for a in answers), default=0.0)
    checks.check(publisher.error is None, f"publishing failed: {publisher.error!r}")
    checks.check(not server_errors, f"{len(server_errors)} answers 5xx other than 503")
    checks.check(not unanswered, f"{len(unanswered)} requests unanswered or refused")
    checks.check(
        all(a.json_error and a.retry_after for a in unavailable),
        "a 503 without its JSON error body or Retry-After",
    )
    checks.check(
        slowest <= bound + BOUND_MARGIN_S,
        f"an answer took {slowest:.1f} s, over the {bound:.0f} s bound + {BOUND_MARGIN_S} s",
    )
    for start, end, delay in phases:
        uncached = consumers.of("uncached read", start=start, end=end)
        tag = f"+{delay:.0f}s"
        figures[f"api_p99_{tag}_s"] = round(percentile((a.seconds for a in uncached), 99), 2)
        figures[f"api_503_{tag}"] = f"{sum(a.status == 503 for a in uncached)}/{len(uncached)}"
        if delay > bound:
            checks.check(
                any(a.status == 503 for a in uncached),
                f"no 503 while the warehouse was {delay:.0f} s slower than the bound",
            )
    figures.update(
        answers=len(answers),
        http_5xx_other=len(server_errors),
        no_answer=len(unanswered),
        slowest_answer_s=round(slowest, 2),
        bound_s=bound,
    )

    cached_reads = consumers.of("cached read")
    cached_at: dict[str, float] = {}
    for answer in cached_reads:
        if answer.status == 200:
            cached_at.setdefault(answer.path, answer.t)
    live = [a for a in cached_reads if a.t < cached_at.get(a.path, -1e9) + cache_ttl - 1]
    delayed = [a for a in live if phases[0][0] <= a.t < delay_removed]
    cached_p99 = percentile((a.seconds for a in delayed), 99)
    figures["cached_200_delayed"] = f"{sum(a.status == 200 for a in delayed)}/{len(delayed)}"
    figures["cached_p99_ms"] = round(cached_p99 * 1000, 1)
    checks.check(bool(delayed), "no cached read while the warehouse was slow")
    checks.check(all(a.status == 200 for a in live), "a cached read within its TTL was not a 200")
    checks.check(cached_p99 <= CACHED_FAST_S, f"cached reads' p99 {cached_p99:.2f} s")

    # --- the subscriber -------------------------------------------------------------------
    def delta(series: str, start: float, end: float) -> float:
        points = [v for t, v in timeline.samples.get(series, []) if start <= t <= end]
        return points[-1] - points[0] if len(points) > 1 else 0.0

    for start, end, delay in phases:
        inserts = delta("inserts", start, end)
        mean = delta("insert_seconds", start, end) / inserts if inserts else 0.0
        figures[f"write_mean_+{delay:.0f}s_s"] = round(mean, 2)
        figures[f"write_failures_+{delay:.0f}s"] = int(delta("write_failures", start, end))
        if delay and delay < bound:
            checks.check(
                mean >= delay, f"writes took {mean:.2f} s on average with {delay:.0f} s added"
            )
        if delay > bound:
            checks.check(
                delta("write_failures", start, end) >= 1,
                f"no write failed while the warehouse was {delay:.0f} s slower than the bound",
            )
    figures.update(
        published=len(ids),
        stored=final_count,
        received=int(metrics["received"]),
        dead_letters=len(dead_letters),
    )
    checks.check(subscriber_alive, "the subscriber exited")
    checks.check(final_count == len(set(ids)), f"stored {final_count} of {len(set(ids))} records")
    checks.check(
        metrics["dead_lettered"] == 0 and not dead_letters, "valid messages were dead-lettered"
    )

    # Mean write latency between samples, for the plot.
    timeline.samples["write_latency"] = [
        (t1, (s1 - s0) / (c1 - c0))
        for (t0, s0), (t1, s1), (_, c0), (_, c1) in zip(
            timeline.samples.get("insert_seconds", []),
            timeline.samples.get("insert_seconds", [])[1:],
            timeline.samples.get("inserts", []),
            timeline.samples.get("inserts", [])[1:],
            strict=False,
        )
        if c1 > c0 and t1 > t0
    ]
    plot = report.path(f"drill-{NAME}.png")
    colours = ["tab:orange", "tab:red"]
    drill_plot(
        plot,
        title="Drill: warehouse latency — every bqemulator answer delayed "
        + ", then ".join(f"{d:.0f} s" for d in delays)
        + f" ({PHASE_S:.0f} s each)\n{RATE} messages/s published; the API read by 3 consumers"
        " (2 gunicorn workers × 4 threads, Redis cache)",
        consumers=consumers,
        timeline=timeline,
        windows=[
            Window(start, end, f"+{delay:.0f} s on every answer", colour=colours[n])
            for n, (start, end, delay) in enumerate(phases[:-1])
        ],
        bound_s=bound,
        bound_label=f"BIGQUERY_TIMEOUT_SECONDS ({bound:.0f} s)",
        panels=[
            Panel(
                {
                    "published": "published (total)",
                    "stored": "stored and acked by the subscriber (total)",
                    "outstanding": "held by the subscriber, unsettled",
                },
                ylabel="messages",
                title="Pipeline: messages published, stored, held",
            ),
            Panel(
                {
                    "write_latency": "subscriber's AppendRows write, mean per 0.5 s",
                    "delay": "delay added by the proxies",
                },
                ylabel="seconds",
                title="Warehouse writes: latency (failed writes count at the bound)",
                steps=("delay",),
            ),
        ],
    )
    return checks.outcome(NAME, figures, plot=plot.name)
