"""Drill 2, warehouse outage: bqemulator stopped for 60 s while messages flow and the API
is read.

A producer publishes 20 messages a second throughout; one subscriber stores them. API
consumers read, one thread each: ids that must reach the warehouse (never cached: a new
id each time, a 404 while the warehouse is up), ids read just before the outage (cached),
and /readyz. Then bqemulator is stopped for OUTAGE_S and started again on its data.

Passes when the API never answers a 5xx other than a 503 JSON error with Retry-After,
nor later than BIGQUERY_TIMEOUT_SECONDS (+ a margin), nor not at all; /readyz fails during
the outage and recovers after it; every cached read within RECORDS_CACHE_TTL of its
caching is a 200; and the subscriber holds (sees the warehouse down, releases nothing,
gets no message twice: no delivery attempt spent), resumes by itself, stores every
record and dead-letters none. DRILL_OUTAGE_SECONDS shortens the outage, for development
only: the drill's report says how long it was.
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

NAME = "warehouse_outage"
OUTAGE_S = float(os.environ.get("DRILL_OUTAGE_SECONDS", "60"))
RATE = 20  # messages a second
BEFORE_S = 15  # publishing and reading before the outage
AFTER_S = 10  # publishing after it
CACHED_IDS = 20
BOUND_MARGIN_S = 1.0  # over BIGQUERY_TIMEOUT_SECONDS: the request's own work, a busy CPU
CACHED_FAST_S = 1.0  # a cached read's p99 bound
RECOVERY_TIMEOUT_S = 90
SUBSCRIBER_METRICS = {
    "stored": ("latam_ingest_messages_stored_total", {}),
    "received": ("latam_ingest_messages_received_total", {}),
    "outstanding": ("latam_ingest_outstanding_messages", {}),
    "warehouse_up": ("latam_ingest_warehouse_up", {}),
    "retried": ("latam_ingest_messages_retried_total", {}),
    "dead_lettered": ("latam_ingest_messages_dead_lettered_total", {}),
}


def drill(report: Report) -> Outcome:
    checks = Checks()
    figures: dict[str, float | int | str] = {"outage_s": round(OUTAGE_S)}
    with Pipeline(name="warehouse-outage", redis=True) as pipeline:
        from django.conf import settings

        from records import wiring

        bound = settings.BIGQUERY_TIMEOUT_SECONDS
        cache_ttl = settings.RECORDS_CACHE_TTL
        payloads = pipeline.fake_payloads(RATE * round(BEFORE_S + OUTAGE_S + AFTER_S), seed=202)
        ids = [json.loads(payload)["id"] for payload in payloads]
        timeline = Timeline()
        subscriber_metrics = pipeline.subscriber_start()
        base_url, _ = pipeline.api_start(workers=2, threads=4)  # Terraform's shape
        consumers = ApiConsumers(base_url, timeline)
        consumers.add("uncached read", lambda n: f"/records/drill-absent-{n}", pause=0.2)
        consumers.add("/readyz", lambda n: "/readyz", pause=0.5)
        publisher = SteadyPublisher(pipeline, payloads, rate=RATE, timeline=timeline)
        sampler = MetricsSampler(timeline, subscriber_metrics, SUBSCRIBER_METRICS, interval=0.5)
        with sampler, publisher, consumers:
            published_from = timeline.now()
            # Ids known stored, read through the API just before the outage: cached then.
            wait_for(
                lambda: pipeline.stored_count() >= CACHED_IDS * 2,
                timeout=60,
                what="the first records stored",
            )
            repository = wiring.record_repository()  # direct, not through the API's cache
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

            stop_requested = timeline.now()
            pipeline.bigquery_stop()
            outage_start = timeline.now()  # its process has exited
            figures["stop_took_s"] = round(outage_start - stop_requested, 1)
            seen_down = wait_for(
                lambda: pipeline.subscriber_metric("subscriber", "latam_ingest_warehouse_up") == 0,
                timeout=OUTAGE_S,
                what="the subscriber to see the warehouse down",
            )
            figures["subscriber_saw_down_s"] = round(timeline.at(seen_down) - outage_start, 1)
            time.sleep(max(outage_start + OUTAGE_S - timeline.now(), 0))
            start_requested = timeline.now()
            pipeline.bigquery_start()
            outage_end = timeline.now()  # it listens again
            figures["restart_took_s"] = round(outage_end - start_requested, 1)

            ready_again = consumers.wait_for(
                "/readyz", lambda a: a.status == 200, after=outage_end, timeout=60
            )
            resumed = wait_for(
                lambda: pipeline.subscriber_metric("subscriber", "latam_ingest_warehouse_up") == 1,
                timeout=RECOVERY_TIMEOUT_S,
                what="the subscriber to write again",
            )
            figures["subscriber_resumed_s"] = round(timeline.at(resumed) - outage_end, 1)
            publisher.join(timeout=RECOVERY_TIMEOUT_S)
            try:
                stored = wait_for(
                    lambda: _count(pipeline) >= len(set(ids)),
                    timeout=RECOVERY_TIMEOUT_S,
                    what="every record stored",
                )
                figures["all_stored_s"] = round(timeline.at(stored) - outage_end, 1)
            except StackError as error:
                checks.check(False, str(error))
            time.sleep(3)  # a few answers after recovery, for the record
        subscriber_alive = pipeline.process("subscriber").poll() is None
        metrics = {name: timeline.last(name) for name in SUBSCRIBER_METRICS}
        final_count = _count(pipeline)
        dead_letters = pipeline.dead_letters(limit=10)

    # --- what consumers saw ---------------------------------------------------------------
    answers = consumers.of()
    server_errors = [a for a in answers if a.status >= 500 and a.status != 503]
    unanswered = [a for a in answers if a.status == 0]
    unavailable = [a for a in answers if a.status == 503]
    slowest = max((a.seconds for a in answers), default=0.0)
    figures.update(
        answers=len(answers),
        http_503=len(unavailable),
        http_5xx_other=len(server_errors),
        no_answer=len(unanswered),
        slowest_answer_s=round(slowest, 2),
        bound_s=bound,
    )
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
    during = consumers.of("uncached read", start=outage_start, end=outage_end)
    checks.check(
        any(a.status == 503 for a in during), "no 503 for uncached reads during the outage"
    )
    readyz_down = consumers.wait_for(
        "/readyz", lambda a: a.status == 503, after=outage_start, timeout=0
    )
    checks.check(
        readyz_down is not None and readyz_down < outage_end, "/readyz never failed in the outage"
    )
    if readyz_down is not None:
        figures["readyz_failed_s"] = round(readyz_down - outage_start, 1)
    checks.check(ready_again is not None, "/readyz did not recover within 60 s")
    if ready_again is not None:
        figures["readyz_recovered_s"] = round(ready_again - outage_end, 1)

    # A cached read is a 200 while its entry lives: RECORDS_CACHE_TTL from its first 200.
    cached_reads = consumers.of("cached read")
    cached_at: dict[str, float] = {}
    for answer in cached_reads:
        if answer.status == 200:
            cached_at.setdefault(answer.path, answer.t)
    live = [a for a in cached_reads if a.t < cached_at.get(a.path, -1e9) + cache_ttl - 1]
    live_in_outage = [a for a in live if outage_start <= a.t < outage_end]
    figures["cached_200_in_outage"] = f"{sum(a.status == 200 for a in live_in_outage)}/" + str(
        len(live_in_outage)
    )
    # Past their TTL, cached entries are gone: those reads reach the warehouse (503s).
    alive = set(live)
    expired = [a for a in cached_reads if outage_start <= a.t < outage_end and a not in alive]
    figures["cached_200_past_ttl"] = f"{sum(a.status == 200 for a in expired)}/{len(expired)}"
    cached_p99 = percentile((a.seconds for a in live), 99)
    figures["cached_p99_ms"] = round(cached_p99 * 1000, 1)
    checks.check(bool(live_in_outage), "no cached read during the outage")
    checks.check(all(a.status == 200 for a in live), "a cached read within its TTL was not a 200")
    checks.check(cached_p99 <= CACHED_FAST_S, f"cached reads' p99 {cached_p99:.2f} s")

    # --- the subscriber -------------------------------------------------------------------
    figures.update(
        published=len(ids),
        stored=final_count,
        received=int(metrics["received"]),
        released=int(metrics["retried"]),
        dead_letters=len(dead_letters),
    )
    checks.check(subscriber_alive, "the subscriber exited")
    checks.check(final_count == len(set(ids)), f"stored {final_count} of {len(set(ids))} records")
    checks.check(
        metrics["received"] == len(ids),
        f"{metrics['received']:.0f} deliveries for {len(ids)} messages: attempts were spent",
    )
    checks.check(metrics["retried"] == 0, "the subscriber gave messages back")
    checks.check(
        metrics["dead_lettered"] == 0 and not dead_letters, "valid messages were dead-lettered"
    )

    plot = report.path(f"drill-{NAME}.png")
    drill_plot(
        plot,
        title=f"Drill: warehouse outage — bqemulator stopped for {OUTAGE_S:.0f} s\n{RATE}"
        " messages/s published; the API read by 3 consumers (2 gunicorn workers × 4 threads,"
        " Redis cache)",
        consumers=consumers,
        timeline=timeline,
        windows=[
            Window(stop_requested, outage_start, "bqemulator stopping", colour="tab:purple"),
            Window(outage_start, start_requested, f"bqemulator down ({OUTAGE_S:.0f} s)"),
            Window(start_requested, outage_end, "bqemulator restarting", colour="tab:gray"),
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
                {"warehouse_up": "latam_ingest_warehouse_up"},
                ylabel="1 up / 0 down",
                title="The subscriber's view of the warehouse (writes succeed)",
                steps=("warehouse_up",),
                height=0.5,
            ),
        ],
    )
    return checks.outcome(NAME, figures, plot=plot.name)


def _count(pipeline: Pipeline) -> int:
    """Distinct ids stored, or -1 while the warehouse does not answer (just restarted)."""
    from records.repository import WarehouseUnavailable

    try:
        return pipeline.stored_count()
    except WarehouseUnavailable:
        return -1
