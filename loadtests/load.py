"""`make load`: the records API under locust, within its capacity and past it.

Starts the local stack in its production configuration (loadtests.harness.Pipeline:
bqemulator, a shared Redis cache; gunicorn from gunicorn.conf.py as in the image, with the
environment Terraform gives the Cloud Run service: 2 workers × 4 threads, DJANGO_DEBUG
false, API_THROTTLE_RATE 100/second per client address behind one trusted proxy,
LOG_LEVEL INFO), seeds --records records, then runs loadtests/locustfile.py headless
twice, each a fixed time:

  steady    --users consumers (default workers × threads: within capacity);
  overload  the same consumers, a burst client (one address, many connections, no
            pause, point reads) and a scanner (another address, unknown ids: a warehouse
            query each), --overload-users in all (default 6 × workers × threads); then
            the load drops back to the steady consumers for --recovery-seconds.

It prints one PASS/FAIL line per check (locust's thresholds, and from locust's stats and
failures CSVs: only honest answers — 429 with Retry-After, 503 JSON, never a 500 nor a
hang past the request timeout —, the throttle hitting the aggressive clients only,
latency bounded, recovery after the drop) and exits non-zero when one fails. Results in
docs/critical-points/: load-<phase>-{stats,failures,history}.csv (locust's),
load-<phase>-seconds.csv (exact per-second percentiles and outcomes), load.json (the
headline figures) and load-<phase>.png (throughput and latency over time).

Bounded: loopback only, fixed durations, every process stopped at the end.
"""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests import loadcheck
from loadtests.harness import Pipeline
from loadtests.loadcheck import BURST, REFUSED, SCAN, Limits, Second, Verdict
from scripts.devstack import REPO, metric_total

OUT = REPO / "docs" / "critical-points"
CONSUMERS = ("PointReader", "Pager", "CarelessClient")
# What Terraform sets on the API service (terraform/modules/run/main.tf, variables.tf
# defaults), but API_MAX_OFFSET: scaled to the seeded collection so that walks by links
# cross from offset pages to cursor pages within it, as they do at production size.
PRODUCTION_API_ENV = {
    "DJANGO_DEBUG": "false",
    "API_NUM_PROXIES": "1",
    "API_THROTTLE_RATE": "100/second",
    "LOG_LEVEL": "INFO",
    "API_MAX_OFFSET": "2000",
}


def locust_run(
    *,
    name: str,
    base_url: str,
    workdir: Path,
    args: argparse.Namespace,
    limits: Limits,
    seconds: int,
    users: int = 0,
    stages: str = "",
) -> tuple[int, Path]:
    """Run locust headless for `seconds` (`users` consumers, or `stages`); return its exit
    code and its CSV prefix."""
    prefix = workdir / name
    env = {
        **os.environ,
        "LOCUST_RECORDS": str(args.records),
        "LOCUST_SEED": str(args.seed),
        "LOCUST_REQUEST_TIMEOUT": str(args.request_timeout),
        "LOCUST_MAX_FAIL_RATIO": str(limits.max_fail_ratio),
        "LOCUST_MAX_REFUSED_RATIO": str(limits.max_refused_ratio),
        "LOCUST_MAX_P95_MS": str(limits.max_p95_ms),
        "LOCUST_MAX_P99_MS": str(limits.max_p99_ms),
        "LOCUST_TIMELINE": f"{prefix}_seconds.csv",
        "LOCUST_STAGES": stages,
        "API_MAX_OFFSET": PRODUCTION_API_ENV["API_MAX_OFFSET"],
    }
    command = [
        str(Path(sys.executable).parent / "locust"),
        "-f",
        "loadtests/locustfile.py",
        "--headless",
        "--host",
        base_url,
        "--csv",
        str(prefix),
        "--csv-full-history",
        "--only-summary",
        "--stop-timeout",
        "0",
    ]
    if not stages:  # the stages end the run by themselves
        command += ["--run-time", f"{seconds}s", "-u", str(users), "-r", str(users), *CONSUMERS]
    log = workdir / f"locust-{name}.log"
    with log.open("w") as handle:
        code = subprocess.run(
            command, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT,
            timeout=seconds + 120, check=False,
        ).returncode  # fmt: skip
    for line in log.read_text(errors="replace").splitlines():
        if "threshold " in line:
            print(f"  locust {line.split('threshold ', 1)[1]}")
    return code, prefix


def warm_up(base_url: str) -> int:
    """What a consumer syncing the collection does before the run: every page of 1,000 by
    following `Link rel="next"` (offset pages, then cursor pages), which also primes the
    point-read cache as in production after a sync."""
    url: str | None = f"{base_url}/records?limit=1000"
    pages = 0
    while url and pages < 1000:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - loopback
            response.read()
            url = loadcheck.link_next(response.headers.get("Link", ""))
        pages += 1
    return pages


@dataclass
class Phase:
    seconds: list[Second]
    figures: dict
    verdicts: list[Verdict]


def phase_run(
    name: str, *, base_url: str, metrics_url: str, limits: Limits, seconds: int, **kwargs: Any
) -> tuple[Phase, dict[str, Path]]:
    """One locust run; its figures (with the warehouse queries it caused, from the API's
    own metrics) and the verdict of locust's thresholds."""
    queries = metric_total(metrics_url, "latam_warehouse_queries_total")
    print(f"\n{name}: locust for {seconds} s", flush=True)
    code, prefix = locust_run(
        name=name, base_url=base_url, limits=limits, seconds=seconds, **kwargs
    )
    queries = metric_total(metrics_url, "latam_warehouse_queries_total") - queries
    files = keep(prefix, name)
    timeline = loadcheck.timeline_read(files["seconds"])
    figures = {**summary(files, timeline, duration=seconds), "warehouse_queries": int(queries)}
    verdict = Verdict(f"{name}: locust thresholds", code == 0, f"exit code {code}")
    return Phase(timeline, figures, [verdict]), files


def keep(prefix: Path, name: str) -> dict[str, Path]:
    """Copy the CSVs worth keeping to docs/critical-points/load-<name>-*.csv (the history
    with its figures rounded to 0.01: a third of its size)."""
    kept = {}
    for suffix, kind in (
        ("stats", "stats"),
        ("failures", "failures"),
        ("stats_history", "history"),
        ("seconds", "seconds"),
    ):
        target = OUT / f"load-{name}-{kind}.csv"
        source = Path(f"{prefix}_{suffix}.csv")
        if kind == "history":
            with source.open(newline="") as reading, target.open("w", newline="") as writing:
                writer = csv.writer(writing)
                for row in csv.reader(reading):
                    writer.writerow([_rounded(cell) for cell in row])
        else:
            shutil.copyfile(source, target)
        kept[kind] = target
    return kept


def _rounded(cell: str) -> str:
    if "." not in cell:
        return cell
    try:
        return f"{float(cell):.2f}".rstrip("0").rstrip(".")
    except ValueError:
        return cell


def summary(files: dict[str, Path], seconds: list[Second], duration: float) -> dict:
    stats = loadcheck.csv_rows(files["stats"])
    failure_rows = loadcheck.csv_rows(files["failures"])
    totals = loadcheck.totals_from(stats, loadcheck.failures_from(failure_rows))
    aggregated = next(r for r in stats if r["Name"] == "Aggregated")
    return {
        "requests": totals.requests,
        "req_per_s": round(totals.requests / duration, 1),
        "p50_ms": float(aggregated["50%"]),
        "p95_ms": totals.p95_ms,
        "p99_ms": totals.p99_ms,
        "max_ms": round(totals.max_ms, 1),
        "status_counts": loadcheck.status_counts(stats, failure_rows),
        "failures": dict(sorted(totals.failures.items(), key=lambda item: -item[1])),
        "unexpected": totals.unexpected,
        "refused": totals.refused,
        "peak_users": max((s.users for s in seconds), default=0),
        "by_name": {
            r["Name"]: {
                "requests": int(r["Request Count"]),
                "failures": int(r["Failure Count"]),
                **{f"p{q}_ms": float(r[f"{q}%"]) for q in (50, 95, 99)},
            }
            for r in stats
            if r["Name"] != "Aggregated"
        },
    }


def overload_checks(
    files: dict[str, Path],
    seconds: list[Second],
    *,
    args: argparse.Namespace,
    healthy_p50_ms: float,
) -> tuple[list[Verdict], dict]:
    failure_rows = loadcheck.csv_rows(files["failures"])
    stats = loadcheck.csv_rows(files["stats"])
    totals = loadcheck.totals_from(stats, loadcheck.failures_from(failure_rows))
    counts = loadcheck.status_counts(stats, failure_rows)
    unexpected = {m: n for m, n in totals.failures.items() if not m.startswith(loadcheck.REFUSED)}

    def dishonest(status: int) -> int:
        return sum(n for m, n in unexpected.items() if m.startswith(f"HTTP {status}:"))

    refused_429 = sum(n for m, n in totals.failures.items() if m.startswith(f"{REFUSED}HTTP 429"))
    throttled_consumers = sum(
        int(r["Occurrences"])
        for r in failure_rows
        if "HTTP 429" in r["Error"] and r["Name"] not in (BURST, SCAN)
    )
    dropped = loadcheck.drop_time(seconds)
    during = [s for s in seconds if dropped is None or s.t < dropped]
    worst_p99 = max((s.p99 for s in during if s.requests), default=0.0)
    recovery = (
        None
        if dropped is None
        else loadcheck.recovery_time(seconds, dropped=dropped, max_p50_ms=healthy_p50_ms)
    )
    timeout_ms = args.request_timeout * 1000
    verdicts = [
        Verdict(
            "honest answers",
            not unexpected,
            "only expected answers and honest 429/503"
            if not unexpected
            else "; ".join(f"{n} × {m}" for m, n in unexpected.items()),
        ),
        Verdict(
            "throttled with Retry-After",
            refused_429 > 0 and dishonest(429) == 0,
            f"{refused_429} × 429 with Retry-After and a JSON error, {dishonest(429)} without",
        ),
        Verdict(
            "throttle hits the aggressive clients only",
            throttled_consumers == 0,
            f"{throttled_consumers} × 429 to consumers at their own addresses",
        ),
        Verdict(
            "503 only as JSON with Retry-After",
            dishonest(503) == 0,
            f"{counts.get('503', 0) - dishonest(503)} × 503 with Retry-After and a JSON error "
            f"(the warehouse as the limit), {dishonest(503)} without",
        ),
        Verdict(
            "no hang",
            totals.max_ms < timeout_ms and counts.get("no answer", 0) == 0,
            f"slowest answer {totals.max_ms:.0f} ms, {counts.get('no answer', 0)} without "
            f"answer, request timeout {timeout_ms:.0f} ms",
        ),
        Verdict(
            "latency bounded by the queue",
            0 < worst_p99 <= args.overload_max_p99_ms,
            f"worst one-second p99 under overload {worst_p99:.0f} ms, "
            f"limit {args.overload_max_p99_ms:.0f} ms",
        ),
        Verdict(
            "recovers when the load drops",
            recovery is not None and recovery <= args.recovery_seconds - 5,
            "not healthy again before the end"
            if recovery is None
            else f"healthy (no refusal, one-second p50 ≤ {healthy_p50_ms:.1f} ms: twice the "
            f"steady run's worst second) {recovery} s after the drop, and to the end",
        ),
    ]
    # Little's law: the answer time the queue explains (users in flight / throughput).
    overload_rps = sum(s.requests for s in during) / max(len(during), 1)
    peak = max((s.users for s in during), default=0)
    figures = {
        "recovery_s": recovery,
        "drop_at_s": dropped,
        "worst_second_p99_ms": worst_p99,
        "overload_stage_req_per_s": round(overload_rps, 1),
        "overload_stage_outcomes": {
            name: sum(getattr(s, name) for s in during) for name in loadcheck.OUTCOMES
        },
        "overload_stage_mean_ms_by_littles_law": round(1000 * peak / overload_rps, 1)
        if overload_rps
        else None,
        "recovery_stage": _stage(seconds, dropped),
    }
    return verdicts, figures


def _stage(seconds: list[Second], start: int | None) -> dict:
    """Figures of the seconds from `start` on, the first 5 s (the drop itself) left out."""
    if start is None:
        return {}
    tail = [s for s in seconds if s.t >= start + 5 and s.requests]
    if not tail:
        return {}
    return {
        "req_per_s": round(sum(s.requests for s in tail) / len(tail), 1),
        "median_second_p50_ms": sorted(s.p50 for s in tail)[len(tail) // 2],
        "median_second_p95_ms": sorted(s.p95 for s in tail)[len(tail) // 2],
        "refused_or_failed": sum(s.throttled + s.unavailable + s.unexpected for s in tail),
    }


def plot(name: str, seconds: list[Second], *, title: str, phases: list[tuple[float, str]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t for s in seconds]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
    top.stackplot(
        t,
        [s.ok for s in seconds],
        [s.throttled for s in seconds],
        [s.unavailable for s in seconds],
        [s.unexpected for s in seconds],
        labels=["answered as expected (200/404/400)", "429 throttled", "503 unavailable",
                "unexpected (5xx, timeout, wrong body)"],
        colors=["#4c72b0", "#dd8452", "#c44e52", "#000000"],
        step="post",
    )  # fmt: skip
    top.set_ylabel("answers per second (req/s)")
    top.set_ylim(0, max((s.requests for s in seconds), default=1) * 1.15 + 1)  # room for labels
    top.set_title(title)
    users = top.twinx()
    users.step(
        t, [s.users for s in seconds], where="post", color="#55a868",
        label="locust users (right axis)",
    )  # fmt: skip
    users.set_ylabel("locust users")
    users.set_ylim(0, max(s.users for s in seconds) * 1.3 + 1)
    for label, q, style in (("p50", "p50", "-"), ("p95", "p95", "--"), ("p99", "p99", ":")):
        bottom.plot(
            t, [getattr(s, q) for s in seconds], style, label=f"latency {label}",
            drawstyle="steps-post",
        )  # fmt: skip
    bottom.set_yscale("log")
    bottom.set_ylabel("latency per second (ms, log scale)")
    bottom.set_xlabel("time since start (s)")
    bottom.grid(True, which="both", alpha=0.3)
    end = t[-1] + 1 if t else 0
    bounds = [start for start, _ in phases] + [end]
    for axis in (top, bottom):
        for i, (start, _label) in enumerate(phases):
            axis.axvspan(start, bounds[i + 1], color=("#eeeeee", "#ffffff")[i % 2], zorder=0)
            if i:
                axis.axvline(start, color="grey", linestyle="--", linewidth=1)
    for i, (start, label) in enumerate(phases):
        top.text(
            (start + bounds[i + 1]) / 2, 0.98, label, transform=top.get_xaxis_transform(),
            ha="center", va="top", fontsize=9, color="#333333",
        )  # fmt: skip
    handles, labels = [], []
    for axis in (top, users, bottom):
        more_handles, more_labels = axis.get_legend_handles_labels()
        handles += more_handles
        labels += more_labels
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path = OUT / f"load-{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--users", type=int, default=0, help="steady (default: workers×threads)")
    parser.add_argument("--steady-seconds", type=int, default=60)
    parser.add_argument("--overload-users", type=int, default=0, help="default: 6×capacity")
    parser.add_argument("--overload-seconds", type=int, default=60)
    parser.add_argument("--recovery-seconds", type=int, default=30)
    parser.add_argument(
        "--scanners",
        type=int,
        default=8,
        help="of the overload users, how many scan unknown ids from a second address",
    )
    parser.add_argument("--request-timeout", type=float, default=10.0)
    # Steady: p95 as the production alert (alert_latency_p95_ms); every answer under
    # overload within the warehouse bound (BIGQUERY_TIMEOUT_SECONDS) — on the emulator.
    parser.add_argument("--max-p95-ms", type=float, default=1000.0, help="steady")
    parser.add_argument("--max-p99-ms", type=float, default=2000.0, help="steady")
    parser.add_argument("--overload-max-p99-ms", type=float, default=5000.0)
    args = parser.parse_args()
    capacity = args.workers * args.threads
    args.users = args.users or capacity
    args.overload_users = args.overload_users or 6 * capacity
    OUT.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="latam-load-"))

    steady_limits = Limits(
        max_fail_ratio=0.0,
        max_refused_ratio=0.0,
        max_p95_ms=args.max_p95_ms,
        max_p99_ms=args.max_p99_ms,
    )
    overload_limits = Limits(
        max_fail_ratio=0.0,
        max_refused_ratio=1.0,
        max_p95_ms=args.overload_max_p99_ms,
        max_p99_ms=args.overload_max_p99_ms,
    )
    # The steady consumers (weights 5/2/1) first, then on top of them the burst client and
    # the scanners, if any (locust stops the users it started last first), then the
    # consumers alone again.
    burst = args.overload_users - args.users - args.scanners
    stages = (
        f"1:{args.users}:{'+'.join(CONSUMERS)} "
        f"1:{args.users + burst}:Burst "
        f"{args.overload_seconds - 2}:{args.overload_users}:Scanner "
        f"{args.recovery_seconds}:{args.users}:{'+'.join(CONSUMERS)}"
    )
    results: dict = {}
    verdicts: list[Verdict] = []
    started = time.monotonic()
    with Pipeline(name="load", redis=True) as pipeline:
        pipeline.manage("seed", "--count", str(args.records), "--seed", str(args.seed))
        base_url, metrics_url = pipeline.api_start(
            workers=args.workers, threads=args.threads, env=PRODUCTION_API_ENV
        )
        pages = warm_up(base_url)
        print(
            f"stack up, {args.records} records seeded, cache warmed by {pages} pages "
            f"({time.monotonic() - started:.0f} s); "
            f"API {base_url}, gunicorn {args.workers}×{args.threads} = {capacity} in flight",
            flush=True,
        )
        title = (
            f"gunicorn {args.workers}×{args.threads}, Redis cache, throttle 100/s per client, "
            f"{args.records:,} records"
        )
        run = {"base_url": base_url, "metrics_url": metrics_url, "workdir": workdir, "args": args}
        steady, _ = phase_run(
            "steady", limits=steady_limits, users=args.users, seconds=args.steady_seconds, **run
        )
        results["steady"] = steady.figures
        verdicts += steady.verdicts
        plot(
            "steady",
            steady.seconds,
            title=f"records API, steady load: {title}",
            phases=[(0.0, f"steady: {args.users} consumers (= workers × threads)")],
        )
        overload, files = phase_run(
            "overload",
            limits=overload_limits,
            stages=stages,
            seconds=args.overload_seconds + args.recovery_seconds,
            **run,
        )
        # Healthy again: the median answer within twice the steady run's worst second (its
        # first seconds, while locust starts, left out); queueing shows there first.
        healthy = 2 * max((s.p50 for s in steady.seconds[3:] if s.requests), default=0.0)
        more, figures = overload_checks(
            files, overload.seconds, args=args, healthy_p50_ms=healthy or args.max_p95_ms
        )
        results["overload"] = {**overload.figures, **figures, "healthy_p50_ms": healthy}
        verdicts += overload.verdicts + [
            Verdict(f"overload: {v.check}", v.ok, v.detail) for v in more
        ]
        plot(
            "overload",
            overload.seconds,
            title=f"records API, overload then recovery: {title}",
            phases=[
                (
                    0.0,
                    f"overload: {args.users} consumers + {burst} burst users (one address)"
                    + (f" + {args.scanners} scanners" if args.scanners else ""),
                ),
                (float(figures["drop_at_s"] or 0), f"recovery: {args.users} consumers"),
            ],
        )
    for name in ("steady", "overload"):
        r = results[name]
        print(
            f"\n{name}: {r['requests']} requests, {r['req_per_s']} req/s, p50 {r['p50_ms']:.0f} "
            f"ms, p95 {r['p95_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, max {r['max_ms']:.0f} ms, "
            f"warehouse queries {r['warehouse_queries']}; statuses {r['status_counts']}"
        )
    overload = results["overload"]
    print(
        f"overload stage ({overload['drop_at_s']} s, {overload['peak_users']} users): "
        f"{overload['overload_stage_req_per_s']} req/s, worst one-second p99 "
        f"{overload['worst_second_p99_ms']:.0f} ms; outcomes {overload['overload_stage_outcomes']}"
    )
    recovery = overload.get("recovery_stage", {})
    print(
        f"recovery: healthy {results['overload']['recovery_s']} s after the drop; then "
        f"{recovery.get('req_per_s')} req/s, median one-second p95 "
        f"{recovery.get('median_second_p95_ms')} ms"
    )
    print()
    for verdict in verdicts:
        print(verdict.line())
    results["setup"] = {
        "records": args.records,
        "gunicorn": f"{args.workers}x{args.threads}",
        "cache": "redis (shared)",
        "api_env": PRODUCTION_API_ENV,
        "steady_users": args.users,
        "steady_seconds": args.steady_seconds,
        "overload_users": args.overload_users,
        "overload_seconds": args.overload_seconds,
        "recovery_seconds": args.recovery_seconds,
        "request_timeout_s": args.request_timeout,
        "run_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    results["checks"] = [vars(v) for v in verdicts]
    (OUT / "load.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    failed = [v for v in verdicts if not v.ok]
    print(f"\nload: {len(verdicts) - len(failed)} passed, {len(failed)} failed; {OUT}/load.json")
    print(f"locust's logs: {workdir}")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "latam.settings")
    sys.exit(main())
