"""The load test's judgement of answers, its thresholds and its reading of locust's CSVs
(loadtests/loadcheck.py): what decides `make load`'s exit code."""

import json

import pytest

from loadtests import loadcheck
from loadtests.loadcheck import Answer, Limits, Second, Totals

RECORD = {"id": "a1", "nombre": "Ana", "apellido": "Paz", "pais": "Chile"}
ERROR = json.dumps({"error": "no"})


def answer(status: int, body: object = None, **headers: str) -> Answer:
    text = body if isinstance(body, str) else json.dumps(body)
    return Answer(status=status, headers={k.replace("_", "-"): v for k, v in headers.items()},
                  text=text)  # fmt: skip


# --- answers ------------------------------------------------------------------------------
def test_the_record_asked_for_is_a_success():
    assert loadcheck.judge(answer(200, RECORD), expect=200, record_id="a1").failure is None


@pytest.mark.parametrize(
    "body",
    [
        {**RECORD, "id": "b2"},  # another record
        {**RECORD, "extra": "x"},  # a field more
        {k: v for k, v in RECORD.items() if k != "pais"},  # a field less
        [RECORD],  # a list
        "<html>oops</html>",  # not JSON
    ],
)
def test_anything_but_the_record_asked_for_fails(body):
    failure = loadcheck.judge(answer(200, body), expect=200, record_id="a1").failure
    assert failure == "HTTP 200: not the record asked for"


def test_expected_404_and_400_are_successes_only_with_their_json_error():
    miss = answer(404, {"error": "Registro no encontrado"})
    assert loadcheck.judge(miss, expect=404).failure is None
    assert loadcheck.judge(answer(404, {"error": "Not found"}), expect=404).failure
    assert loadcheck.judge(answer(400, {"error": "'limit' must be…"}), expect=400).failure is None
    assert loadcheck.judge(answer(400, "<h1>Bad Request</h1>"), expect=400).failure == (
        "HTTP 400: not the JSON error body"
    )


def test_a_wrong_status_fails_with_it():
    assert loadcheck.judge(answer(500, {"error": "x"}), expect=200).failure == (
        "HTTP 500: expected 200"
    )
    assert loadcheck.judge(answer(200, RECORD), expect=404).failure == "HTTP 200: expected 404"


def test_honest_refusals_are_named_refused():
    throttled = loadcheck.judge(answer(429, {"error": "slow down"}, retry_after="1"), expect=200)
    unavailable = loadcheck.judge(answer(503, {"error": "later"}, retry_after="5"), expect=404)
    assert throttled.failure == "refused: HTTP 429 throttled, Retry-After"
    assert unavailable.failure == "refused: HTTP 503 warehouse unavailable, Retry-After"
    assert loadcheck.outcome_of(throttled.failure) == "throttled"
    assert loadcheck.outcome_of(unavailable.failure) == "unavailable"


@pytest.mark.parametrize(
    "refusal",
    [
        answer(429, {"error": "slow down"}),  # no Retry-After
        answer(503, "Service Unavailable", retry_after="5"),  # not JSON
        answer(503, {"error": "x"}, retry_after="soon"),  # not seconds
    ],
)
def test_dishonest_refusals_are_unexpected(refusal):
    failure = loadcheck.judge(refusal, expect=200).failure
    assert failure == f"HTTP {refusal.status}: without Retry-After or a JSON error"
    assert loadcheck.outcome_of(failure) == "unexpected"


def test_no_answer_is_unexpected():
    failure = loadcheck.judge(Answer(0, {}, "", error="ConnectionTimeout"), expect=200).failure
    assert failure == "no answer: ConnectionTimeout"
    assert loadcheck.outcome_of(failure) == "unexpected"
    assert loadcheck.outcome_of(None) == "ok"


def test_a_page_is_an_array_of_records_in_id_order_within_its_limit():
    second = {**RECORD, "id": "b2"}
    page = answer(200, [RECORD, second], x_total_count="2")
    assert loadcheck.judge(page, expect=200, limit=2).failure is None
    assert loadcheck.judge(page, expect=200, limit=1).failure == (
        "HTTP 200: more records than the limit"
    )
    backwards = answer(200, [second, RECORD], x_total_count="2")
    assert loadcheck.judge(backwards, expect=200).failure == "HTTP 200: page not in id order"
    repeated = answer(200, [RECORD, RECORD], x_total_count="2")
    assert loadcheck.judge(repeated, expect=200).failure == "HTTP 200: page not in id order"
    assert loadcheck.judge(answer(200, [RECORD]), expect=200).failure == (
        "HTTP 200: no X-Total-Count"
    )
    assert loadcheck.judge(answer(200, {"results": []}), expect=200).failure == (
        "HTTP 200: not a JSON array of records"
    )


def test_a_cursor_page_follows_the_last_id_of_the_page_before():
    page = answer(200, [{**RECORD, "id": "b2"}, {**RECORD, "id": "c3"}], x_total_count="9")
    assert loadcheck.judge(page, expect=200, after="a1").failure is None
    for after in ("b2", "bz"):  # repeats b2; goes back before bz
        assert loadcheck.judge(page, expect=200, after=after).failure == (
            "HTTP 200: page repeats or goes back"
        )
    empty = answer(200, [], x_total_count="9")
    assert loadcheck.judge(empty, expect=200, after="zz").failure is None


def test_link_next_is_found_among_the_links():
    header = (
        '<http://h/records?limit=2&offset=8>; rel="prev", '
        '<http://h/records?cursor=MTph&limit=2>; rel="next"'
    )
    assert loadcheck.link_next(header) == "http://h/records?cursor=MTph&limit=2"
    assert loadcheck.link_next('<http://h/records?offset=0>; rel="prev"') is None
    assert loadcheck.link_next("") is None


# --- thresholds ---------------------------------------------------------------------------
LIMITS = Limits(max_fail_ratio=0.01, max_refused_ratio=0.5, max_p95_ms=100, max_p99_ms=200)


def verdicts(**totals) -> dict[str, bool]:
    defaults = {"requests": 1000, "p95_ms": 50, "p99_ms": 150, "failures": {}}
    result = loadcheck.threshold_verdicts(Totals(**{**defaults, **totals}), LIMITS)
    return {v.check: v.ok for v in result}


def test_thresholds_pass_within_their_limits():
    results = verdicts(failures={"HTTP 500: expected 200": 10, "refused: HTTP 429 x": 500})
    assert all(results.values())
    assert loadcheck.exit_code(loadcheck.threshold_verdicts(Totals(1000, 50, 150), LIMITS)) == 0


def test_unexpected_failures_and_refusals_count_apart():
    totals = Totals(
        1000, 50, 150, failures={"HTTP 500: expected 200": 11, "refused: HTTP 503 y": 2}
    )
    assert (totals.unexpected, totals.refused) == (11, 2)
    assert verdicts(failures={"HTTP 500: expected 200": 11})["failure ratio"] is False
    assert verdicts(failures={"refused: HTTP 429 x": 501})["refused ratio"] is False
    # Honest refusals never count as unexpected failures.
    assert verdicts(failures={"refused: HTTP 429 x": 501})["failure ratio"] is True


def test_each_latency_threshold_fails_alone():
    assert verdicts(p95_ms=101) == {**verdicts(), "p95": False}
    assert verdicts(p99_ms=201) == {**verdicts(), "p99": False}


def test_a_run_without_requests_fails():
    results = loadcheck.threshold_verdicts(Totals(0, 0, 0), LIMITS)
    assert loadcheck.exit_code(results) == 1
    assert not {v.check: v.ok for v in results}["requests"]


def test_verdict_lines_say_pass_or_fail():
    assert loadcheck.Verdict("p95", True, "5 ms").line() == "PASS  p95: 5 ms"
    assert loadcheck.Verdict("p95", False, "5 ms").line() == "FAIL  p95: 5 ms"


# --- stages -------------------------------------------------------------------------------
def test_stages_parse_and_run_in_order():
    stages = loadcheck.stages_parse("1:8:A+B 59:48:Burst 30:8")
    assert [(s.seconds, s.users, s.classes) for s in stages] == [
        (1, 8, ("A", "B")),
        (59, 48, ("Burst",)),
        (30, 8, ()),
    ]
    assert loadcheck.stage_at(stages, 0.5).users == 8
    assert loadcheck.stage_at(stages, 1.0).classes == ("Burst",)
    assert loadcheck.stage_at(stages, 60.0).classes == ()
    assert loadcheck.stage_at(stages, 90.0) is None


@pytest.mark.parametrize("text", ["", "8", "a:8", "10:-1", "10:8:A:B"])
def test_malformed_stages_are_refused(text):
    with pytest.raises(ValueError):
        loadcheck.stages_parse(text)


# --- locust's CSVs ------------------------------------------------------------------------
STATS = [
    {"Name": loadcheck.HOT, "Request Count": "100", "Failure Count": "10"},
    {"Name": loadcheck.MISS, "Request Count": "20", "Failure Count": "1"},
    {"Name": loadcheck.BAD, "Request Count": "5", "Failure Count": "0"},
    {
        "Name": "Aggregated",
        "Request Count": "125",
        "Failure Count": "11",
        "95%": "40",
        "99%": "90",
        "Max Response Time": "123.4",
    },
]


def failure(name: str, message: str, occurrences: int) -> dict[str, str]:
    # As locust writes them: the message inside CatchResponseError(…).
    return {
        "Name": name,
        "Error": f"CatchResponseError({message!r})",
        "Occurrences": str(occurrences),
    }


FAILURES = [
    failure(loadcheck.HOT, "refused: HTTP 429 throttled, Retry-After", 8),
    failure(loadcheck.HOT, "HTTP 500: expected 200", 2),
    failure(loadcheck.MISS, "no answer: ConnectionTimeout", 1),
]


def test_failures_are_read_unwrapped():
    assert loadcheck.failures_from(FAILURES) == {
        "refused: HTTP 429 throttled, Retry-After": 8,
        "HTTP 500: expected 200": 2,
        "no answer: ConnectionTimeout": 1,
    }
    assert loadcheck.failure_message('CatchResponseError("it\'s")') == "it's"
    assert loadcheck.failure_message("ConnectionResetError(104)") == "ConnectionResetError(104)"


def test_totals_come_from_the_aggregated_row():
    totals = loadcheck.totals_from(STATS, loadcheck.failures_from(FAILURES))
    assert (totals.requests, totals.p95_ms, totals.p99_ms, totals.max_ms) == (125, 40, 90, 123.4)
    assert (totals.refused, totals.unexpected) == (8, 3)


def test_status_counts_by_expected_status_and_by_failure():
    assert loadcheck.status_counts(STATS, FAILURES) == {
        "200": 90,
        "400": 5,
        "404": 19,
        "429": 8,
        "500": 2,
        "no answer": 1,
    }


# --- the timeline and recovery ------------------------------------------------------------
def test_timeline_gives_exact_percentiles_per_second(tmp_path):
    timeline = loadcheck.Timeline(start=100.0)
    for ms in range(1, 101):  # 1..100 ms in second 0
        timeline.add(at=100.5, ms=float(ms), outcome="ok", users=8)
    timeline.add(at=102.2, ms=7.0, outcome="throttled", users=48)
    rows = timeline.seconds()
    assert [(r.t, r.requests, r.users) for r in rows] == [(0, 100, 8), (1, 0, 0), (2, 1, 48)]
    assert (rows[0].p50, rows[0].p95, rows[0].p99, rows[0].max) == (50, 95, 99, 100)
    assert (rows[2].ok, rows[2].throttled, rows[2].p99) == (0, 1, 7)
    path = tmp_path / "seconds.csv"
    loadcheck.timeline_write(path, rows)
    assert loadcheck.timeline_read(path) == rows


def second(t: int, users: int, *, p50: float = 5, throttled: int = 0, unexpected: int = 0):
    return Second(t, users, 100, 100 - throttled - unexpected, throttled, 0, unexpected,
                  p50, 200, 300, 400)  # fmt: skip


def test_drop_is_the_first_second_below_the_peak_after_it():
    seconds = [second(0, 8), second(1, 48), second(2, 48), second(3, 8), second(4, 8)]
    assert loadcheck.drop_time(seconds) == 3
    assert loadcheck.drop_time([second(0, 8), second(1, 8)]) is None


def test_recovery_is_the_first_second_healthy_to_the_end():
    seconds = [
        second(0, 48, throttled=50),
        second(1, 8, throttled=3),  # the drop: refusals in flight
        second(2, 8, p50=90),  # the queue draining
        second(3, 8),
        second(4, 8, p50=30),  # a relapse resets it
        second(5, 8),
        second(6, 8),
    ]
    assert loadcheck.recovery_time(seconds, dropped=1, max_p50_ms=20) == 4
    assert loadcheck.recovery_time(seconds, dropped=1, max_p50_ms=100) == 1
    relapse = [*seconds, second(7, 8, unexpected=1)]
    assert loadcheck.recovery_time(relapse, dropped=1, max_p50_ms=100) is None


# --- the overload checks of loadtests.load ------------------------------------------------
def overload_files(tmp_path, failures, *, max_ms="500"):
    import csv

    stats = [*STATS[:-1], {**STATS[-1], "Max Response Time": max_ms}]
    paths = {}
    for kind, rows in (("stats", stats), ("failures", failures)):
        paths[kind] = tmp_path / f"{kind}.csv"
        with paths[kind].open("w", newline="") as handle:
            writer = csv.DictWriter(
                handle, fieldnames=list(dict.fromkeys(k for r in rows for k in r))
            )
            writer.writeheader()
            writer.writerows(rows)
    return paths


def overload_verdicts(tmp_path, failures, *, seconds=None, max_ms="500"):
    import argparse

    from loadtests import load

    args = argparse.Namespace(request_timeout=10.0, overload_max_p99_ms=5000, recovery_seconds=30)
    timeline = seconds or [second(t, 48, p50=60) for t in range(10)] + [
        second(t, 8) for t in range(10, 40)
    ]
    files = overload_files(tmp_path, failures, max_ms=max_ms)
    verdicts, figures = load.overload_checks(files, timeline, args=args, healthy_p50_ms=10)
    return {v.check: v.ok for v in verdicts}, figures


def test_overload_passes_with_honest_refusals_to_the_burst_client_only(tmp_path):
    burst_429 = failure(loadcheck.BURST, "refused: HTTP 429 throttled, Retry-After", 50)
    results, figures = overload_verdicts(tmp_path, [burst_429])
    assert all(results.values()), results
    assert (figures["drop_at_s"], figures["recovery_s"]) == (10, 0)


def test_overload_fails_on_a_500_a_dishonest_503_a_hang_or_no_throttling(tmp_path):
    burst_429 = failure(loadcheck.BURST, "refused: HTTP 429 throttled, Retry-After", 50)
    results, _ = overload_verdicts(tmp_path, [burst_429, failure(loadcheck.HOT, "HTTP 500: x", 1)])
    assert not results["honest answers"]
    bad_503 = failure(loadcheck.HOT, "HTTP 503: without Retry-After or a JSON error", 1)
    results, _ = overload_verdicts(tmp_path, [burst_429, bad_503])
    assert not results["503 only as JSON with Retry-After"]
    results, _ = overload_verdicts(tmp_path, [burst_429], max_ms="10000")
    assert not results["no hang"]
    results, _ = overload_verdicts(tmp_path, [failure(loadcheck.HOT, "HTTP 404: x", 1)])
    assert not results["throttled with Retry-After"]


def test_overload_fails_when_consumers_are_throttled_or_it_does_not_recover(tmp_path):
    consumer_429 = failure(loadcheck.HOT, "refused: HTTP 429 throttled, Retry-After", 1)
    results, _ = overload_verdicts(tmp_path, [consumer_429])
    assert not results["throttle hits the aggressive clients only"]
    burst_429 = failure(loadcheck.BURST, "refused: HTTP 429 throttled, Retry-After", 50)
    queued = [second(t, 48, p50=60) for t in range(10)] + [
        second(t, 8, p50=60) for t in range(10, 40)
    ]
    results, figures = overload_verdicts(tmp_path, [burst_429], seconds=queued)
    assert not results["recovers when the load drops"]
    assert figures["recovery_s"] is None
