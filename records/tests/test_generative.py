"""No query string and no id yields a 5xx other than 503, and every error is JSON."""

from urllib.parse import quote, urlencode

from django.core.cache import cache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
