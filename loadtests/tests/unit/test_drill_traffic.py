"""The drills' API consumers and the figures they compute (a loopback HTTP server here)."""

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loadtests.drills.api_traffic import ApiConsumers, metrics_scrape, percentile, rate_series
from loadtests.drills.timeline import Timeline


class Handler(BaseHTTPRequestHandler):
    """/ok → 200; /down → 503 JSON error with Retry-After; /html → 500 HTML; /metrics."""

    def do_GET(self) -> None:
        if self.path == "/metrics":
            body = (
                b"# TYPE hits_total counter\n"
                b'hits_total{kind="get",result="hit"} 3\n'
                b'hits_total{kind="list",result="hit"} 4\n'
                b'hits_total{kind="get",result="miss"} 5\n'
            )
            status, headers = 200, {"Content-Type": "text/plain"}
        elif self.path == "/ok":
            body, status, headers = b"[]", 200, {"Content-Type": "application/json"}
        elif self.path == "/down":
            body = json.dumps({"error": "unavailable"}).encode()
            status, headers = 503, {"Content-Type": "application/json", "Retry-After": "5"}
        else:
            body, status, headers = b"<h1>oops</h1>", 500, {"Content-Type": "text/html"}
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_answers_keep_status_and_whether_the_error_is_honest(base_url):
    consumers = ApiConsumers(base_url, Timeline())
    ok, down, html = consumers.once("read", ["/ok", "/down", "/html"])
    assert (ok.status, ok.json_error) == (200, False)
    assert (down.status, down.json_error, down.retry_after) == (503, True, True)
    assert (html.status, html.json_error, html.retry_after) == (500, False, False)
    assert [a.path for a in consumers.of("read")] == ["/ok", "/down", "/html"]
    assert all(a.seconds >= 0 for a in consumers.of())


def test_no_answer_is_status_0():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once closed
    (answer,) = ApiConsumers(f"http://127.0.0.1:{port}", Timeline()).once("read", ["/ok"])
    assert answer.status == 0


def test_consumer_threads_run_until_stopped_and_are_found_by_time(base_url):
    timeline = Timeline()
    consumers = ApiConsumers(base_url, timeline)
    consumers.add("read", lambda n: "/ok" if n % 2 else "/down", pause=0.01, threads=2)
    with consumers:
        first_down = consumers.wait_for("read", lambda a: a.status == 503, after=0, timeout=5)
    count = len(consumers.of())
    assert first_down is not None
    assert count >= 2
    assert {a.status for a in consumers.of("read")} == {200, 503}
    assert consumers.of("read", start=timeline.now() + 1) == []
    assert len(consumers.of()) == count  # stopped: nothing more came


def test_metrics_scrape_sums_the_samples_with_the_labels(base_url):
    values = metrics_scrape(
        base_url,
        {
            "hits": ("hits_total", {"result": "hit"}),
            "get": ("hits_total", {"kind": "get"}),
            "none": ("absent_total", {}),
        },
    )
    assert values == {"hits": 7, "get": 8, "none": 0}


def test_percentile_is_the_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 99) == 99
    assert percentile(values, 50) == 50
    assert percentile(values, 100) == 100
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 99) == 0.0


def test_rate_series_is_the_per_second_growth_of_a_counter():
    timeline = Timeline()
    timeline.samples["total"] = [(0.0, 0.0), (2.0, 10.0), (3.0, 10.0), (3.5, 12.0)]
    rate_series(timeline, "total", "rate")
    assert timeline.samples["rate"] == [(2.0, 5.0), (3.0, 0.0), (3.5, 4.0)]
