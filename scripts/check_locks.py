"""Check that each requirements*.txt lock still matches its requirements*.in: every
direct pin of the .in at the same version, every locked package with hashes, and the
dev lock at the runtime lock's versions. Offline; `make lock` fixes a failure."""

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def _name(raw: str) -> str:
    return re.sub(r"[-_.]+", "-", raw).lower()


def pins(text: str) -> dict[str, str]:
    return {_name(name): version for name, version in PIN.findall(text)}


def lock_problems(*, source: Path, lock: Path) -> list[str]:
    if not lock.is_file():
        return [f"{lock.name} is missing: run `make lock`"]
    text = lock.read_text()
    locked = pins(text)
    problems = [
        f"{lock.name}: {name} is {locked.get(name, 'absent')}, {source.name} pins {version}"
        for name, version in pins(source.read_text()).items()
        if locked.get(name) != version
    ]
    # Each requirement is its pin line and the continuation lines after it, up to the next.
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text):
        if PIN.match(entry) and "--hash=sha256:" not in entry:
            problems.append(f"{lock.name}: {entry.split()[0]} has no hash")
    return problems


def main() -> int:
    problems = []
    for name in ("requirements", "requirements-dev", "requirements-iac"):
        problems += lock_problems(source=REPO / f"{name}.in", lock=REPO / f"{name}.txt")
    runtime = pins((REPO / "requirements.txt").read_text())
    dev = pins((REPO / "requirements-dev.txt").read_text())
    problems += [
        f"requirements-dev.txt: {name} is {dev.get(name)}, requirements.txt locks {version}"
        for name, version in runtime.items()
        if dev.get(name) != version
    ]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("locks out of date: run `make lock`", file=sys.stderr)
        return 1
    print("requirements locks: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
