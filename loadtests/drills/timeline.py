"""A drill's timeline: values sampled over time, the events it played, and their plot."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# An event's kind → its colour and its legend.
EVENT_STYLES = {
    "kill": ("tab:red", "SIGKILL, then restart"),
    "sigterm": ("tab:orange", "SIGTERM"),
    "start": ("tab:green", "subscriber (re)started"),
    "publish": ("tab:purple", "all messages published"),
    "exit": ("tab:brown", "process exited"),
    "done": ("black", "all records stored"),
}


@dataclass
class Timeline:
    """Seconds since the drill's start (time.monotonic() at creation) → samples, events."""

    started: float = field(default_factory=time.monotonic)
    samples: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (t, kind, label)

    def now(self) -> float:
        return time.monotonic() - self.started

    def at(self, monotonic: float) -> float:
        return monotonic - self.started

    def event(self, kind: str, label: str, at: float | None = None) -> float:
        """Note an event (now, or at a time.monotonic() value); return its time."""
        t = self.now() if at is None else self.at(at)
        self.events.append((t, kind, label))
        return t

    def record(self, series: str, value: float, at: float | None = None) -> None:
        t = self.now() if at is None else self.at(at)
        self.samples.setdefault(series, []).append((t, value))

    def last(self, series: str) -> float:
        points = self.samples.get(series)
        return points[-1][1] if points else 0.0


class Sampler:
    """Calls `measure` every `interval` seconds in a thread and records its value; a
    failed sample (the warehouse busy) is skipped, not fatal. Use as a context manager."""

    def __init__(
        self, timeline: Timeline, series: str, measure: Callable[[], float], interval: float
    ):
        self._timeline, self._series, self._measure = timeline, series, measure
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sample-{series}", daemon=True)
        self.errors = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            begun = time.monotonic()
            try:
                self._timeline.record(self._series, self._measure())
            except Exception:  # a sample lost is a gap in the plot, nothing more
                self.errors += 1
            self._stop.wait(max(self._interval - (time.monotonic() - begun), 0.01))

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)


def timeline_plot(
    timeline: Timeline,
    path: Path,
    *,
    title: str,
    series: dict[str, str],
    ylabel: str,
    secondary: dict[str, str] | None = None,
    secondary_label: str = "",
    xlabel: str = "time since the drill started (s)",
) -> None:
    """Plot `series` (name → legend) against seconds, `secondary` on a right-hand axis,
    and each event as a labelled vertical line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(10, 5.5), layout="constrained")
    handles = []
    for name, legend in series.items():
        points = timeline.samples.get(name, [])
        if points:
            xs, ys = zip(*points, strict=True)
            handles += axis.plot(xs, ys, label=legend)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    if secondary:
        right = axis.twinx()
        for index, (name, legend) in enumerate(secondary.items()):
            points = timeline.samples.get(name, [])
            if points:
                xs, ys = zip(*points, strict=True)
                handles += right.plot(
                    xs, ys, label=legend, color=f"C{len(series) + index}", alpha=0.7
                )
        right.set_ylabel(secondary_label)
        right.set_ylim(bottom=0)
    seen: set[str] = set()
    for t, kind, _ in timeline.events:
        colour, legend = EVENT_STYLES.get(kind, ("tab:gray", kind))
        line = axis.axvline(t, color=colour, linestyle="--", linewidth=1)
        if kind not in seen:
            line.set_label(legend)
            handles.append(line)
            seen.add(kind)
    # Below the plot, where it hides no line.
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8)
    figure.canvas.draw()  # the layout, so that points per second are known
    left, right_end = axis.get_xlim()
    points_per_second = axis.get_position().width * figure.get_figwidth() * 72 / (right_end - left)
    top = axis.get_ylim()[1]
    next_free = -float("inf")  # where, in points from the left, a label may start
    for t, kind, label in sorted(timeline.events):
        # A label beside its line, or beside the previous label when events are close.
        at = (t - left) * points_per_second
        offset = max(2.0, next_free - at)
        next_free = at + offset + 11  # a rotated line of 8-point text
        axis.annotate(
            label,
            (t, top),
            xytext=(offset, -4),
            textcoords="offset points",
            rotation=90,
            va="top",
            fontsize=8,
            color=EVENT_STYLES.get(kind, ("tab:gray", kind))[0],
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 0.5},
        )
    axis.set_title(title)
    figure.savefig(path, dpi=110)
    plt.close(figure)
