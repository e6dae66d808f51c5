"""The real server: gunicorn with several workers, metrics aggregated across them and
served on a port of their own, not the API's."""

import json
import re
import urllib.request

import pytest


@pytest.fixture
def server(gunicorn_server):
    return gunicorn_server()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_metrics_add_up_across_workers_on_the_metrics_port(server):
    for _ in range(60):
        assert get(f"{server.url}/healthz")[0] == 200
    assert get(f"{server.url}/records/none")[0] in {404, 503}

    status, body = get(f"{server.metrics_url}/metrics")

    assert status == 200
    total = re.search(
        r'latam_http_requests_total\{method="GET",route="healthz",status="200"\} (\S+)',
        body.decode(),
    )
    assert total and float(total[1]) == 60
    log = server.log.read_text()
    assert len(set(re.findall(r"Booting worker with pid: (\d+)", log))) == 3


def test_the_api_port_does_not_serve_metrics(server):
    status, body = get(f"{server.url}/metrics")

    assert status == 404
    assert json.loads(body) == {"error": "Not found"}


def test_server_logs_are_json_lines(server):
    get(f"{server.url}/healthz")

    lines = server.log.read_text().splitlines()
    parsed = [json.loads(line) for line in lines if line.startswith("{")]
    assert parsed and all("severity" in line for line in parsed)
    assert any(line.get("route") == "healthz" for line in parsed)
