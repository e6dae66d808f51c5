"""Consumers of the records API, for locust (`make load` runs it: loadtests/load.py).

    locust -f loadtests/locustfile.py --headless --host http://127.0.0.1:PORT \\
        -u 8 -r 8 --run-time 60s PointReader Pager CarelessClient

Against a stack seeded with `manage.py seed --count N --seed S` (the same N and S as
--records/--seed here, which give the seeded ids):

- PointReader: `GET /records/<id>`, 80 % of reads on 20 % of the ids (hot/cold), and now
  and then an id that does not exist (404);
- Pager: resumes a walk of the collection at an offset and follows `Link rel="next"` for
  up to 20 pages: by offset, then by cursor once past API_MAX_OFFSET;
- CarelessClient: bad parameters (400), unknown ids (404), some reads;
- Burst: not a consumer mix but one client that fans out over many connections from one
  address, without pause (point reads): what overload tests the throttle with;
- Scanner: one client scanning ids that do not exist from another address, without
  pause: a warehouse query each, what makes the warehouse the limit.

Every user is a client address of its own, sent as `X-Forwarded-For` the way Cloud Run's
front end does (the API trusts one proxy: API_NUM_PROXIES=1), so DRF's per-address
throttle sees separate clients; every Burst user shares one address, every Scanner
another. Addresses are in
127.0.0.0/8: a header only, no traffic goes there.

Each answer is judged by loadtests.loadcheck: the expected 404 and 400 are successes; an
honest 429 or 503 (Retry-After, JSON error) is a failure named `refused: …`; anything
else (a 500, a wrong body, a timeout) a failure of its own. At the end, thresholds on the
unexpected-failure ratio, the refused ratio, p95 and p99 set locust's exit code. With
LOCUST_STAGES set, a LoadTestShape runs stages instead of -u/--run-time, and
--timeline writes one CSV row per second with exact percentiles.
"""

import itertools
import logging
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
from locust import FastHttpUser, LoadTestShape, between, constant, events, task
from locust.stats import StatsError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root

from loadtests import loadcheck
from loadtests.loadcheck import BAD, BURST, COLD, CURSOR, HOT, MISS, OFFSET, SCAN, Answer

logger = logging.getLogger("loadtests")

HOT_IDS: list[str] = []
COLD_IDS: list[str] = []
_addresses = itertools.count(1)
BURST_ADDRESS = "127.0.200.1"
SCANNER_ADDRESS = "127.0.200.2"
BAD_QUERIES = (
    "limit=0",
    "limit=5000",
    "limit=abc",
    "offset=-1",
    "offset=99999999",
    "cursor=not-a-cursor",
    "cursor=MTphYmM&offset=10",
)
TIMELINE: loadcheck.Timeline | None = None
RUNNER: Any = None


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("records API consumers (loadtests/locustfile.py)")
    group.add_argument("--records", type=int, env_var="LOCUST_RECORDS", default=10_000)
    group.add_argument("--seed", type=int, env_var="LOCUST_SEED", default=1)
    group.add_argument(
        "--request-timeout",
        type=float,
        env_var="LOCUST_REQUEST_TIMEOUT",
        default=10.0,
        help="seconds before a request counts as a hang (no answer)",
    )
    group.add_argument("--max-fail-ratio", type=float, env_var="LOCUST_MAX_FAIL_RATIO", default=0.0)
    group.add_argument(
        "--max-refused-ratio", type=float, env_var="LOCUST_MAX_REFUSED_RATIO", default=0.01
    )
    # p95 as the production alert (terraform: alert_latency_p95_ms).
    group.add_argument("--max-p95-ms", type=float, env_var="LOCUST_MAX_P95_MS", default=1000.0)
    group.add_argument("--max-p99-ms", type=float, env_var="LOCUST_MAX_P99_MS", default=2000.0)
    group.add_argument("--timeline", env_var="LOCUST_TIMELINE", default="")


@events.init.add_listener
def _init(environment: Any, **kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    from records.seeding import records_fake

    ids = [record.id for record in records_fake(count=options.records, seed=options.seed)]
    HOT_IDS[:] = ids[: len(ids) // 5]
    COLD_IDS[:] = ids[len(ids) // 5 :]
    Consumer.network_timeout = Consumer.connection_timeout = options.request_timeout


@events.test_start.add_listener
def _start(environment: Any, **kwargs: Any) -> None:
    global RUNNER, TIMELINE
    RUNNER = environment.runner
    if environment.parsed_options and environment.parsed_options.timeline:
        TIMELINE = loadcheck.Timeline(time.time())


@events.request.add_listener
def _record(response_time: float, exception: Any, **kwargs: Any) -> None:
    if TIMELINE is None:
        return
    failure = None if exception is None else str(getattr(exception, "args", [""])[0] or exception)
    TIMELINE.add(
        at=time.time(),
        ms=response_time,
        outcome=loadcheck.outcome_of(failure),
        users=RUNNER.user_count if RUNNER else 0,
    )


@events.quitting.add_listener
def _verdict(environment: Any, **kwargs: Any) -> None:
    options = environment.parsed_options
    stats = environment.stats
    failures: dict[str, int] = {}
    for error in stats.errors.values():
        message = loadcheck.failure_message(StatsError.parse_error(error.error))
        failures[message] = failures.get(message, 0) + error.occurrences
    totals = loadcheck.Totals(
        requests=stats.total.num_requests,
        p95_ms=stats.total.get_response_time_percentile(0.95) or 0,
        p99_ms=stats.total.get_response_time_percentile(0.99) or 0,
        max_ms=stats.total.max_response_time or 0,
        failures=failures,
    )
    limits = loadcheck.Limits(
        max_fail_ratio=options.max_fail_ratio,
        max_refused_ratio=options.max_refused_ratio,
        max_p95_ms=options.max_p95_ms,
        max_p99_ms=options.max_p99_ms,
    )
    verdicts = loadcheck.threshold_verdicts(totals, limits)
    for verdict in verdicts:
        logger.info("threshold %s", verdict.line())
    environment.process_exit_code = loadcheck.exit_code(verdicts)
    if TIMELINE is not None:
        loadcheck.timeline_write(Path(options.timeline), TIMELINE.seconds())


class Consumer(FastHttpUser):
    abstract = True
    wait_time = between(0.0, 0.1)
    address = ""
    link: str | None = None  # the rel="next" of the last page read

    def on_start(self) -> None:
        n = next(_addresses)
        self.address = self.address or f"127.0.{1 + n // 250}.{1 + n % 250}"

    def get(
        self,
        url: str,
        *,
        name: str,
        expect: int,
        record_id: str | None = None,
        limit: int = 0,
        after: str | None = None,
    ) -> loadcheck.Judgement:
        headers = {"X-Forwarded-For": self.address, "Accept": "application/json"}
        with self.client.get(url, name=name, headers=headers, catch_response=True) as response:
            # status 0: no answer (an error status is an answer, with response.error set)
            status = response.status_code or 0
            error = getattr(response, "error", None)
            answer = Answer(
                status=status,
                headers={k.lower(): v for k, v in (response.headers or {}).items()},
                text=(response.text or "") if status else "",
                error=type(error).__name__ if error else "",
            )
            judgement = loadcheck.judge(
                answer, expect=expect, record_id=record_id, limit=limit or None, after=after
            )
            if judgement.failure is None:
                response.success()
            else:
                response.failure(judgement.failure)
            if answer.status == 200 and expect == 200 and record_id is None:
                self.link = loadcheck.link_next(answer.headers.get("link", ""))
            return judgement

    def read(self) -> None:
        """80 % of reads on the hot fifth of the ids."""
        if random.random() < 0.8:
            record_id, name = random.choice(HOT_IDS), HOT
        else:
            record_id, name = random.choice(COLD_IDS), COLD
        self.get(f"/records/{record_id}", name=name, expect=200, record_id=record_id)

    def miss(self) -> None:
        self.get(f"/records/{uuid.uuid4()}", name=MISS, expect=404)


class PointReader(Consumer):
    weight = 5

    @task(19)
    def point_read(self) -> None:
        self.read()

    @task(1)
    def unknown(self) -> None:
        self.miss()


class Pager(Consumer):
    """A sync job: resumes at some offset, follows rel="next" for up to 20 pages, each
    processed for a few tens of milliseconds (back to back, cached pages would take it past
    the throttle's 100 requests a second)."""

    weight = 2
    wait_time = between(0.5, 2.0)

    @task
    def walk(self) -> None:
        limit = random.choice((100, 250, 500))
        deepest = int(os.environ.get("API_MAX_OFFSET", "10000"))
        offset = random.randrange(0, deepest + 1, limit)
        url: str | None = f"/records?limit={limit}&offset={offset}"
        last_id: str | None = None
        for _ in range(20):
            if url is None:
                break
            by_cursor = "cursor=" in url
            self.link = None
            # A walk by cursor never shows a record twice nor goes back (offset pages may
            # shift while records arrive).
            judgement = self.get(
                url,
                name=CURSOR if by_cursor else OFFSET,
                expect=200,
                limit=limit,
                after=last_id if by_cursor else None,
            )
            if judgement.failure is not None:
                break
            last_id = judgement.data[-1]["id"] if judgement.data else last_id
            url = self._local(self.link)
            gevent.sleep(random.uniform(0.01, 0.05))

    def _local(self, link: str | None) -> str | None:
        """The path and query of a Link URL (the host is the one under test)."""
        if not link:
            return None
        parts = urlsplit(link)
        return f"{parts.path}?{parts.query}"


class CarelessClient(Consumer):
    """An integration in development: typos in its parameters, ids that do not exist."""

    weight = 1
    wait_time = between(0.05, 0.2)

    @task(2)
    def bad_parameter(self) -> None:
        self.get(f"/records?{random.choice(BAD_QUERIES)}", name=BAD, expect=400)

    @task(1)
    def unknown(self) -> None:
        self.miss()

    @task(1)
    def point_read(self) -> None:
        self.read()


class Burst(Consumer):
    """One client fanning out over many connections from one address, without pause."""

    weight = 16
    wait_time = constant(0)
    address = BURST_ADDRESS

    @task
    def point_read(self) -> None:
        record_id = random.choice(HOT_IDS)
        self.get(f"/records/{record_id}", name=BURST, expect=200, record_id=record_id)


class Scanner(Consumer):
    """A client scanning ids that do not exist, without pause, from one address: every
    one a warehouse query (a miss is cached only for the same id)."""

    weight = 4
    wait_time = constant(0)
    address = SCANNER_ADDRESS

    @task
    def unknown(self) -> None:
        self.get(f"/records/{uuid.uuid4()}", name=SCAN, expect=404)


if os.environ.get("LOCUST_STAGES"):

    class Stages(LoadTestShape):
        """LOCUST_STAGES = `SECONDS:USERS[:Class+Class] …`, run in order (load.py: the
        consumers, the burst client added to them, then the consumers alone)."""

        stages = loadcheck.stages_parse(os.environ["LOCUST_STAGES"])

        def tick(self) -> tuple[int, float, list[type] | None] | None:
            stage = loadcheck.stage_at(self.stages, self.get_run_time())
            if stage is None:
                return None
            classes = [globals()[name] for name in stage.classes] or None
            # At once, both ways (100 a second: every stage's change in one step). Locust
            # stops the users it started last first: stages that only add Burst, then
            # Scanner users, then one back to the consumers, drop exactly those.
            return stage.users, 100, classes
