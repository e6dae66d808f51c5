"""The graceful-shutdown drill's judgement of a request: a complete answer, or what went
wrong (the drill fails on any in-flight request that is not answered in full)."""

import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from loadtests.drills.graceful_shutdown import BIN_S, Request, request_once, request_rates
from loadtests.drills.timeline import Timeline


def serve_once(reply: bytes | None, *, reset: bool = False) -> Iterator[str]:
    """A loopback server for one connection: it reads the request, then sends `reply`
    and closes (an RST instead of a FIN with `reset`)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer() -> None:
        connection, _ = server.accept()
        connection.recv(65536)
        if reply:
            connection.sendall(reply)
        if reset:  # SO_LINGER 0: close() sends an RST
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        connection.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/records"
    thread.join(5)
    server.close()


def http(status: str, body: bytes, *, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
    ).encode() + body


@pytest.mark.parametrize(
    ("reply", "reset", "expected"),
    [
        (http("200 OK", b'[{"id": "1"}]'), False, "answered"),
        (http("503 Service Unavailable", b'{"error": "x"}'), False, "http_503"),
        # Headers promise 100 bytes, 13 arrive: a truncated answer, never "answered".
        (http("200 OK", b'[{"id": "1"}]', length=100), False, "truncated"),
        # A complete length but not JSON (cut inside the document).
        (http("200 OK", b'[{"id": "1"'), False, "truncated"),
        (None, True, "reset"),
        (None, False, "reset"),  # closed without a word
    ],
)
def test_request_once_tells_a_complete_answer_from_a_broken_one(reply, reset, expected):
    for url in serve_once(reply, reset=reset):
        with requests.Session() as session:
            assert request_once(session, url) == expected


def test_request_once_on_a_closed_port_is_refused():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once it is closed
    with requests.Session() as session:
        assert request_once(session, f"http://127.0.0.1:{port}/records") == "refused"


def test_request_rates_counts_answers_and_failures_per_second_in_bins():
    timeline = Timeline(started=100.0)
    done = [
        Request(100.0, 100.1, "answered"),
        Request(100.0, 100.4, "answered"),
        Request(100.2, 100.6, "answered"),
        Request(100.5, 101.2, "reset"),
        Request(101.0, 101.3, "refused"),
    ]
    request_rates(timeline, done)

    middles = [round(t, 2) for t, _ in timeline.samples["answered"]]
    assert middles == [BIN_S / 2, BIN_S * 1.5, BIN_S * 2.5]
    assert [rate for _, rate in timeline.samples["answered"]] == [2 / BIN_S, 1 / BIN_S, 0]
    assert [rate for _, rate in timeline.samples["failed"]] == [0, 0, 2 / BIN_S]


def test_request_rates_of_nothing_is_nothing():
    timeline = Timeline(started=0.0)
    request_rates(timeline, [])
    assert timeline.samples == {}
