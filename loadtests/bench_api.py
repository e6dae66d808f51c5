"""`make bench-api`: GET /records/<id> under an 80/20 id mix, cold then warm cache.

Starts its own bqemulator, Redis (the production cache backend, shared by the gunicorn
workers) and gunicorn on free loopback ports (a running `make run` is left alone), seeds
10,000 records, then drives the API with wrk from a second process:

  cold  empty cache, fixed time;
  warm  after a consumer has paged through GET /records?limit=1000 (which primes the
        point-read cache), fixed time.

It prints req/s, p50/p99 latency and warehouse queries per 1,000 requests, read from the
server's own Prometheus counters (on its metrics port, API_METRICS_PORT). Bounded:
loopback only, fixed durations, everything stopped at the end. Results also go to
bench-results/api.json.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from scripts.devstack import REPO, Stack, StackError, free_port, metric_total

WRK_SCRIPT = """
local hot, cold = {}, {}
%(ids)s
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  local pool = (math.random() < 0.8) and hot or cold
  return wrk.format("GET", "/records/" .. pool[math.random(#pool)])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout + summary.errors.status))
end
"""


def debian_binary(name: str, package: str) -> str:
    """A tool from Debian's packages, installed when missing and we are root."""
    found = shutil.which(name)
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing {package} (apt-get install {package})…", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", package], check=False, timeout=600)
        found = shutil.which(name)
    if not found:
        raise StackError(f"{name} is required: apt-get install {package}")
    return found


def run_phase(
    *, name: str, base_url: str, metrics_url: str, script: Path, seconds: int, connections: int
) -> dict:
    queries_before = metric_total(metrics_url, "latam_warehouse_queries_total", operation="get")
    result = subprocess.run(
        [
            debian_binary("wrk", "wrk"),
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            f"{base_url}/records/",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", result.stdout)
    if not match:
        raise StackError(f"wrk printed no result:\n{result.stdout}\n{result.stderr}")
    requests, duration_us, p50_us, p99_us, errors = map(int, match.groups())
    queries = metric_total(metrics_url, "latam_warehouse_queries_total", operation="get")
    queries -= queries_before
    return {
        "phase": name,
        "requests": requests,
        "errors": errors,
        "req_per_s": round(requests / (duration_us / 1e6), 1),
        "p50_ms": round(p50_us / 1000, 2),
        "p99_ms": round(p99_us / 1000, 2),
        "warehouse_queries": int(queries),
        "queries_per_1000": round(queries * 1000 / max(requests, 1), 2),
    }


def page_through(base_url: str, *, total: int) -> int:
    """What a consumer syncing the collection does: GET every page of 1,000 once."""
    pages = 0
    for offset in range(0, total, 1000):
        url = f"{base_url}/records?limit=1000&offset={offset}"
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback
            response.read()
        pages += 1
    return pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=20, help="duration of each phase")
    parser.add_argument(
        "--connections",
        type=int,
        default=None,
        help="concurrent connections (default: workers × threads, as Cloud Run's concurrency)",
    )
    parser.add_argument("--workers", default=os.environ.get("GUNICORN_WORKERS", "4"))
    parser.add_argument("--threads", default=os.environ.get("GUNICORN_THREADS", "2"))
    args = parser.parse_args()
    args.connections = args.connections or int(args.workers) * int(args.threads)

    workdir = Path(tempfile.mkdtemp(prefix="latam-bench-"))
    stack = Stack(log_dir=workdir / "logs")
    rest_port, api_port, redis_port = free_port(), free_port(), free_port()
    metrics_port, grpc_port = free_port(), free_port()
    env = {
        "CACHE_URL": f"redis://127.0.0.1:{redis_port}/0",
        "BIGQUERY_EMULATOR_HOST": f"127.0.0.1:{rest_port}",
        "BIGQUERY_EMULATOR_GRPC_HOST": f"127.0.0.1:{grpc_port}",
        "PUBSUB_EMULATOR_HOST": "",
        "GCP_PROJECT": "latam-bench",
        "DJANGO_ENV_FILE": os.devnull,
        "GUNICORN_WORKERS": str(args.workers),
        "GUNICORN_THREADS": str(args.threads),
    }
    os.environ.update(env)
    try:
        redis = debian_binary("redis-server", "redis-server")
        stack.start(
            "redis",
            [
                redis,
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        )
        stack.wait_for_port("redis", redis_port)
        stack.start_bigquery_emulator(
            project="latam-bench", rest_port=rest_port, grpc_port=grpc_port, data_dir=None
        )
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "bootstrap"], cwd=REPO, check=True, timeout=120)
        subprocess.run(
            [*manage, "seed", "--count", str(args.records), "--seed", "1"],
            cwd=REPO,
            check=True,
            timeout=600,
        )
        from records.seeding import records_fake

        ids = [record.id for record in records_fake(count=args.records, seed=1)]
        hot = ids[: len(ids) // 5]
        script = workdir / "mix.lua"
        script.write_text(
            WRK_SCRIPT
            % {
                "ids": "\n".join(
                    [f'hot[{n + 1}] = "{i}"' for n, i in enumerate(hot)]
                    + [f'cold[{n + 1}] = "{i}"' for n, i in enumerate(ids[len(hot) :])]
                )
            }
        )
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        stack.start(
            "api",
            [gunicorn, "latam.wsgi:application", "--bind", f"127.0.0.1:{api_port}"],
            env={
                "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
                "API_METRICS_PORT": str(metrics_port),
            },
        )
        stack.wait_for_port("api", api_port)
        stack.wait_for_port("api", metrics_port)
        base_url = f"http://127.0.0.1:{api_port}"
        phase = {
            "base_url": base_url,
            "metrics_url": f"http://127.0.0.1:{metrics_port}",
            "script": script,
            "seconds": args.seconds,
            "connections": args.connections,
        }
        cold = run_phase(name="cold", **phase)
        pages_primed = page_through(base_url, total=args.records)
        phases = [cold, run_phase(name="warm", **phase)]
    finally:
        stack.stop_all()

    print(
        f"\nGET /records/<id>, 80/20 mix over {args.records} ids, {args.seconds} s per phase, "
        f"wrk -t2 -c{args.connections}, gunicorn {args.workers}×{args.threads}, Redis cache; "
        f"warm after paging {pages_primed} × /records?limit=1000"
    )
    print(
        f"{'phase':6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} "
        f"{'errors':>7} {'queries/1000':>13}"
    )
    for phase in phases:
        print(
            f"{phase['phase']:6} {phase['req_per_s']:>9} {phase['p50_ms']:>8} "
            f"{phase['p99_ms']:>8} {phase['requests']:>9} {phase['errors']:>7} "
            f"{phase['queries_per_1000']:>13}"
        )
    # The original design on this machine: ~80 req/s, p99 ~580 ms (issue #2).
    warm = phases[1]
    print(
        f"warm vs the original design: {warm['req_per_s'] / 80:.1f}x its throughput, "
        f"{warm['p99_ms'] / 580:.3f}x its p99"
    )
    out = REPO / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "api.json").write_text(json.dumps({"args": vars(args), "phases": phases}, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "latam.settings")
    sys.exit(main())
