"""The real server: gunicorn with several workers, metrics aggregated across them."""

import json
import re
import sys
import urllib.request
from pathlib import Path

import pytest

from scripts.devstack import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def server(emulator_stack, bigquery_emulator, tmp_path):
    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    emulator_stack.start(
        "gunicorn",
        [str(gunicorn), "latam.wsgi:application", "--bind", f"127.0.0.1:{port}"],
        env={
            "GUNICORN_WORKERS": "3",
            "GUNICORN_THREADS": "2",
            "BIGQUERY_EMULATOR_HOST": bigquery_emulator,
            "GCP_PROJECT": "latam-test",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        },
    )
    emulator_stack.wait_for_port("gunicorn", port)
    yield f"http://127.0.0.1:{port}"
    emulator_stack.stop("gunicorn")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_metrics_add_up_across_workers(server, emulator_stack):
    for _ in range(60):
        assert get(f"{server}/healthz")[0] == 200
    assert get(f"{server}/records/none")[0] in {404, 503}

    status, body = get(f"{server}/metrics")

    assert status == 200
    total = re.search(
        r'latam_http_requests_total\{method="GET",route="healthz",status="200"\} (\S+)',
        body.decode(),
    )
    assert total and float(total[1]) == 60
    log = (emulator_stack.log_dir / "gunicorn.log").read_text()
    assert len(set(re.findall(r"Booting worker with pid: (\d+)", log))) == 3


def test_server_logs_are_json_lines(server, emulator_stack):
    get(f"{server}/healthz")

    lines = (emulator_stack.log_dir / "gunicorn.log").read_text().splitlines()
    parsed = [json.loads(line) for line in lines if line.startswith("{")]
    assert parsed and all("severity" in line for line in parsed)
    assert any(line.get("route") == "healthz" for line in parsed)
