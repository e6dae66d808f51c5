"""No request yields a 5xx other than 503, and every error is JSON: any query string, id,
header value or method."""

import json
from urllib.parse import quote, urlencode

from django.core.cache import cache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.renderers import BrowsableAPIRenderer

from records.entities import Record

ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
PARAMETER_VALUES = st.one_of(
    ANY_TEXT, st.integers(-(10**20), 10**20).map(str), st.sampled_from(["", " 1", "1e3", "0x10"])
)
QUERY = st.lists(
    st.tuples(st.sampled_from(["limit", "offset", "format", "x", "LIMIT"]), PARAMETER_VALUES),
    max_size=4,
)

SLOW_OK = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_truthful(response, *, warehouse_down: bool) -> None:
    assert response.status_code < 500 or response.status_code == 503
    if warehouse_down:
        assert response.status_code in {400, 404, 503}
    if response.status_code >= 400:
        assert set(response.json()) == {"error"}


@SLOW_OK
@given(query=QUERY, warehouse_down=st.booleans())
def test_any_query_string(client, fake_repository, query, warehouse_down):
    cache.clear()  # examples share the function-scoped fixtures
    fake_repository.add([Record(id="1", nombre="A", apellido="B", pais="C")])
    fake_repository.unavailable = warehouse_down

    response = client.get(f"/records?{urlencode(query)}", HTTP_ACCEPT="application/json")

    assert_truthful(response, warehouse_down=warehouse_down)
    if response.status_code == 200:
        assert isinstance(response.json(), list)


@SLOW_OK
@given(
    record_id=st.text(st.characters(codec="utf-8"), min_size=1, max_size=200),
    warehouse_down=st.booleans(),
)
def test_any_id(client, fake_repository, record_id, warehouse_down):
    cache.clear()
    fake_repository.unavailable = warehouse_down

    response = client.get(f"/records/{quote(record_id, safe='')}", HTTP_ACCEPT="application/json")

    assert_truthful(response, warehouse_down=warehouse_down)
    assert response.status_code != 200


# What a WSGI server hands Django: bytes off the wire, decoded as latin-1.
WIRE_TEXT = st.text(st.characters(codec="latin-1"), max_size=60)
PERCENT_PIECES = st.sampled_from(
    [
        *["%", "%2", "%zz", "%00", "%FF", "%C3%A9", "%E2%82", "%26", "%3D", "+", "&", "=", ";"],
        *["limit=", "offset=", "limit=5", "format=json", "format=api", "format=", "script"],
    ]
)
RAW_QUERY = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(PERCENT_PIECES, st.text(max_size=4)), max_size=30).map("".join),
    st.integers(990, 1100).map(lambda count: "&".join(["a=1"] * count)),
).map(lambda text: text.encode(errors="surrogatepass").decode("latin-1"))
PATHS = st.sampled_from(
    [
        "/records",
        "/records/",
        "/records/1",
        "/records/missing",
        "/healthz",
        "/readyz",
        "/api/docs/",
        "/api/schema/",
        "/static/rest_framework/css/bootstrap.min.css",
        "/nothing/here",
    ]
)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "HTTP_HOST": st.one_of(st.sampled_from(["testserver", "localhost:8000"]), WIRE_TEXT),
        "HTTP_X_FORWARDED_FOR": st.one_of(st.just("203.0.113.7, 10.0.0.1"), WIRE_TEXT),
        "HTTP_X_FORWARDED_PROTO": st.one_of(st.just("https"), WIRE_TEXT),
        "HTTP_TRACEPARENT": st.one_of(
            st.just("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), WIRE_TEXT
        ),
        "HTTP_X_CLOUD_TRACE_CONTEXT": WIRE_TEXT,
        "HTTP_ACCEPT": st.one_of(
            st.sampled_from(
                ["*/*", "application/json", "text/html", "application/*;q=0", "*/*;q=abc"]
            ),
            WIRE_TEXT,
        ),
        "CONTENT_TYPE": WIRE_TEXT,
        "CONTENT_LENGTH": st.one_of(st.integers(-1, 10**12).map(str), WIRE_TEXT),
    },
)
# RFC 9110 tokens, the shape gunicorn lets through as a method.
METHODS = st.one_of(
    st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]),
    st.from_regex(r"\A[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}\Z"),
)


def assert_json_unless_html_was_asked(response, method: str) -> None:
    """A 4xx is JSON `{"error": ...}`, except when DRF's negotiation picked its browsable
    HTML for a client that asked for it (Accept or ?format=api)."""
    if response.status_code < 400 or method == "HEAD":  # HEAD answers carry no body
        return
    renderer = getattr(response, "accepted_renderer", None)
    if isinstance(renderer, BrowsableAPIRenderer) and response["Content-Type"].startswith(
        "text/html"
    ):
        return
    assert response["Content-Type"] == "application/json"
    body = b"".join(response) if response.streaming else response.content
    assert set(json.loads(body)) == {"error"}, body


@settings(SLOW_OK, max_examples=500)
@given(
    path=PATHS,
    raw_query=RAW_QUERY,
    headers=HEADERS,
    method=METHODS,
    warehouse_down=st.booleans(),
)
def test_any_request_line_and_headers(
    client, fake_repository, path, raw_query, headers, method, warehouse_down
):
    cache.clear()
    fake_repository.add([Record(id="1", nombre="A", apellido="B", pais="C")])
    fake_repository.unavailable = warehouse_down

    response = client.generic(method, path, QUERY_STRING=raw_query, **headers)

    assert response.status_code < 500 or response.status_code == 503
    assert_json_unless_html_was_asked(response, method)
