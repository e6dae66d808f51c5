"""The subscriber-crash drill's walk of GET /records: every page by its Link rel="next"
until there is none, a 503 asked again, and every id kept as shown (twice if shown twice)."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loadtests.drills.subscriber_crash import api_walk

PAGES = {  # path → (ids, next path)
    "/records?limit=2": (["a", "b"], "/records?cursor=c1&limit=2"),
    "/records?cursor=c1&limit=2": (["c", "b"], "/records?cursor=c2&limit=2"),
    "/records?cursor=c2&limit=2": (["d"], None),
}


@pytest.fixture
def api() -> Iterator[tuple[str, list[str]]]:
    asked: list[str] = []
    busy_once = {"/records?cursor=c1&limit=2"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            if self.path in busy_once:
                busy_once.discard(self.path)
                self.send_response(503)
                self.send_header("Retry-After", "0")
                self.end_headers()
                return
            ids, following = PAGES[self.path]
            body = json.dumps([{"id": i} for i in ids]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            if following:
                host = f"http://127.0.0.1:{self.server.server_address[1]}"
                self.send_header("Link", f'<{host}{following}>; rel="next"')
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()
    server.server_close()


def test_walk_follows_next_links_to_the_end_and_keeps_repeats(api):
    base, asked = api
    ids, pages = api_walk(base, limit=2, timeout=10)
    assert ids == ["a", "b", "c", "b", "d"]  # "b" twice: the drill counts it as shown twice
    assert pages == 3
    assert asked == [
        "/records?limit=2",
        "/records?cursor=c1&limit=2",  # 503 ...
        "/records?cursor=c1&limit=2",  # ... asked again
        "/records?cursor=c2&limit=2",
    ]
