"""Run the drills: `python -m loadtests.drills [name …]` (all of them by default)."""

import argparse
import importlib
import sys
import time
import traceback

from loadtests.drills import Outcome, Report

# In the order they run: module names in this package.
DRILLS = (
    "subscriber_crash",
    "warehouse_outage",
    "warehouse_latency",
    "cache_outage",
    "poison_flood",
    "graceful_shutdown",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"drills to run: {', '.join(DRILLS)}")
    args = parser.parse_args()
    if unknown := set(args.names) - set(DRILLS):
        parser.error(f"no such drill: {', '.join(sorted(unknown))}")
    report = Report()
    outcomes: list[Outcome] = []
    for name in args.names or DRILLS:
        print(f"==> drill {name}", flush=True)
        started = time.monotonic()
        try:
            module = importlib.import_module(f"loadtests.drills.{name}")
            outcome = module.drill(report)
        except Exception as error:  # a drill that breaks is a failed drill, and the rest run
            traceback.print_exc()
            outcome = Outcome(
                name=name, passed=False, failures=[f"{type(error).__name__}: {error}"]
            )
        outcome.figures.setdefault("took_s", round(time.monotonic() - started))
        report.save(outcome)
        print(outcome.line(), flush=True)
        outcomes.append(outcome)
    passed = sum(outcome.passed for outcome in outcomes)
    print(f"\n{passed}/{len(outcomes)} drills passed")
    for outcome in outcomes:
        print("  " + outcome.line())
    return 0 if passed == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
