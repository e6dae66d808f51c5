"""Every answer carries the browser security headers: API, errors, probes, docs, schema."""

import base64
import hashlib
import re

import pytest

from records.entities import Record

PATHS = [
    "/records",
    "/records/a-1",
    "/records/missing",
    "/records?limit=0",
    "/healthz",
    "/readyz",
    "/api/docs/",
    "/api/docs/?script",
    "/api/schema/",
    "/nothing/here",
    "/static/rest_framework/css/bootstrap.min.css",
]


def csp_directives(header: str) -> dict[str, set[str]]:
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: set(sources) for name, *sources in directives}


@pytest.fixture
def stored(fake_repository):
    fake_repository.add([Record(id="a-1", nombre="Ana", apellido="Gómez", pais="Perú")])
    return fake_repository


@pytest.mark.parametrize("accept", ["application/json", "text/html"])
@pytest.mark.parametrize("path", PATHS)
def test_every_answer_carries_the_security_headers(client, stored, path, accept):
    response = client.get(path, HTTP_ACCEPT=accept)

    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    policy = csp_directives(response["Content-Security-Policy"])
    assert policy["default-src"] == {"'none'"}
    assert policy["frame-ancestors"] == {"'none'"}
    assert policy["script-src"] == {"'self'"}  # no inline script, no CDN


def test_a_disallowed_host_answer_carries_them_too(client):
    response = client.get("/records", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" in response


def test_hsts_is_sent_over_https_when_configured(client, stored, settings):
    settings.SECURE_HSTS_SECONDS = 31536000

    secure = client.get("/records", secure=True)
    behind_cloud_run = client.get("/healthz", HTTP_X_FORWARDED_PROTO="https")

    assert secure["Strict-Transport-Security"] == "max-age=31536000"
    assert behind_cloud_run["Strict-Transport-Security"] == "max-age=31536000"


def test_docs_page_runs_no_inline_script(client):
    page = client.get("/api/docs/").content.decode()
    scripts = re.findall(r"<script([^>]*)>", page)

    assert scripts
    assert all("src=" in attributes for attributes in scripts)
    assert client.get("/api/docs/?script")["Content-Type"].startswith("application/javascript")


def test_every_inline_style_of_the_docs_page_is_allowed_by_its_hash(client):
    response = client.get("/api/docs/")
    styles = re.findall(r"<style>(.*?)</style>", response.content.decode(), re.S)
    allowed = csp_directives(response["Content-Security-Policy"])["style-src"]

    assert styles
    for style in styles:
        digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in allowed


def test_the_browsable_api_has_no_inline_style_block(client, stored):
    page = client.get("/records", HTTP_ACCEPT="text/html").content.decode()

    assert "Django REST framework" in page
    assert "<style" not in page
