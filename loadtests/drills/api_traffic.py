"""What the warehouse and cache drills drive and watch: API consumers, a steady producer,
and the timeline plot of what consumers saw while a fault was played.

`ApiConsumers` runs threads by kind of request (cached point reads, reads that must
reach the warehouse, /readyz…), each sending GETs back to back with a pause, and keeps
every answer: its time, status, latency and whether its body was the API's JSON error.
`SteadyPublisher` publishes a fixed list of messages at a fixed rate in a thread.
Bounded: each consumer stops with its `with` block, every request has a client timeout.
"""

import itertools
import json
import math
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from loadtests.drills.timeline import Timeline
from loadtests.harness import Pipeline

# A request unanswered this long is a hang (gunicorn's own worker timeout is 30 s).
CLIENT_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Answer:
    t: float  # when the request was sent, seconds since the drill started
    kind: str
    path: str
    status: int  # 0: no answer (connection refused, reset, or the client timeout)
    seconds: float
    json_error: bool  # the body is the API's {"error": "..."}
    retry_after: bool


def percentile(values: Iterable[float], share: float) -> float:
    """The `share` (0–100) percentile, nearest rank; 0 for no values."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(math.ceil(share / 100 * len(ordered)), 1)
    return ordered[rank - 1]


class ApiConsumers:
    """Consumers of the API, threads by kind of request (`add`); they run inside the
    `with` block (a kind added within it starts at once)."""

    def __init__(self, base_url: str, timeline: Timeline):
        self.base_url = base_url
        self.timeline = timeline
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.kinds: list[str] = []  # in the order they were added
        self._lock = threading.Lock()
        self._started = False

    def add(
        self, kind: str, path: Callable[[int], str], *, pause: float = 0.0, threads: int = 1
    ) -> None:
        """`threads` threads that GET `path(n)` for n = 0, 1, 2… (each its own n) until
        stopped, `pause` s apart; they start at once when the consumers already run."""
        if kind not in self.kinds:
            self.kinds.append(kind)
        for index in range(threads):
            thread = threading.Thread(
                target=self._run,
                args=(kind, path, pause),
                name=f"consumer-{kind}-{index}",
                daemon=True,
            )
            self._threads.append(thread)
            if self._started:
                thread.start()

    def __enter__(self) -> "ApiConsumers":
        self._started = True
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(CLIENT_TIMEOUT_S + 5)

    def once(self, kind: str, paths: Iterable[str]) -> list[Answer]:
        """GET each path once, now, in this thread (e.g. to fill the cache); their answers
        are kept as `kind`'s and returned."""
        with requests.Session() as session:
            return [self._get(session, kind, path) for path in paths]

    def _run(self, kind: str, path: Callable[[int], str], pause: float) -> None:
        with requests.Session() as session:
            n = 0
            while not self._stop.is_set():
                self._get(session, kind, path(n))
                n += 1
                if pause:
                    self._stop.wait(pause)

    def _get(self, session: requests.Session, kind: str, path: str) -> Answer:
        sent = time.monotonic()
        status, json_error, retry_after = 0, False, False
        try:
            response = session.get(f"{self.base_url}{path}", timeout=CLIENT_TIMEOUT_S)
            status = response.status_code
            retry_after = "Retry-After" in response.headers
            if status >= 400:
                try:
                    body = response.json()
                    json_error = isinstance(body, dict) and isinstance(body.get("error"), str)
                except json.JSONDecodeError:
                    json_error = False
        except requests.RequestException:
            session.close()  # a fresh connection for the next request
        answer = Answer(
            t=self.timeline.at(sent),
            kind=kind,
            path=path,
            status=status,
            seconds=time.monotonic() - sent,
            json_error=json_error,
            retry_after=retry_after,
        )
        with self._lock:
            self.answers.append(answer)
        return answer

    def of(self, kind: str | None = None, *, start: float = 0.0, end: float = 1e9) -> list[Answer]:
        """Answers of `kind` (all kinds when None) to requests sent in [start, end)."""
        with self._lock:
            return [
                a for a in self.answers if (kind is None or a.kind == kind) and start <= a.t < end
            ]

    def wait_for(
        self, kind: str, condition: Callable[[Answer], bool], *, after: float, timeout: float
    ) -> float | None:
        """The time of the first answer of `kind` sent after `after` that meets
        `condition`, waiting up to `timeout` seconds for one; None if none came."""
        deadline = time.monotonic() + timeout
        while True:
            for answer in self.of(kind, start=after):
                if condition(answer):
                    return answer.t
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.2)


class SteadyPublisher:
    """Publishes `payloads` through `pipeline`, `rate` messages a second (a batch every
    second), in a thread; records the running total as the timeline's `published`."""

    def __init__(self, pipeline: Pipeline, payloads: list[bytes], *, rate: int, timeline: Timeline):
        self._pipeline, self._payloads, self._rate = pipeline, payloads, rate
        self._timeline = timeline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self.published = 0
        self.error: Exception | None = None

    def _run(self) -> None:
        started = time.monotonic()
        try:
            for second, begin in enumerate(range(0, len(self._payloads), self._rate)):
                if self._stop.wait(max(started + second - time.monotonic(), 0)):
                    return
                batch = self._payloads[begin : begin + self._rate]
                self._pipeline.publish(batch)
                self.published += len(batch)
                self._timeline.record("published", self.published)
        except Exception as error:  # reported by the drill as a failed check
            self.error = error

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def __enter__(self) -> "SteadyPublisher":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)


def metrics_scrape(
    metrics_url: str, series: dict[str, tuple[str, dict[str, str]]]
) -> dict[str, float]:
    """Each series (name → sample name and labels) summed over matching samples, from
    one scrape of `metrics_url`/metrics."""
    with urllib.request.urlopen(f"{metrics_url}/metrics", timeout=10) as response:  # noqa: S310
        samples = [
            sample
            for family in text_string_to_metric_families(response.read().decode())
            for sample in family.samples
        ]
    return {
        name: sum(
            s.value for s in samples if s.name == metric and labels.items() <= s.labels.items()
        )
        for name, (metric, labels) in series.items()
    }


class MetricsSampler:
    """Scrapes a /metrics endpoint every `interval` seconds in a thread and records each
    series (name → metric and labels, summed) on the timeline; a failed scrape is a gap."""

    def __init__(
        self,
        timeline: Timeline,
        metrics_url: str,
        series: dict[str, tuple[str, dict[str, str]]],
        *,
        interval: float = 1.0,
    ):
        self._timeline, self._url, self._series = timeline, metrics_url, series
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            begun = time.monotonic()
            try:
                values = metrics_scrape(self._url, self._series)
            except OSError:
                values = {}
            for name, value in values.items():
                self._timeline.record(name, value, at=begun)
            self._stop.wait(max(self._interval - (time.monotonic() - begun), 0.05))

    def __enter__(self) -> "MetricsSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)


def rate_series(timeline: Timeline, total: str, into: str) -> None:
    """Record the per-second rate of the counter series `total` as `into`."""
    points = timeline.samples.get(total, [])
    timeline.samples[into] = [
        (t1, max(v1 - v0, 0.0) / (t1 - t0))
        for (t0, v0), (t1, v1) in itertools.pairwise(points)
        if t1 > t0
    ]


# --- the plot ---------------------------------------------------------------------------
STATUS_COLOURS = {"200": "tab:green", "404": "tab:blue", "503": "tab:orange"}
KIND_MARKERS = ("o", "s", "^", "D", "v")


def _status_class(status: int) -> str:
    if status == 0:
        return "no answer"
    return str(status) if str(status) in STATUS_COLOURS else "other"


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    label: str
    colour: str = "tab:red"


@dataclass(frozen=True)
class Panel:
    """A lower panel: timeline series (name → legend) against seconds."""

    series: dict[str, str]
    ylabel: str
    title: str
    steps: tuple[str, ...] = ()  # series whose values hold until the next (gauges)
    height: float = 1.0  # relative to the other lower panels
    log: bool = False  # a symmetric log scale (linear below 1), for rates far apart


def drill_plot(
    path: Path,
    *,
    title: str,
    consumers: ApiConsumers,
    timeline: Timeline,
    windows: list[Window],
    bound_s: float,
    bound_label: str,
    panels: list[Panel],
) -> None:
    """The API's answers (latency by status and kind, log scale), answers per second by
    status, then `panels`; the fault windows shaded in each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows = 2 + len(panels)
    figure, axes = plt.subplots(
        rows,
        1,
        figsize=(12, 3.2 * (2.6 + sum(panel.height for panel in panels))),
        sharex=True,
        layout="constrained",
        gridspec_kw={"height_ratios": [1.6, 1.0] + [panel.height for panel in panels]},
    )
    answers = consumers.of()
    kinds = [kind for kind in consumers.kinds if any(a.kind == kind for a in answers)]
    statuses = ["200", "404", "503", "other", "no answer"]
    colours = {**STATUS_COLOURS, "other": "tab:red", "no answer": "black"}

    latency = axes[0]
    for index, kind in enumerate(kinds):
        for status in statuses:
            points = [a for a in answers if a.kind == kind and _status_class(a.status) == status]
            if points:
                latency.scatter(
                    [a.t for a in points],
                    [max(a.seconds, 1e-3) for a in points],
                    s=14,
                    marker=KIND_MARKERS[index % len(KIND_MARKERS)],
                    color=colours[status],
                    alpha=0.6,
                    linewidths=0,
                )
    latency.axhline(bound_s, color="tab:red", linestyle=":", linewidth=1)
    latency.set_yscale("log")
    slowest = max((a.seconds for a in answers), default=bound_s)
    latency.set_ylim(1e-3, max(bound_s, slowest) * 4)  # room above the bound for labels
    latency.set_ylabel("API answer latency (s, log)")
    latency.set_title("What API consumers saw: each request, by kind (marker) and status (colour)")
    handles = [
        Line2D(
            [],
            [],
            marker=KIND_MARKERS[i % len(KIND_MARKERS)],
            linestyle="",
            color="gray",
            label=kind,
        )
        for i, kind in enumerate(kinds)
    ]
    seen_status = {_status_class(a.status) for a in answers}
    handles += [
        Patch(color=colours[s], label=f"HTTP {s}" if s[0].isdigit() else s)
        for s in statuses
        if s in seen_status
    ]
    handles.append(Line2D([], [], color="tab:red", linestyle=":", label=bound_label))
    handles += [Patch(color=w.colour, alpha=0.25, label=w.label) for w in windows]
    latency.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)

    # Answers per second by status, stacked.
    rate = axes[1]
    end = max((a.t for a in answers), default=0.0) + 1
    seconds = list(range(int(end) + 1))
    bottom = [0] * len(seconds)
    for status in statuses:
        counts = [0] * len(seconds)
        for a in answers:
            if _status_class(a.status) == status:
                counts[int(a.t)] += 1
        if any(counts):
            rate.bar(
                seconds,
                counts,
                width=1.0,
                bottom=bottom,
                align="edge",
                color=colours[status],
                label=f"HTTP {status}" if status[0].isdigit() else status,
            )
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    rate.set_ylabel("answers per second")
    rate.set_title("API answers per second, by status (all kinds)")
    rate.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)

    for axis, panel in zip(axes[2:], panels, strict=True):
        for name, legend in panel.series.items():
            points = timeline.samples.get(name, [])
            if points:
                xs, ys = zip(*points, strict=True)
                if name in panel.steps:
                    axis.step(xs, ys, where="post", label=legend)
                else:
                    axis.plot(xs, ys, label=legend, marker="." if len(xs) < 60 else None)
        axis.set_ylabel(panel.ylabel)
        axis.set_title(panel.title)
        if panel.log:
            axis.set_yscale("symlog", linthresh=1)
        axis.set_ylim(bottom=0)
        axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)

    for axis in axes:
        axis.grid(alpha=0.3)
        for window in windows:
            axis.axvspan(window.start, window.end, color=window.colour, alpha=0.12)
    axes[-1].set_xlabel("time since the drill started (s)")
    figure.suptitle(title)
    figure.savefig(path, dpi=100)
    plt.close(figure)
