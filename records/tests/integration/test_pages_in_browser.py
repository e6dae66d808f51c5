"""The two HTML pages (browsable API, Swagger UI) render in a real browser under the
Content-Security-Policy, served by a real gunicorn: no violation, content on screen.

Needs Debian's chromium (`apt-get install chromium`; .ci/run installs it). Without it
these tests fail, saying so: they are never skipped.
"""

import shutil
import subprocess
import urllib.request
from datetime import UTC, datetime

import pytest

from records.entities import Record, StoredRecord

MARISOL = Record(id="browser-1", nombre="Marisol", apellido="Prada", pais="Chile")
# Headless on a machine without network: no sandbox (root), no GPU, nothing phoning home.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    # Let the page's scripts run (Swagger UI fetches and draws the schema) before the dump.
    "--virtual-time-budget=10000",
]


def render(url: str, *, profile: str) -> tuple[str, list[str]]:
    """The DOM after the page's scripts ran, and the console lines (CSP violations land
    there)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is required: apt-get install chromium", pytrace=False)
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout, [line for line in result.stderr.splitlines() if ":CONSOLE" in line]


def policy_of(url: str, *, accept: str) -> str:
    request = urllib.request.Request(url, headers={"Accept": accept})  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return response.headers["Content-Security-Policy"]


@pytest.fixture
def server(gunicorn_server, warehouse, settings):
    warehouse.records_insert(rows=[StoredRecord(record=MARISOL, published_at=datetime.now(UTC))])
    return gunicorn_server(BIGQUERY_TABLE=settings.BIGQUERY_TABLE)


def test_the_browsable_api_renders_under_the_policy(server, tmp_path):
    url = f"{server.url}/records"

    dom, console = render(url, profile=str(tmp_path / "profile"))

    assert "default-src 'none'" in policy_of(url, accept="text/html")
    assert "Django REST framework" in dom
    assert "Marisol" in dom
    assert console == []


def test_swagger_ui_renders_under_the_policy(server, tmp_path):
    url = f"{server.url}/api/docs/"

    dom, console = render(url, profile=str(tmp_path / "profile"))

    assert "default-src 'none'" in policy_of(url, accept="text/html")
    # Drawn by Swagger UI's scripts from the schema, not in the served HTML.
    assert 'data-path="/records/{id}/"' in dom
    assert console == []
