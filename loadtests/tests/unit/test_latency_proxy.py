"""The latency proxy relays bytes both ways unchanged and delays what comes back."""

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from loadtests.latency_proxy import LatencyProxy


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A loopback server that echoes each connection's bytes, then half-closes at EOF."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stopping = threading.Event()

    def echo(connection: socket.socket) -> None:
        with connection:
            while data := connection.recv(65536):
                connection.sendall(data)
            connection.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while not stopping.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=echo, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stopping.set()
    thread.join(5)
    server.close()


def connect(proxy: LatencyProxy) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    connection.settimeout(10)
    return connection


def receive(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size and (chunk := connection.recv(65536)):
        data += chunk
    return data


def test_relays_bytes_both_ways_unchanged_and_passes_the_half_close(echo_port):
    payload = os.urandom(3 * 1024 * 1024)  # many chunks, arbitrary bytes
    with LatencyProxy(echo_port) as proxy, connect(proxy) as connection:
        assert proxy.address == f"127.0.0.1:{proxy.port}"
        sender = threading.Thread(target=connection.sendall, args=(payload,))
        sender.start()
        echoed = receive(connection, len(payload))
        sender.join(10)
        connection.shutdown(socket.SHUT_WR)
        assert echoed == payload
        assert connection.recv(1) == b""  # the target's EOF came through
        assert proxy.connections == 1


def test_each_answer_comes_delay_seconds_later_and_the_delay_can_change(echo_port):
    with LatencyProxy(echo_port, delay=0.5) as proxy, connect(proxy) as connection:
        started = time.monotonic()
        connection.sendall(b"ping")
        assert receive(connection, 4) == b"ping"
        assert time.monotonic() - started >= 0.5

        proxy.delay = 0.0
        started = time.monotonic()
        connection.sendall(b"pong")
        assert receive(connection, 4) == b"pong"
        assert time.monotonic() - started < 0.5


def test_delays_are_pipelined_not_added_up(echo_port):
    """Latency, not a throughput cap: chunks in flight together each wait `delay` once."""
    with LatencyProxy(echo_port, delay=1.0) as proxy, connect(proxy) as connection:
        started = time.monotonic()
        for n in range(3):
            connection.sendall(b"%d" % n)
            time.sleep(0.05)
        assert receive(connection, 3) == b"012"
        took = time.monotonic() - started
        assert 1.0 <= took < 2.5  # one delay, not three (3 s)


def test_connect_delay_is_added_once_per_connection(echo_port):
    with LatencyProxy(echo_port, connect_delay=0.5) as proxy, connect(proxy) as connection:
        started = time.monotonic()
        connection.sendall(b"a")
        assert receive(connection, 1) == b"a"
        assert time.monotonic() - started >= 0.4  # the dial waited
        started = time.monotonic()
        connection.sendall(b"b")
        assert receive(connection, 1) == b"b"
        assert time.monotonic() - started < 0.4


def test_close_drops_connections_and_stops_listening(echo_port):
    proxy = LatencyProxy(echo_port, delay=5.0).start()
    connection = connect(proxy)
    connection.sendall(b"held")  # its answer is 5 s away when the proxy closes
    time.sleep(0.1)
    proxy.close()
    with connection, contextlib.suppress(ConnectionResetError):  # dropped, not answered
        assert connection.recv(4) == b""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()


def test_a_refused_target_closes_the_client_connection():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]  # nothing listens once closed
    with (
        LatencyProxy(dead_port) as proxy,
        connect(proxy) as connection,
        contextlib.suppress(ConnectionResetError),
    ):
        assert connection.recv(1) == b""
