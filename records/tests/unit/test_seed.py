import pytest
from django.core.management import CommandError, call_command

from records.seeding import COUNTRIES, records_fake


def test_fake_records_are_deterministic_with_a_seed_and_unique():
    first = list(records_fake(count=500, seed=42))

    assert first == list(records_fake(count=500, seed=42))
    assert first != list(records_fake(count=500, seed=43))
    assert len({record.id for record in first}) == 500
    assert {record.pais for record in first} == set(COUNTRIES.values())


def test_seed_rejects_a_bad_count(fake_repository):
    with pytest.raises(CommandError, match="--count"):
        call_command("seed", "--count", "0")


def test_seed_reports_an_unavailable_warehouse(fake_repository):
    fake_repository.unavailable = True

    with pytest.raises(CommandError, match="warehouse insert failed"):
        call_command("seed", "--count", "3")
