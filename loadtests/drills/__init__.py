"""`make drills`: the faults the original design names, each played on the local pipeline.

Each drill is a module of this package with a `drill(report: Report) -> Outcome` function
(registered in DRILLS, in the order they run). A drill starts its own `Pipeline`
(loadtests/harness.py), plays its fault, checks what an operator would check, and returns
an Outcome: passed or not, one line of figures, and the checks that failed. It writes its
timeline plot into the report folder. Everything targets 127.0.0.1, is bounded in time
and messages, and stops by itself.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scripts.devstack import REPO

REPORT_DIR = REPO / "docs" / "critical-points"


@dataclass
class Outcome:
    name: str
    passed: bool
    figures: dict[str, float | int | str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    plot: str = ""  # file name in the report folder

    def line(self) -> str:
        shown = ", ".join(f"{key} {value}" for key, value in self.figures.items())
        verdict = "PASS" if self.passed else "FAIL"
        why = f" — {'; '.join(self.failures)}" if self.failures else ""
        return f"{verdict}  {self.name}: {shown}{why}"


class Checks:
    """What a drill asserts: every check is kept, the drill passes only if all hold."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def check(self, holds: bool, failure: str) -> bool:
        if not holds:
            self.failures.append(failure)
        return holds

    def outcome(self, name: str, figures: dict, plot: str = "") -> Outcome:
        return Outcome(
            name=name,
            passed=not self.failures,
            figures=figures,
            failures=self.failures,
            plot=plot,
        )


@dataclass
class Report:
    """Where a run writes its figures (JSON) and plots (PNG)."""

    directory: Path = REPORT_DIR

    def path(self, name: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / name

    def save(self, outcome: Outcome) -> None:
        self.path(f"drill-{outcome.name}.json").write_text(
            json.dumps(asdict(outcome), indent=2) + "\n"
        )
