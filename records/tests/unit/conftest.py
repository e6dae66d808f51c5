"""What the API's unit tests share: records in the in-memory repository, Link headers."""

import re

import pytest

from records.entities import Record


def make_records(count: int) -> list[Record]:
    return [
        Record(id=f"id-{n:04d}", nombre=f"Nombre{n}", apellido="Pérez", pais="Chile")
        for n in range(count)
    ]


@pytest.fixture
def stored(fake_repository):
    records = make_records(250)
    fake_repository.add(records)
    return records


def link_targets(header: str) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', header)}
