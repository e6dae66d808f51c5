"""The poison-flood drill's hostile messages: each is refused by the subscriber's own
reader with the error_code the drill expects of its dead letter."""

import json
import random

import pytest

from ingestion.messages import DATA_MAX_BYTES, record_from_data
from loadtests.drills.poison_flood import (
    HOSTILE_KINDS,
    digest,
    flood_messages,
    hostile_payload,
)
from records.entities import RecordInvalid


@pytest.mark.parametrize("kind", sorted(HOSTILE_KINDS))
@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 57])
def test_each_hostile_kind_is_refused_with_its_code(kind, n):
    data = hostile_payload(kind, n, random.Random(n))
    with pytest.raises(RecordInvalid) as refused:
        record_from_data(data)
    assert refused.value.code == HOSTILE_KINDS[kind]


def test_huge_values_are_huge_and_only_too_large_is_over_the_size_limit():
    rng = random.Random(0)
    assert b"9" * 4_990 in hostile_payload("huge_number", 1, rng)
    assert len(hostile_payload("too_large", 0, rng)) > DATA_MAX_BYTES
    for kind in set(HOSTILE_KINDS) - {"too_large"}:
        assert len(hostile_payload(kind, 0, rng)) <= DATA_MAX_BYTES, kind


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="no such hostile kind"):
        hostile_payload("friendly", 0, random.Random(0))


def test_flood_is_one_hostile_in_ten_spread_out_every_kind_in_turn_and_distinct():
    valid = [
        json.dumps({"id": str(i), "nombre": "A", "apellido": "B", "pais": "C"}).encode()
        for i in range(18_000)
    ]
    messages = flood_messages(valid, every=10, seed=1)

    assert len(messages) == 20_000
    kinds = [kind for kind, _ in messages]
    assert sum(kind is not None for kind in kinds) == 2_000
    # Spread out: exactly one hostile message in each run of ten.
    for start in range(0, 20_000, 10):
        assert sum(kind is not None for kind in kinds[start : start + 10]) == 1
    hostile_kinds = [kind for kind in kinds if kind is not None]
    assert hostile_kinds[: len(HOSTILE_KINDS)] == list(HOSTILE_KINDS)
    assert set(hostile_kinds) == set(HOSTILE_KINDS)
    # The valid ones are there, in order, untouched.
    assert [data for kind, data in messages if kind is None] == valid
    # Every message is recognisable by its data alone (how the drill matches dead letters).
    assert len({digest(data) for _, data in messages}) == 20_000


def test_flood_is_deterministic_for_a_seed():
    valid = [b'{"id": "1", "nombre": "A", "apellido": "B", "pais": "C"}'] * 180
    assert flood_messages(valid, seed=3) == flood_messages(valid, seed=3)
    assert flood_messages(valid, seed=3) != flood_messages(valid, seed=4)
