"""What the API load test counts as right, and its verdicts: pure logic, no locust, no
stack (loadtests/locustfile.py judges each answer with it, loadtests/load.py reads
locust's CSVs with it; loadtests/tests/unit/test_loadcheck.py tests it).

An answer is a success when it is what that kind of request should get (a record, a page,
a 404 for an unknown id, a 400 for a bad parameter). Anything else is a locust failure
whose message says what it was:

- `refused: HTTP 429 …` / `refused: HTTP 503 …`: an honest refusal (429 or 503 with
  `Retry-After` and a JSON error), what the API promises under overload;
- `HTTP <status>: …`: an answer the contract does not allow there (a 500, a 429 without
  `Retry-After`, a body that is not the JSON it should be…);
- `no answer: …`: a timeout or a broken connection.
"""

import csv
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIELDS = ("id", "nombre", "apellido", "pais")
REFUSED = "refused: "
NO_ANSWER = "no answer: "
_STATUS = re.compile(r"HTTP (\d{3})\b")

# Request names (locust groups its stats by them) and the status a success has.
HOT = "GET /records/<id> hot"
COLD = "GET /records/<id> cold"
BURST = "GET /records/<id> burst"
MISS = "GET /records/<id> unknown"
SCAN = "GET /records/<id> scan"
OFFSET = "GET /records?offset"
CURSOR = "GET /records?cursor"
BAD = "GET /records bad parameter"
EXPECTED_STATUS = {
    HOT: 200,
    COLD: 200,
    BURST: 200,
    MISS: 404,
    SCAN: 404,
    OFFSET: 200,
    CURSOR: 200,
    BAD: 400,
}


# --- one answer ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    status: int  # 0: no answer
    headers: Mapping[str, str]  # names in lower case
    text: str
    error: str = ""  # the client's exception, when there was no answer


@dataclass(frozen=True)
class Judgement:
    failure: str | None  # None: a success
    data: Any = None  # the JSON body, when it parsed


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _is_error_body(data: Any) -> bool:
    return isinstance(data, dict) and set(data) == {"error"} and isinstance(data["error"], str)


def _is_record(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and tuple(sorted(data)) == tuple(sorted(FIELDS))
        and all(isinstance(value, str) and value for value in data.values())
    )


def judge(
    answer: Answer,
    *,
    expect: int,
    record_id: str | None = None,
    limit: int | None = None,
    after: str | None = None,
) -> Judgement:
    """The verdict on one answer to a request that should get `expect` (200 with the
    record `record_id`, 200 with a page of at most `limit` records whose ids all follow
    `after`, 404 or 400)."""
    if answer.status == 0:
        return Judgement(f"{NO_ANSWER}{answer.error or 'no status'}")
    data = _json(answer.text)
    if answer.status in (429, 503):
        retry_after = answer.headers.get("retry-after", "")
        if retry_after.isdigit() and _is_error_body(data):
            reason = "throttled" if answer.status == 429 else "warehouse unavailable"
            return Judgement(f"{REFUSED}HTTP {answer.status} {reason}, Retry-After", data)
        return Judgement(f"HTTP {answer.status}: without Retry-After or a JSON error", data)
    if answer.status != expect:
        return Judgement(f"HTTP {answer.status}: expected {expect}", data)
    if expect in (400, 404):
        ok = _is_error_body(data)
        if ok and expect == 404:
            ok = data["error"] == "Registro no encontrado"
        return Judgement(None if ok else f"HTTP {expect}: not the JSON error body", data)
    if record_id is not None:
        ok = _is_record(data) and data["id"] == record_id
        return Judgement(None if ok else "HTTP 200: not the record asked for", data)
    return Judgement(_page_fault(answer, data, limit, after), data)


def _page_fault(answer: Answer, data: Any, limit: int | None, after: str | None) -> str | None:
    if not isinstance(data, list) or not all(_is_record(item) for item in data):
        return "HTTP 200: not a JSON array of records"
    if limit is not None and len(data) > limit:
        return "HTTP 200: more records than the limit"
    ids = [item["id"] for item in data]
    if any(a >= b for a, b in itertools.pairwise(ids)):
        return "HTTP 200: page not in id order"
    if after is not None and ids and ids[0] <= after:
        return "HTTP 200: page repeats or goes back"
    if not answer.headers.get("x-total-count", "").isdigit():
        return "HTTP 200: no X-Total-Count"
    return None


_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="([^"]*)"')


def link_next(header: str) -> str | None:
    """The `rel="next"` URL of an RFC 8288 `Link` header."""
    for url, rel in _LINK.findall(header or ""):
        if "next" in rel.split():
            return url
    return None


# --- thresholds (locust's exit code) ------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    check: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.check}: {self.detail}"


@dataclass(frozen=True)
class Limits:
    max_fail_ratio: float  # unexpected failures / requests
    max_refused_ratio: float  # honest refusals (429, 503) / requests
    max_p95_ms: float
    max_p99_ms: float


@dataclass(frozen=True)
class Totals:
    requests: int
    p95_ms: float
    p99_ms: float
    max_ms: float = 0.0
    failures: Mapping[str, int] = field(default_factory=dict)  # message → occurrences

    @property
    def refused(self) -> int:
        return sum(n for message, n in self.failures.items() if message.startswith(REFUSED))

    @property
    def unexpected(self) -> int:
        return sum(self.failures.values()) - self.refused


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def threshold_verdicts(totals: Totals, limits: Limits) -> list[Verdict]:
    """One verdict per threshold; no request at all fails (nothing was measured)."""
    unexpected = _ratio(totals.unexpected, totals.requests)
    refused = _ratio(totals.refused, totals.requests)
    return [
        Verdict("requests", totals.requests > 0, f"{totals.requests} answered or failed"),
        Verdict(
            "failure ratio",
            totals.requests > 0 and unexpected <= limits.max_fail_ratio,
            f"{unexpected:.4%} unexpected ({totals.unexpected}), limit {limits.max_fail_ratio:.2%}",
        ),
        Verdict(
            "refused ratio",
            refused <= limits.max_refused_ratio,
            f"{refused:.4%} honest 429/503 ({totals.refused}), "
            f"limit {limits.max_refused_ratio:.2%}",
        ),
        Verdict(
            "p95",
            totals.p95_ms <= limits.max_p95_ms,
            f"{totals.p95_ms:.0f} ms, limit {limits.max_p95_ms:.0f} ms",
        ),
        Verdict(
            "p99",
            totals.p99_ms <= limits.max_p99_ms,
            f"{totals.p99_ms:.0f} ms, limit {limits.max_p99_ms:.0f} ms",
        ),
    ]


def exit_code(verdicts: Iterable[Verdict]) -> int:
    return 0 if all(v.ok for v in verdicts) else 1


# --- locust's stages (a LoadTestShape) ------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    seconds: float
    users: int
    classes: tuple[str, ...]  # empty: every class given to locust


def stages_parse(text: str) -> list[Stage]:
    """`SECONDS:USERS[:Class+Class] …`, e.g. `45:48:PointReader+Burst 30:8:PointReader`."""
    stages = []
    for item in text.split():
        parts = item.split(":")
        if len(parts) not in (2, 3) or not parts[0].isdigit() or not parts[1].isdigit():
            raise ValueError(f"a stage is SECONDS:USERS[:Class+Class], not {item!r}")
        classes = tuple(name for name in parts[2].split("+") if name) if len(parts) == 3 else ()
        stages.append(Stage(float(parts[0]), int(parts[1]), classes))
    if not stages:
        raise ValueError("no stage")
    return stages


def stage_at(stages: Sequence[Stage], elapsed: float) -> Stage | None:
    """The stage running `elapsed` seconds after the start; None once all are done."""
    end = 0.0
    for stage in stages:
        end += stage.seconds
        if elapsed < end:
            return stage
    return None


# --- locust's CSVs ------------------------------------------------------------------------
def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _number(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:  # "N/A" in the first rows of a history
        return 0.0


_WRAPPED = re.compile(r"""CatchResponseError\((['"])(.*)\1\)""", re.DOTALL)


def failure_message(error: str) -> str:
    """The message of a failures.csv `Error` (locust writes `CatchResponseError('…')`)."""
    match = _WRAPPED.fullmatch(error)
    return match.group(2) if match else error


def failures_from(rows: Iterable[Mapping[str, str]]) -> dict[str, int]:
    """failures.csv rows → {message: occurrences}, over every request name."""
    counts: Counter[str] = Counter()
    for row in rows:
        counts[failure_message(row["Error"])] += int(_number(row["Occurrences"]))
    return dict(counts)


def totals_from(stats: Iterable[Mapping[str, str]], failures: Mapping[str, int]) -> Totals:
    """The Aggregated row of stats.csv, with the failures."""
    row = next(r for r in stats if r["Name"] == "Aggregated")
    return Totals(
        requests=int(_number(row["Request Count"])),
        p95_ms=_number(row["95%"]),
        p99_ms=_number(row["99%"]),
        max_ms=_number(row["Max Response Time"]),
        failures=failures,
    )


def status_counts(
    stats: Iterable[Mapping[str, str]], failure_rows: Iterable[Mapping[str, str]]
) -> dict[str, int]:
    """How many answers of each status: successes by their name's expected status,
    failures by the status in their message (`no answer` for timeouts and resets)."""
    counts: Counter[str] = Counter()
    for row in stats:
        if row["Name"] == "Aggregated":
            continue
        ok = int(_number(row["Request Count"])) - int(_number(row["Failure Count"]))
        counts[str(EXPECTED_STATUS.get(row["Name"], "other"))] += ok
    for row in failure_rows:
        match = _STATUS.search(row["Error"])
        key = match.group(1) if match else "no answer"
        counts[key] += int(_number(row["Occurrences"]))
    return dict(sorted((k, v) for k, v in counts.items() if v))


# --- the timeline: one row per second, written by the locustfile ---------------------------
OUTCOMES = ("ok", "throttled", "unavailable", "unexpected")


def outcome_of(failure: str | None) -> str:
    if failure is None:
        return "ok"
    if failure.startswith(f"{REFUSED}HTTP 429"):
        return "throttled"
    if failure.startswith(f"{REFUSED}HTTP 503"):
        return "unavailable"
    return "unexpected"


@dataclass(frozen=True)
class Second:
    """The answers completed in one second (exact percentiles, unlike locust's history,
    whose percentiles span a ~10 s window)."""

    t: int  # seconds since the run started
    users: int
    requests: int
    ok: int
    throttled: int  # honest 429
    unavailable: int  # honest 503
    unexpected: int
    p50: float
    p95: float
    p99: float
    max: float


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * q // 1))  # ceil(n × q), at least the first
    return float(ordered[int(rank) - 1])


class Timeline:
    def __init__(self, start: float):
        self.start = start
        self._times: dict[int, list[float]] = {}
        self._outcomes: dict[int, Counter[str]] = {}
        self._users: dict[int, int] = {}

    def add(self, *, at: float, ms: float, outcome: str, users: int) -> None:
        second = max(0, int(at - self.start))
        self._times.setdefault(second, []).append(ms)
        self._outcomes.setdefault(second, Counter())[outcome] += 1
        self._users[second] = max(self._users.get(second, 0), users)

    def seconds(self) -> list[Second]:
        rows = []
        for t in range(max(self._times, default=-1) + 1):
            times = sorted(self._times.get(t, []))
            outcomes = self._outcomes.get(t, Counter())
            rows.append(
                Second(
                    t=t,
                    users=self._users.get(t, 0),
                    requests=len(times),
                    **{name: outcomes[name] for name in OUTCOMES},
                    p50=percentile(times, 0.50),
                    p95=percentile(times, 0.95),
                    p99=percentile(times, 0.99),
                    max=times[-1] if times else 0.0,
                )
            )
        return rows


SECOND_FIELDS = tuple(Second.__dataclass_fields__)


def timeline_write(path: Path, seconds: Iterable[Second]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SECOND_FIELDS)
        for s in seconds:
            writer.writerow([round(v, 1) if isinstance(v, float) else v for v in vars(s).values()])


def timeline_read(path: Path) -> list[Second]:
    return [
        Second(
            **{
                name: (float(row[name]) if name in ("p50", "p95", "p99", "max") else int(row[name]))
                for name in SECOND_FIELDS
            }
        )
        for row in csv_rows(path)
    ]


def drop_time(seconds: Sequence[Second]) -> int | None:
    """The first second after the peak with fewer users (the load dropped)."""
    peak = max((s.users for s in seconds), default=0)
    reached = False
    for s in seconds:
        reached = reached or s.users == peak
        if reached and 0 < s.users < peak:
            return s.t
    return None


def healthy(s: Second, *, max_p50_ms: float) -> bool:
    """No refusal, no failure, and no queue: the median answer, which queueing slows
    first and which one second of answers measures steadily, within `max_p50_ms`."""
    return (
        s.requests > 0 and s.throttled == s.unavailable == s.unexpected == 0 and s.p50 <= max_p50_ms
    )


def recovery_time(seconds: Sequence[Second], *, dropped: int, max_p50_ms: float) -> int | None:
    """Seconds from the drop to the first second from which every second to the end is
    healthy; None: not healthy by the end."""
    recovered: int | None = None
    for s in seconds:
        if s.t < dropped:
            continue
        if not healthy(s, max_p50_ms=max_p50_ms):
            recovered = None
        elif recovered is None:
            recovered = s.t
    return None if recovered is None else recovered - dropped
