"""Realistic fake records: Latin-American names and countries, deterministic with a seed."""

import random
import uuid
from collections.abc import Iterator

from faker import Faker

from records.entities import Record

# Faker locale → the country its names come from.
COUNTRIES = {
    "es_AR": "Argentina",
    "pt_BR": "Brasil",
    "es_CL": "Chile",
    "es_CO": "Colombia",
    "es_MX": "México",
}


def records_fake(*, count: int, seed: int | None = None) -> Iterator[Record]:
    faker = Faker(list(COUNTRIES))
    # Ids come from one generator: Faker's per-locale generators share a seed, so their
    # uuid4() values would repeat across locales.
    ids = random.Random(seed)  # noqa: S311 - fake data, not a secret
    if seed is not None:
        faker.seed_instance(seed)
    for _ in range(count):
        locale = ids.choice(list(COUNTRIES))
        person = faker[locale]
        yield Record(
            id=str(uuid.UUID(int=ids.getrandbits(128), version=4)),
            nombre=person.first_name(),
            apellido=person.last_name(),
            pais=COUNTRIES[locale],
        )
