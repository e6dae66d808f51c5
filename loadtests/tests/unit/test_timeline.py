"""A drill's timeline: samples and events in seconds since its start, and its plot."""

import threading
import time

from loadtests.drills.timeline import Sampler, Timeline, timeline_plot


def test_events_and_samples_are_seconds_since_the_start():
    timeline = Timeline(started=50.0)
    assert timeline.event("kill", "SIGKILL 1", at=53.5) == 3.5
    timeline.record("stored", 10, at=52.0)
    timeline.record("stored", 25, at=54.0)
    assert timeline.events == [(3.5, "kill", "SIGKILL 1")]
    assert timeline.samples["stored"] == [(2.0, 10), (4.0, 25)]
    assert timeline.last("stored") == 25
    assert timeline.last("never sampled") == 0


def test_sampler_samples_until_stopped_and_skips_failed_samples():
    timeline = Timeline()
    calls = iter(range(1000))
    lock = threading.Lock()

    def measure() -> float:
        with lock:
            n = next(calls)
        if n == 1:
            raise ConnectionError("the warehouse is busy")
        return n

    with Sampler(timeline, "value", measure, interval=0.01) as sampler:
        time.sleep(0.2)
    count = len(timeline.samples["value"])
    time.sleep(0.05)
    assert len(timeline.samples["value"]) == count  # stopped
    assert sampler.errors == 1
    values = [value for _, value in timeline.samples["value"]]
    assert values[:2] == [0, 2]  # the failed sample is a gap, not a value


def test_plot_writes_a_png_with_events_close_together(tmp_path):
    timeline = Timeline(started=0.0)
    for second in range(10):
        timeline.record("stored", second * 100, at=second)
        timeline.record("rate", 5, at=second)
    timeline.event("sigterm", "SIGTERM", at=4.0)
    timeline.event("exit", "api exited", at=4.05)
    timeline.event("exit", "subscriber exited", at=4.1)
    path = tmp_path / "drill.png"
    timeline_plot(
        timeline,
        path,
        title="t",
        series={"stored": "stored"},
        ylabel="records",
        secondary={"rate": "rate"},
        secondary_label="requests per second",
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
