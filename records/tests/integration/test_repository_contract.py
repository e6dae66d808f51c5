"""The RecordRepository contract, run against both implementations: the in-memory one
that unit tests use (records/fakes.py) and BigQuery through the real client on bqemulator.

The in-memory repository lives in the app, not in a test folder, because the unit tests of
both apps use it; this conformance test is what keeps it honest — a behaviour the fake
gets wrong fails here next to the real one.
"""

from datetime import UTC, datetime, timedelta

import pytest

from records.entities import Record, StoredRecord
from records.fakes import InMemoryRecordRepository
from records.repository import RecordRepository

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stored(record_id: str, nombre: str = "Juan", *, at: datetime = T0, message_id=None):
    record = Record(id=record_id, nombre=nombre, apellido="Pérez", pais="Argentina")
    return StoredRecord(record=record, published_at=at, message_id=message_id)


@pytest.fixture(params=["in-memory", "bigquery"])
def warehouse(request) -> RecordRepository:
    if request.param == "in-memory":
        repository = InMemoryRecordRepository()
        repository.table_ensure(location="US")
        return repository
    return request.getfixturevalue("warehouse")


def test_insert_then_get_list_and_count(warehouse):
    refused = warehouse.records_insert(rows=[stored("b"), stored("a"), stored("c")])

    assert refused == {}
    assert warehouse.record_get(record_id="a") == stored("a").record
    assert [r.id for r in warehouse.records_list(limit=2, offset=0)] == ["a", "b"]
    assert [r.id for r in warehouse.records_list(limit=2, offset=2)] == ["c"]
    assert warehouse.records_count() == 3


def test_missing_id_is_none(warehouse):
    assert warehouse.record_get(record_id="nobody") is None


def test_latest_publish_wins_and_duplicates_show_once(warehouse):
    warehouse.records_insert(rows=[stored("x", "Viejo", at=T0 + timedelta(seconds=5))])
    warehouse.records_insert(rows=[stored("x", "Nuevo", at=T0 + timedelta(seconds=9))])
    warehouse.records_insert(rows=[stored("x", "Tardío", at=T0 + timedelta(seconds=1))])

    assert warehouse.record_get(record_id="x").nombre == "Nuevo"
    assert [r.nombre for r in warehouse.records_list(limit=10, offset=0)] == ["Nuevo"]
    assert warehouse.records_count() == 1


def test_unicode_values_round_trip(warehouse):
    row = StoredRecord(
        record=Record(id="ñ-1", nombre="José", apellido="Núñez", pais="México"), published_at=T0
    )
    warehouse.records_insert(rows=[row])

    assert warehouse.record_get(record_id="ñ-1") == row.record


def test_table_ensure_is_idempotent_and_table_id_names_the_table(warehouse):
    assert warehouse.table_ensure(location="US") is False

    project, dataset, table = warehouse.table_id.split(".")
    assert project and dataset and table


def test_list_after_a_cursor_reads_the_ids_that_follow_it(warehouse):
    warehouse.records_insert(rows=[stored(i) for i in ("d", "b", "ñ", "a", "z", "c")])

    assert [r.id for r in warehouse.records_list(limit=2, after="b")] == ["c", "d"]
    assert [r.id for r in warehouse.records_list(limit=10, after="bb")] == ["c", "d", "z", "ñ"]
    assert [r.id for r in warehouse.records_list(limit=10, after="z")] == ["ñ"]
    assert warehouse.records_list(limit=10, after="ñ") == []


def test_list_after_a_cursor_shows_each_id_once_latest_wins(warehouse):
    warehouse.records_insert(rows=[stored("x", "Viejo", at=T0 + timedelta(seconds=5))])
    warehouse.records_insert(rows=[stored("x", "Nuevo", at=T0 + timedelta(seconds=9))])
    warehouse.records_insert(rows=[stored("w"), stored("y")])

    page = warehouse.records_list(limit=10, after="w")

    assert [(r.id, r.nombre) for r in page] == [("x", "Nuevo"), ("y", "Juan")]


def test_offset_and_after_are_exclusive(warehouse):
    with pytest.raises(ValueError, match="offset"):
        warehouse.records_list(limit=10, offset=1, after="a")
