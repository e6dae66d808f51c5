from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from records.seeding import COUNTRIES, records_fake


def test_fake_records_are_deterministic_with_a_seed_and_unique():
    first = list(records_fake(count=500, seed=42))

    assert first == list(records_fake(count=500, seed=42))
    assert first != list(records_fake(count=500, seed=43))
    assert len({record.id for record in first}) == 500
    assert {record.pais for record in first} == set(COUNTRIES.values())


@pytest.mark.integration
def test_seed_writes_the_records_in_batches_and_says_so(warehouse):
    output = StringIO()

    call_command("seed", "--count", "25", "--seed", "3", "--batch-size", "10", stdout=output)

    assert "wrote 25 records" in output.getvalue()
    assert "in 3 batches" in output.getvalue()
    assert warehouse.records_count() == 25
    expected = next(records_fake(count=1, seed=3))
    assert warehouse.record_get(record_id=expected.id) == expected


def test_seed_rejects_a_bad_count(fake_repository):
    with pytest.raises(CommandError, match="--count"):
        call_command("seed", "--count", "0")


def test_seed_reports_an_unavailable_warehouse(fake_repository):
    fake_repository.unavailable = True

    with pytest.raises(CommandError, match="warehouse insert failed"):
        call_command("seed", "--count", "3")
