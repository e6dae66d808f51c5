from io import StringIO

from django.core.management import call_command

from records.seeding import records_fake


def test_seed_writes_the_records_in_batches_and_says_so(warehouse):
    output = StringIO()

    call_command("seed", "--count", "25", "--seed", "3", "--batch-size", "10", stdout=output)

    assert "wrote 25 records" in output.getvalue()
    assert "in 3 batches" in output.getvalue()
    assert warehouse.records_count() == 25
    expected = next(records_fake(count=1, seed=3))
    assert warehouse.record_get(record_id=expected.id) == expected
