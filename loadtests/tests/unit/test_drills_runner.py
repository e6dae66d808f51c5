"""The drills' runner: one line per drill, a summary, and an exit code that tells."""

import sys
import types

import pytest

from loadtests.drills import Checks, Outcome, Report
from loadtests.drills import __main__ as runner


def test_a_drill_passes_only_when_every_check_holds():
    checks = Checks()
    assert checks.check(True, "never shown")
    assert not checks.check(False, "3 records missing")
    outcome = checks.outcome("crash", {"stored": 49_997})
    assert not outcome.passed
    assert outcome.line() == "FAIL  crash: stored 49997 — 3 records missing"
    assert Checks().outcome("crash", {"stored": 50_000}).line() == "PASS  crash: stored 50000"


@pytest.fixture
def drills(monkeypatch, tmp_path):
    """Two drills of this test's own, one passing and one that breaks, reported to tmp."""

    def passing(report: Report) -> Outcome:
        return Outcome(name="passing", passed=True, figures={"stored": 10})

    def breaking(report: Report) -> Outcome:
        raise RuntimeError("emulator gone")

    for name, function in (("passing", passing), ("breaking", breaking)):
        module = types.ModuleType(f"loadtests.drills.{name}")
        module.drill = function  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(runner, "DRILLS", ("passing", "breaking"))
    monkeypatch.setattr(runner, "Report", lambda: Report(directory=tmp_path))
    return tmp_path


def test_a_drill_that_breaks_fails_and_the_others_still_run(drills, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["drills"])
    assert runner.main() == 1
    out = capsys.readouterr().out
    assert "PASS  passing: stored 10" in out
    assert "FAIL  breaking" in out and "RuntimeError: emulator gone" in out
    assert "1/2 drills passed" in out
    assert (drills / "drill-breaking.json").exists()


def test_all_passing_exits_zero_and_names_are_checked(drills, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["drills", "passing"])
    assert runner.main() == 0
    monkeypatch.setattr(sys, "argv", ["drills", "nope"])
    with pytest.raises(SystemExit):
        runner.main()
