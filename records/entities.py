"""The Record and its rules, shared by the API (ids in URLs) and ingestion (messages)."""

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

FIELDS = ("id", "nombre", "apellido", "pais")
ID_MAX_LENGTH = 128
TEXT_MAX_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Record:
    id: str
    nombre: str
    apellido: str
    pais: str

    def as_dict(self) -> dict[str, str]:
        # Spelled out: dataclasses.asdict deep-copies field by field, ~15× slower, and
        # this runs per row on the write path and on every page the API serves.
        return {"id": self.id, "nombre": self.nombre, "apellido": self.apellido, "pais": self.pais}


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A Record as the warehouse keeps it, with its lineage (latest `published_at` wins,
    then the latest ingestion: a row stored twice, by a redelivery or a retried append,
    never shows twice)."""

    record: Record
    published_at: datetime
    message_id: str | None = None


class RecordInvalid(ValueError):
    """A Record that breaks the contract; `code` is machine-readable, the text is not."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# Unicode categories no name holds: controls, surrogates, private use, line and paragraph
# separators, and format characters (bidi overrides and isolates, marks, BOM)...
_NOT_TEXT = frozenset({"Cc", "Cs", "Co", "Zl", "Zp", "Cf"})
# ...except the zero-width (non-)joiners that Persian, Indic scripts and emoji need.
_JOINERS = frozenset("\u200c\u200d")


def text_is_printable(value: str) -> bool:
    """Whether `value` is text a terminal, a log or a browser shows as it is."""
    if value.isprintable():  # the fast path: str.isprintable refuses a superset
        return True
    return all(char in _JOINERS or unicodedata.category(char) not in _NOT_TEXT for char in value)


def record_id_is_valid(value: str) -> bool:
    """Whether `value` can be a Record id: 1–128 printable characters without `/`."""
    return 0 < len(value) <= ID_MAX_LENGTH and "/" not in value and text_is_printable(value)


def record_from_mapping(data: Mapping[str, object] | Iterable[tuple[str, object]]) -> Record:
    """Validate a producer's object (a mapping, or its key/value pairs with any repeats):
    keys match case-insensitively, unknown keys are ignored, each of the four fields is
    given once, as a non-empty printable string, trimmed, within its limit."""
    fields: dict[str, object] = {}
    for key, value in data.items() if isinstance(data, Mapping) else data:
        name = str(key).lower()
        if name in fields and name in FIELDS:
            raise RecordInvalid("invalid_field", f"field '{name}' is given more than once")
        fields[name] = value
    values = {}
    for name in FIELDS:
        if name not in fields or fields[name] is None:
            raise RecordInvalid("missing_field", f"field '{name}' is required")
        value = fields[name]
        if not isinstance(value, str):
            raise RecordInvalid("invalid_field", f"field '{name}' must be a string")
        value = value.strip()
        if not value:
            raise RecordInvalid("invalid_field", f"field '{name}' must not be empty")
        limit = ID_MAX_LENGTH if name == "id" else TEXT_MAX_LENGTH
        if len(value) > limit:
            raise RecordInvalid(
                "invalid_field", f"field '{name}' is longer than {limit} characters"
            )
        if not text_is_printable(value):
            raise RecordInvalid(
                "invalid_field",
                f"field '{name}' must be printable text (no control, format or surrogate "
                "characters)",
            )
        if name == "id" and "/" in value:
            raise RecordInvalid("invalid_field", "field 'id' must not contain '/'")
        values[name] = value
    return Record(**values)
