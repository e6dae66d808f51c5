import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from records.seeding import COUNTRIES, records_fake

REPO = Path(__file__).resolve().parents[2]


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


def settings_check(**env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"BIGQUERY_EMULATOR_HOST", "DJANGO_SECRET_KEY"}
    }
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('configured')"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "latam.settings",
            "DJANGO_ENV_FILE": os.devnull,
            **env,
        },
    )


def test_secret_key_is_required_outside_local_development():
    result = settings_check()

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_settings_load_in_the_cloud_with_a_secret_and_locally_without_one():
    assert settings_check(DJANGO_SECRET_KEY="from-secret-manager").stdout.strip() == "configured"
    assert settings_check(BIGQUERY_EMULATOR_HOST="127.0.0.1:9050").stdout.strip() == "configured"


def test_debug_is_off_by_default():
    from django.conf import settings

    assert settings.DEBUG is False
