"""Drill 4, cache outage: Redis (the API's shared cache) stopped under load, then started
again.

The warehouse is seeded with 2,000 records; API consumers read back to back: skewed
point reads (80 % of them on 50 hot ids), list pages, and /readyz. Redis is stopped for
DOWN_S, then started again (empty, as a failed-over Memorystore may come back).

Passes when the API keeps answering while Redis is away — from the warehouse: 200s, or
honest 503 JSON errors with Retry-After if the warehouse cannot keep up, never another
5xx, never later than BIGQUERY_TIMEOUT_SECONDS (+ a margin) — and when Redis is back the
cache serves hits again (the API's own metrics, on its metrics port) and the warehouse
queries per request fall back. DRILL_CACHE_DOWN_SECONDS shortens the outage, for
development only.
"""

import os
import random
import time

import requests

from loadtests.drills import Checks, Outcome, Report
from loadtests.drills.api_traffic import (
    ApiConsumers,
    MetricsSampler,
    Panel,
    Window,
    drill_plot,
    percentile,
    rate_series,
)
from loadtests.drills.timeline import Timeline
from loadtests.harness import Pipeline, StackError

NAME = "cache_outage"
DOWN_S = float(os.environ.get("DRILL_CACHE_DOWN_SECONDS", "30"))
BEFORE_S = 20
AFTER_S = 30
RECORDS = 2000
HOT = 50  # ids that take 80 % of point reads
BOUND_MARGIN_S = 1.0  # over BIGQUERY_TIMEOUT_SECONDS: the request's own work, a busy CPU
API_METRICS = {
    "cache_hits": ("latam_cache_requests_total", {"result": "hit"}),
    "cache_misses": ("latam_cache_requests_total", {"result": "miss"}),
    "warehouse_queries": ("latam_warehouse_queries_total", {}),
}


def drill(report: Report) -> Outcome:
    checks = Checks()
    figures: dict[str, float | int | str] = {"redis_down_s": round(DOWN_S)}
    with Pipeline(name="cache-outage", redis=True) as pipeline:
        from django.conf import settings

        bound = settings.BIGQUERY_TIMEOUT_SECONDS
        pipeline.manage("seed", "--count", str(RECORDS), "--seed", "404", timeout=120)
        base_url, api_metrics = pipeline.api_start(workers=2, threads=4)  # Terraform's shape
        ids = _ids(base_url)
        checks.check(len(ids) == RECORDS, f"the API lists {len(ids)} of {RECORDS} records")
        hot, cold = ids[:HOT], ids[HOT:]

        def point(seed: int):
            rng = random.Random(seed)
            return lambda n: f"/records/{rng.choice(hot if rng.random() < 0.8 else cold)}"

        timeline = Timeline()
        consumers = ApiConsumers(base_url, timeline)
        for seed in (1, 2):
            consumers.add("point read", point(seed))
        consumers.add("list page", lambda n: f"/records?limit=100&offset={100 * (n % 20)}")
        consumers.add("/readyz", lambda n: "/readyz", pause=0.5)
        sampler = MetricsSampler(timeline, api_metrics, API_METRICS, interval=1.0)
        with sampler, consumers:
            time.sleep(BEFORE_S)
            stop_requested = timeline.now()
            pipeline.redis_stop()
            down = timeline.now()
            time.sleep(DOWN_S)
            start_requested = timeline.now()
            pipeline.redis_start()
            up = timeline.now()
            figures["redis_restart_s"] = round(up - start_requested, 1)
            time.sleep(AFTER_S)
            end = timeline.now()
        api_alive = pipeline.process("api").poll() is None
        # django-redis logs each operation it ignores, with its traceback (not a check:
        # what an outage costs in log volume).
        log = (pipeline.workdir / "logs" / "api.log").read_text(errors="replace")
        figures["api_error_log_lines"] = sum(
            '"severity": "ERROR"' in line for line in log.splitlines()
        )

    # --- what consumers saw ---------------------------------------------------------------
    answers = consumers.of()
    server_errors = [a for a in answers if a.status >= 500 and a.status != 503]
    unanswered = [a for a in answers if a.status == 0]
    unavailable = [a for a in answers if a.status == 503]
    slowest = max((a.seconds for a in answers), default=0.0)
    checks.check(api_alive, "the API exited")
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
    figures.update(
        answers=len(answers),
        http_503=len(unavailable),
        http_5xx_other=len(server_errors),
        no_answer=len(unanswered),
        slowest_answer_s=round(slowest, 2),
    )

    # Reads per phase: answered 200 (from the cache, or the warehouse while Redis is away),
    # their latency, and warehouse queries per read (the API's own counters).
    phases = {
        "before": (0.0, stop_requested),
        "down": (down, start_requested),
        "after": (up + AFTER_S / 2, end),  # once the emptied cache is warm again
    }
    ratio: dict[str, float] = {}
    for phase, (start, finish) in phases.items():
        reads = [a for a in consumers.of(start=start, end=finish) if a.kind != "/readyz"]
        ok = sum(a.status == 200 for a in reads)
        figures[f"reads_200_{phase}"] = f"{ok}/{len(reads)}"
        figures[f"reads_per_s_{phase}"] = round(len(reads) / max(finish - start, 1e-9))
        figures[f"p99_{phase}_ms"] = round(percentile((a.seconds for a in reads), 99) * 1000)
        queries = _delta(timeline, "warehouse_queries", start, finish)
        ratio[phase] = queries / len(reads) if reads else 0.0
        figures[f"queries_per_read_{phase}"] = round(ratio[phase], 2)
        hits = _delta(timeline, "cache_hits", start, finish)
        lookups = hits + _delta(timeline, "cache_misses", start, finish)
        figures[f"hit_ratio_{phase}"] = round(hits / lookups, 2) if lookups else 0.0
        if phase == "down":
            checks.check(
                bool(reads) and ok / len(reads) >= 0.9,
                f"only {ok} of {len(reads)} reads answered 200 while Redis was down",
            )
    checks.check(
        ratio["down"] > ratio["before"],
        "reads did not go to the warehouse while Redis was down",
    )
    checks.check(
        float(figures["hit_ratio_after"]) >= 0.5 and ratio["after"] < ratio["down"],
        "the cache did not serve hits again once Redis was back",
    )

    rate_series(timeline, "cache_hits", "hits_per_s")
    rate_series(timeline, "cache_misses", "misses_per_s")
    rate_series(timeline, "warehouse_queries", "queries_per_s")
    plot = report.path(f"drill-{NAME}.png")
    drill_plot(
        plot,
        title=f"Drill: cache outage — Redis stopped for {DOWN_S:.0f} s under load, then "
        "restarted empty\n4 consumers back to back (2 skewed point readers, 1 pager, /readyz); "
        "2 gunicorn workers × 4 threads",
        consumers=consumers,
        timeline=timeline,
        windows=[
            Window(stop_requested, start_requested, f"Redis down ({DOWN_S:.0f} s)"),
            Window(start_requested, up, "Redis restarting", colour="tab:gray"),
        ],
        bound_s=bound,
        bound_label=f"BIGQUERY_TIMEOUT_SECONDS ({bound:.0f} s)",
        panels=[
            Panel(
                {
                    "hits_per_s": "cache hits",
                    "misses_per_s": "cache misses (computed from the warehouse)",
                    "queries_per_s": "warehouse queries",
                },
                ylabel="per second (log above 1)",
                log=True,
                title="The API's own counters (metrics port): cache hits, misses, warehouse "
                "queries",
            )
        ],
    )
    return checks.outcome(NAME, figures, plot=plot.name)


def _ids(base_url: str) -> list[str]:
    """Every id, by walking GET /records 1,000 at a time (which also warms the cache)."""
    ids: list[str] = []
    url: str | None = f"{base_url}/records?limit=1000"
    with requests.Session() as session:
        while url:
            response = session.get(url, timeout=30)
            if response.status_code != 200:
                raise StackError(f"GET /records answered {response.status_code}")
            ids += [record["id"] for record in response.json()]
            url = response.links.get("next", {}).get("url")
    return ids


def _delta(timeline: Timeline, series: str, start: float, end: float) -> float:
    """How much a counter series grew between its first and last sample in [start, end]."""
    points = [v for t, v in timeline.samples.get(series, []) if start <= t <= end]
    return points[-1] - points[0] if len(points) > 1 else 0.0
