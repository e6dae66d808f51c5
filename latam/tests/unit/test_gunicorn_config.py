"""gunicorn.conf.py read as gunicorn reads it (executed as a module), in isolation."""

import runpy
import tempfile
from pathlib import Path

import pytest

from scripts.devstack import REPO

CONFIG = str(REPO / "gunicorn.conf.py")


@pytest.fixture
def environment(monkeypatch, tmp_path):
    """A clean slate: no variable gunicorn.conf.py reads, and an empty env file."""
    for name in ("PORT", "GUNICORN_WORKERS", "GUNICORN_THREADS", "PROMETHEUS_MULTIPROC_DIR"):
        # set, then removed: monkeypatch restores what was there, whatever the config sets
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    env_file = tmp_path / ".env"
    env_file.write_text("")
    monkeypatch.setenv("DJANGO_ENV_FILE", str(env_file))
    return env_file


def test_gunicorn_reads_the_env_file_like_the_settings(environment, monkeypatch):
    environment.write_text("GUNICORN_WORKERS=3\nGUNICORN_THREADS=5\nPORT=8123\n")
    monkeypatch.setenv("GUNICORN_THREADS", "7")  # the environment wins over the file

    config = runpy.run_path(CONFIG)

    assert (config["workers"], config["threads"], config["bind"]) == (3, 7, "0.0.0.0:8123")


def test_a_given_metrics_directory_is_kept_and_only_stale_metric_files_go(
    environment, monkeypatch, tmp_path
):
    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"stale")
    (given / "notes.txt").write_text("someone else's")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(given))
    made_before = set(Path(tempfile.gettempdir()).glob("latam-prometheus-*"))

    config = runpy.run_path(CONFIG)
    config["on_exit"](server=None)

    assert sorted(path.name for path in given.iterdir()) == ["notes.txt"]
    assert set(Path(tempfile.gettempdir()).glob("latam-prometheus-*")) == made_before


def test_a_metrics_directory_of_its_own_is_removed_at_exit(environment, monkeypatch):
    config = runpy.run_path(CONFIG)
    made = Path(config["_metrics_dir"])

    assert made.is_dir() and made.name.startswith("latam-prometheus-")
    config["on_exit"](server=None)
    assert not made.exists()
