"""Keyset pagination (`cursor`), the bound on `offset`, and the cost of the total count:
the HTTP contract (docs/contracts.md), against the in-memory repository."""

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from records.entities import Record
from records.pagination import cursor_encode
from records.repository import WarehouseUnavailable
from records.tests.unit.conftest import link_targets


def query_of(url: str) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(urlsplit(url).query).items()}


def ids(response) -> list[str]:
    return [record["id"] for record in response.json()]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# 7 bytes: the last of 10 characters carries 2 bits and 4 unused ones, which must be 0.
_CANONICAL = b64(b"1:abcde")
NON_CANONICAL = _CANONICAL[:-1] + chr(ord(_CANONICAL[-1]) + 1)


def test_a_cursor_page_holds_the_records_after_the_cursor(client, stored):
    response = client.get(f"/records?limit=10&cursor={cursor_encode('id-0009')}")

    assert response.status_code == 200
    assert ids(response) == [f"id-{n:04d}" for n in range(10, 20)]
    assert response["X-Total-Count"] == "250"


def test_a_cursor_page_links_the_next_by_cursor_and_has_no_prev(client, stored):
    response = client.get(f"/records?limit=10&cursor={cursor_encode('id-0009')}")

    links = link_targets(response["Link"])
    assert set(links) == {"next"}
    assert query_of(links["next"]) == {"limit": "10", "cursor": cursor_encode("id-0019")}
    assert urlsplit(links["next"]).path == "/records"


def test_the_cursor_need_not_name_a_stored_id(client, stored):
    response = client.get(f"/records?limit=3&cursor={cursor_encode('id-0009x')}")

    assert ids(response) == ["id-0010", "id-0011", "id-0012"]


def test_a_full_last_cursor_page_has_no_next_link(client, stored):
    response = client.get(f"/records?limit=10&cursor={cursor_encode('id-0239')}")

    assert ids(response) == [f"id-{n:04d}" for n in range(240, 250)]
    assert "Link" not in response


def test_a_cursor_past_the_end_is_an_empty_array(client, stored):
    response = client.get(f"/records?cursor={cursor_encode('zzz')}")

    assert response.status_code == 200
    assert response.json() == []
    assert "Link" not in response


def test_following_next_links_walks_every_record_once_in_order(client, stored, settings):
    settings.API_MAX_OFFSET = 40  # offset links up to 40, then cursor links
    url, seen, pages = "/records?limit=17", [], 0

    while url:
        response = client.get(url)
        assert response.status_code == 200
        seen += ids(response)
        url = link_targets(response.get("Link", "")).get("next")
        pages += 1

    assert seen == [record.id for record in stored]
    assert pages == 15


def test_offset_pages_link_the_next_by_cursor_once_past_the_maximum_offset(
    client, stored, settings
):
    settings.API_MAX_OFFSET = 100

    within = link_targets(client.get("/records?limit=10&offset=90")["Link"])
    beyond = link_targets(client.get("/records?limit=10&offset=95")["Link"])

    assert query_of(within["next"]) == {"limit": "10", "offset": "100"}
    assert query_of(beyond["next"]) == {"limit": "10", "cursor": cursor_encode("id-0104")}
    assert query_of(beyond["prev"]) == {"limit": "10", "offset": "85"}


def test_offset_up_to_the_maximum_is_served_and_beyond_is_400_naming_the_cursor(
    client, stored, settings
):
    settings.API_MAX_OFFSET = 100

    assert client.get("/records?limit=5&offset=100").status_code == 200
    response = client.get("/records?limit=5&offset=101")

    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    message = response.json()["error"]
    assert "'offset'" in message and "100" in message and "cursor" in message


def test_the_default_maximum_offset_is_ten_thousand(client, stored, settings):
    assert settings.API_MAX_OFFSET == 10_000
    assert client.get("/records?offset=10000").status_code == 200
    assert client.get("/records?offset=10001").status_code == 400


@pytest.mark.parametrize(
    "cursor",
    [
        "",  # empty
        "!!!",  # not base64url
        "aWQtMDAwOQ==",  # padded
        "aWQtMDAwOQ+/",  # standard, not URL-safe, alphabet
        "a",  # a length base64 cannot have
        b64(b"id-0009"),  # no version
        b64(b"9:id-0009"),  # unknown version
        b64(b"1:"),  # empty id
        b64(b"1:\xff\xfe"),  # not UTF-8
        b64(b"1:a/b"),  # an id that cannot exist: '/'
        b64("1:a\u202eb".encode()),  # ...a bidi override
        b64(("1:" + "x" * 129).encode()),  # ...too long
        NON_CANONICAL,  # unused trailing bits set
        "A" * 5000,  # huge
    ],
    ids=lambda cursor: cursor[:24] or "empty",
)
def test_a_malformed_cursor_is_400_naming_it_without_a_query(
    client, stored, fake_repository, cursor
):
    response = client.get("/records", {"cursor": cursor})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"error"}
    assert response.json()["error"].startswith("'cursor'")
    assert fake_repository.calls["list"] == fake_repository.calls["count"] == 0


def test_cursor_and_offset_together_are_400_without_a_query(client, stored, fake_repository):
    response = client.get(f"/records?offset=0&cursor={cursor_encode('id-0009')}")

    assert response.status_code == 400
    assert "'cursor'" in response.json()["error"] and "'offset'" in response.json()["error"]
    assert fake_repository.calls["list"] == fake_repository.calls["count"] == 0


def test_a_bad_offset_is_refused_before_any_query(client, stored, fake_repository):
    assert client.get("/records?offset=x").status_code == 400

    assert fake_repository.calls["count"] == fake_repository.calls["list"] == 0


def test_cursor_pages_are_cached_like_offset_pages(client, stored, fake_repository):
    url = f"/records?limit=10&cursor={cursor_encode('id-0009')}"

    first, second = client.get(url), client.get(url)

    assert first.json() == second.json()
    assert fake_repository.calls["list"] == 1


def test_no_page_queries_the_count_while_it_is_cached(client, stored, fake_repository):
    client.get("/records?limit=10")
    for url in [
        "/records?limit=10&offset=10",
        "/records?limit=20&offset=40",
        f"/records?limit=10&cursor={cursor_encode('id-0100')}",
        f"/records?limit=5&cursor={cursor_encode('id-0200')}",
    ]:
        assert client.get(url)["X-Total-Count"] == "250"

    assert fake_repository.calls["count"] == 1
    assert fake_repository.calls["list"] == 5


def test_a_query_refused_for_its_cost_is_503_json(client, stored, fake_repository, monkeypatch):
    def refused(**kwargs):
        raise WarehouseUnavailable("warehouse list failed", reason="cost")

    monkeypatch.setattr(fake_repository, "records_list", refused)

    response = client.get(f"/records?cursor={cursor_encode('id-0009')}")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert set(response.json()) == {"error"}


def test_openapi_schema_documents_cursor_and_the_offset_bound(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/records/"]["get"]["parameters"]}

    assert {"limit", "offset", "cursor"} <= set(parameters)
    assert parameters["cursor"]["schema"]["type"] == "string"
    assert "Link" in parameters["cursor"]["description"]
    assert "10000" in parameters["offset"]["description"].replace(",", "")
    assert "cursor" in parameters["offset"]["description"]


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cursor=st.one_of(st.text(max_size=60), st.binary(max_size=60).map(b64)))
def test_any_cursor_is_a_page_or_a_400(client, fake_repository, cursor):
    fake_repository.add([Record(id="1", nombre="A", apellido="B", pais="C")])

    response = client.get("/records", {"cursor": cursor}, HTTP_ACCEPT="application/json")

    assert response.status_code in {200, 400}
    if response.status_code == 400:
        assert response.json()["error"].startswith("'cursor'")
