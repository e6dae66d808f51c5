"""Imports flow one way: ingestion → records → latam. The tests of each package may use
the others; its code may not reach up."""

import ast
from pathlib import Path

import pytest

from scripts.devstack import REPO

ABOVE = {"latam": {"records", "ingestion"}, "records": {"ingestion"}, "ingestion": set()}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name.split(".")[0] for name in names}


def modules_of(package: str) -> list[Path]:
    return [path for path in (REPO / package).rglob("*.py") if "tests" not in path.parts]


@pytest.mark.parametrize("package", sorted(ABOVE))
def test_no_package_imports_one_above_it(package):
    offenders = {
        str(path.relative_to(REPO)): sorted(imported_packages(path) & ABOVE[package])
        for path in modules_of(package)
        if imported_packages(path) & ABOVE[package]
    }

    assert offenders == {}


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from ingestion.publishing import MessagePublisher\nimport records.wiring\n")

    assert imported_packages(module) == {"ingestion", "records"}
