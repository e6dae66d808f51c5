import pytest

from scripts import devstack


def test_missing_java_says_how_to_get_the_emulator(monkeypatch):
    monkeypatch.setattr(devstack.shutil, "which", lambda name: None)

    with pytest.raises(devstack.StackError, match=r"Java is not installed.*pubsub-emulator"):
        devstack.pubsub_emulator_binary()


def test_missing_emulator_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setattr(
        devstack.shutil, "which", lambda name: "/usr/bin/java" if name == "java" else None
    )
    monkeypatch.setattr(devstack.Path, "home", lambda: tmp_path)
    monkeypatch.setenv("PUBSUB_EMULATOR_BIN", str(tmp_path / "nope"))
    monkeypatch.setattr(devstack, "SDK_ROOTS", [tmp_path / "sdk"])

    with pytest.raises(devstack.StackError, match=r"not found.*gcloud components install"):
        devstack.pubsub_emulator_binary()


def test_explicit_emulator_binary_wins(monkeypatch, tmp_path):
    binary = tmp_path / "cloud-pubsub-emulator"
    binary.write_text("#!/bin/sh\n")
    monkeypatch.setattr(
        devstack.shutil, "which", lambda name: "/usr/bin/java" if name == "java" else None
    )
    monkeypatch.setenv("PUBSUB_EMULATOR_BIN", str(binary))

    assert devstack.pubsub_emulator_binary() == binary


def test_a_stack_stops_every_process_it_started(tmp_path):
    stack = devstack.Stack(log_dir=tmp_path)
    sleeper = stack.start("sleeper", ["sh", "-c", "sleep 60 & sleep 60"])

    stack.stop_all()

    assert sleeper.poll() is not None
    assert stack.processes == {}


def test_metric_totals_reads_several_samples_from_one_scrape(monkeypatch):
    text = (
        "# TYPE stored_total counter\n"
        'stored_total{stream="0"} 3.0\n'
        'stored_total{stream="1"} 4.0\n'
        "# TYPE rss gauge\n"
        "rss 2048.0\n"
    )
    scrapes = []

    class Response:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return text.encode()

    def urlopen(url, timeout):
        scrapes.append(url)
        return Response()

    monkeypatch.setattr(devstack.urllib.request, "urlopen", urlopen)

    totals = devstack.metric_totals("http://127.0.0.1:9", "stored_total", "rss", "absent")

    assert totals == {"stored_total": 7.0, "rss": 2048.0, "absent": 0.0}
    assert scrapes == ["http://127.0.0.1:9/metrics"]
