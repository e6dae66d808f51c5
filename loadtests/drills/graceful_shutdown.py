"""Drill 6, graceful shutdown: SIGTERM the subscriber and gunicorn under load.

Messages flow (published in chunks while the subscriber stores them) and client threads
keep HTTP requests in flight (point reads and 1,000-record pages, one connection per
request; as many clients as the API has worker threads, as Cloud Run's concurrency is
set). Both processes then get SIGTERM at once, as Cloud Run stops an instance. Passes
when both exit with 0 inside 10 s, every request that was in flight at the SIGTERM got
a complete 200 answer (no reset, no truncated body), and after the subscriber is started
again every published record is stored and nothing was dead-lettered. Requests sent
after the SIGTERM are counted, not judged: Cloud Run sends no more to a stopping instance.
"""

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass

import requests

from loadtests.drills import Checks, Outcome, Report
from loadtests.drills.support import EMULATOR_ENV, publish_within
from loadtests.drills.timeline import Sampler, Timeline, timeline_plot
from loadtests.harness import Pipeline

NAME = "graceful_shutdown"
PRELOAD = 5_000  # what the clients read
MESSAGES = 20_000  # published under load, CHUNK at a time
CHUNK = 1_000
CHUNK_EVERY_S = 0.5  # ~2,000 msgs/s: about what one subscriber stores
WORKERS, THREADS = 2, 2
CLIENTS = WORKERS * THREADS
LOAD_BEFORE_SIGTERM_S = 5.0
EXIT_LIMIT_S = 10.0
STORE_TIMEOUT_S = 120
BIN_S = 0.5  # the plot's request rates


@dataclass(frozen=True)
class Request:
    started: float  # time.monotonic()
    ended: float
    outcome: str  # "answered", "refused" (never connected), or what went wrong


def request_once(session: requests.Session, url: str) -> str:
    """One GET on a connection of its own; what became of it."""
    try:
        response = session.get(url, timeout=30, headers={"Connection": "close"})
        body = response.json()  # a truncated body is not JSON
    except requests.ConnectionError as error:
        text = repr(error)
        if "ConnectionRefusedError" in text or "Connection refused" in text:
            return "refused"
        if "reset" in text.lower() or "RemoteDisconnected" in text or "aborted" in text:
            return "reset"
        return "connection_error"
    except requests.exceptions.ChunkedEncodingError:
        return "truncated"
    except requests.Timeout:
        return "timeout"
    except ValueError:
        return "truncated"
    if response.status_code == 200 and body is not None:
        return "answered"
    return f"http_{response.status_code}"


class Clients:
    """`count` threads, each sending one request after another until stopped."""

    def __init__(self, base_url: str, ids: list[str], count: int):
        self._base_url, self._ids = base_url, ids
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self._threads = [
            threading.Thread(target=self._run, args=(seed,), name=f"client-{seed}", daemon=True)
            for seed in range(count)
        ]

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)  # load, not a secret
        with requests.Session() as session:
            while not self._stop.is_set():
                if rng.random() < 0.5:
                    url = f"{self._base_url}/records/{rng.choice(self._ids)}"
                else:  # a page that takes the warehouse a while: in flight for longer
                    url = f"{self._base_url}/records?limit=1000&offset={rng.randrange(4_000)}"
                started = time.monotonic()
                outcome = request_once(session, url)
                with self._lock:
                    self.requests.append(Request(started, time.monotonic(), outcome))
                if outcome != "answered":
                    time.sleep(0.25)  # back off, as a client meeting a stopped server would

    def __enter__(self) -> "Clients":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(40)


def request_rates(timeline: Timeline, done: list[Request]) -> None:
    """Requests answered, and failed, per second in bins of BIN_S: two series."""
    if not done:
        return
    bins = int(timeline.at(max(r.ended for r in done)) / BIN_S) + 1
    answered, failed = [0] * bins, [0] * bins
    for r in done:
        counts = answered if r.outcome == "answered" else failed
        counts[int(timeline.at(r.ended) / BIN_S)] += 1
    for index in range(bins):
        middle = timeline.started + (index + 0.5) * BIN_S
        timeline.record("answered", answered[index] / BIN_S, at=middle)
        timeline.record("failed", failed[index] / BIN_S, at=middle)


def drill(report: Report) -> Outcome:
    checks = Checks()
    figures: dict[str, float | int | str] = {}
    with Pipeline(name="graceful-shutdown", env=EMULATOR_ENV) as pipeline:
        preload = pipeline.fake_payloads(PRELOAD, seed=601)
        flowing = pipeline.fake_payloads(MESSAGES, seed=602)
        ids = [json.loads(payload)["id"] for payload in preload]
        pipeline.subscriber_start()
        api, _ = pipeline.api_start(workers=WORKERS, threads=THREADS)
        publish_within(pipeline, preload, timeout=60)
        deadline = time.monotonic() + 60
        while pipeline.stored_count() < PRELOAD and time.monotonic() < deadline:
            time.sleep(0.5)
        checks.check(pipeline.stored_count() == PRELOAD, "the records to read were not stored")

        with requests.Session() as session:  # each worker's first requests are slow
            for record_id in ids[:20]:
                request_once(session, f"{api}/records/{record_id}")
        timeline = Timeline()

        published: list[int] = []

        def publish_in_chunks() -> None:
            for start in range(0, MESSAGES, CHUNK):
                publish_within(pipeline, flowing[start : start + CHUNK], timeout=30)
                published.append(CHUNK)
                time.sleep(CHUNK_EVERY_S)
            timeline.event("publish", f"all {MESSAGES:,} published")

        publisher = threading.Thread(target=publish_in_chunks, name="publish", daemon=True)
        subscriber, gunicorn = pipeline.process("subscriber"), pipeline.process("api")
        exits: dict[str, float] = {}

        def stop(name: str) -> None:
            exits[name] = pipeline.terminate(name, timeout=30)
            timeline.event("exit", f"{name} exited ({exits[name]:.1f} s)")

        with Sampler(timeline, "stored", lambda: pipeline.stored_count() - PRELOAD, 0.5):
            with Clients(api, ids, CLIENTS) as clients:
                publisher.start()
                time.sleep(LOAD_BEFORE_SIGTERM_S)
                stoppers = [
                    threading.Thread(target=stop, args=(name,), daemon=True)
                    for name in ("subscriber", "api")
                ]
                sigterm = time.monotonic()
                for stopper in stoppers:
                    stopper.start()
                timeline.event("sigterm", "SIGTERM to subscriber and gunicorn", at=sigterm)
                for stopper in stoppers:
                    stopper.join(40)
                time.sleep(1)  # clients meet the closed port for a moment, then stop
            publisher.join(60)
            checks.check(sum(published) == MESSAGES, f"only {sum(published):,} published")
            restarted = timeline.event("start", "subscriber restarted")
            pipeline.subscriber_start()
            deadline = time.monotonic() + STORE_TIMEOUT_S
            while timeline.last("stored") < MESSAGES and time.monotonic() < deadline:
                time.sleep(0.2)
        for name, process in (("subscriber", subscriber), ("api", gunicorn)):
            took = exits.get(name)
            figures[f"{name}_exit_s"] = round(took, 1) if took is not None else "none"
            checks.check(
                took is not None and took <= EXIT_LIMIT_S,
                f"{name} did not exit within {EXIT_LIMIT_S:.0f} s",
            )
            checks.check(process.returncode == 0, f"{name} exited with {process.returncode}, not 0")

        in_flight = [r for r in clients.requests if r.started < sigterm < r.ended]
        before = Counter(r.outcome for r in clients.requests if r.ended <= sigterm)
        after = Counter(r.outcome for r in clients.requests if r.started >= sigterm)
        in_flight_outcomes = Counter(r.outcome for r in in_flight)
        figures["requests_before_sigterm"] = sum(before.values())
        figures["in_flight_at_sigterm"] = len(in_flight)
        figures["in_flight_answered"] = in_flight_outcomes["answered"]
        figures["longest_in_flight_s"] = round(
            max((r.ended - sigterm for r in in_flight), default=0), 2
        )
        figures["after_sigterm"] = " ".join(f"{k}={v}" for k, v in sorted(after.items()))
        checks.check(
            before["answered"] == sum(before.values()),
            f"requests before the SIGTERM failed: {dict(before)}",
        )
        checks.check(bool(in_flight), "no request was in flight at the SIGTERM: nothing tested")
        checks.check(
            in_flight_outcomes["answered"] == len(in_flight),
            f"in-flight requests not answered in full: {dict(in_flight_outcomes)}",
        )

        stored = pipeline.stored_count()
        figures["stored"] = stored
        checks.check(
            stored == PRELOAD + MESSAGES,
            f"{stored:,} of {PRELOAD + MESSAGES:,} records stored after the restart",
        )
        done = next((t for t, value in timeline.samples["stored"] if value >= MESSAGES), None)
        if stored == PRELOAD + MESSAGES and done is not None:
            timeline.event("done", "all stored", at=timeline.started + done)
            figures["all_stored_after_restart_s"] = round(done - restarted, 1)
        dead = pipeline.dead_letters(limit=100, wait=2)
        figures["dead_lettered"] = len(dead)
        checks.check(not dead, f"{len(dead)} valid messages dead-lettered")

    request_rates(timeline, clients.requests)
    plot = f"drill-{NAME}.png"
    timeline_plot(
        timeline,
        report.path(plot),
        title="Drill: SIGTERM to the subscriber and gunicorn under load",
        series={"stored": f"records stored of the {MESSAGES:,} published under load"},
        ylabel="records",
        secondary={
            "answered": f"HTTP requests answered ({CLIENTS} clients)",
            "failed": "HTTP requests refused or reset",
        },
        secondary_label=f"HTTP requests per second ({BIN_S} s bins)",
    )
    return checks.outcome(NAME, figures, plot)
