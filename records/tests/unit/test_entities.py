import dataclasses

import pytest

from records.entities import (
    FIELDS,
    Record,
    RecordInvalid,
    record_from_mapping,
    record_id_is_valid,
)

VALID = {"id": "12345", "nombre": "Juan", "apellido": "Perez", "pais": "Argentina"}


def test_valid_mapping_becomes_a_trimmed_record():
    record = record_from_mapping({**VALID, "nombre": "  Juan \t"})

    assert record == Record(id="12345", nombre="Juan", apellido="Perez", pais="Argentina")


def test_as_dict_has_every_field_in_contract_order():
    record = Record(id="1", nombre="Ana", apellido="Gómez", pais="Perú")

    # as_dict is spelled out for speed: a field added to Record must be added there too.
    assert record.as_dict() == dataclasses.asdict(record)
    assert tuple(record.as_dict()) == FIELDS


def test_keys_match_case_insensitively_and_unknown_keys_are_ignored():
    record = record_from_mapping(
        {"ID": "7", "Nombre": "Ana", "APELLIDO": "Gómez", "pais": "Perú", "edad": 33}
    )

    assert record == Record(id="7", nombre="Ana", apellido="Gómez", pais="Perú")


def test_unicode_names_are_kept():
    record = record_from_mapping({**VALID, "nombre": "José Ñúñez", "apellido": "Pérez-Çelik"})

    assert (record.nombre, record.apellido) == ("José Ñúñez", "Pérez-Çelik")


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"id": None}, "missing_field", "id"),
        ({"nombre": None}, "missing_field", "nombre"),
        ({"pais": 5}, "invalid_field", "pais"),
        ({"apellido": ["Perez"]}, "invalid_field", "apellido"),
        ({"nombre": "   "}, "invalid_field", "nombre"),
        ({"id": ""}, "invalid_field", "id"),
        ({"id": "a/b"}, "invalid_field", "id"),
        ({"id": "line\nbreak"}, "invalid_field", "id"),
        ({"id": "x" * 129}, "invalid_field", "id"),
        ({"nombre": "x" * 257}, "invalid_field", "nombre"),
    ],
)
def test_invalid_mappings_say_which_field_and_why(change, code, field):
    data = {key: value for key, value in {**VALID, **change}.items() if value is not None}

    with pytest.raises(RecordInvalid) as raised:
        record_from_mapping(data)

    assert raised.value.code == code
    assert f"'{field}'" in str(raised.value)


@pytest.mark.parametrize("change", [{"id": "x" * 128}, {"nombre": "x" * 256}, {"pais": "P"}])
def test_limits_are_inclusive(change):
    record = record_from_mapping({**VALID, **change})

    assert record.as_dict() == {**VALID, **change}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("abc-123", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        ("a/b", False),
        ("tab\there", False),
        ("Pérez 1", True),
    ],
)
def test_record_id_rules(value, valid):
    assert record_id_is_valid(value) is valid


HOSTILE_TEXT = {
    "nul": "Ana\x00",
    "escape": "Ana\x1b[31m",
    "delete": "Ana\x7f",
    "c1-control": "Ana\x85x",
    "newline-inside": "Ana\nMaría",
    "bidi-override": "Ana\u202egnaro",
    "bidi-isolate": "\u2066Ana\u2069",
    "right-to-left-mark": "Ana\u200f",
    "line-separator": "Ana\u2028María",
    "byte-order-mark": "\ufeffAna",
    "lone-surrogate": "Ana\ud800",
    "private-use": "Ana\ue000",
}


@pytest.mark.parametrize("field", ["id", "nombre", "apellido", "pais"])
@pytest.mark.parametrize("value", HOSTILE_TEXT.values(), ids=HOSTILE_TEXT.keys())
def test_every_field_refuses_control_bidi_and_surrogate_characters(field, value):
    with pytest.raises(RecordInvalid) as raised:
        record_from_mapping({**VALID, field: value})

    assert raised.value.code == "invalid_field"
    assert f"'{field}'" in str(raised.value)


@pytest.mark.parametrize(
    "value",
    [
        "María José",
        "Nguyễn 王小明",
        "محمد",
        "می\u200cخواهم",  # Persian: a zero-width non-joiner belongs in the word
        "👨\u200d👩\u200d👧",  # an emoji sequence joined by zero-width joiners
        "Ana\u00a0María",  # a no-break space
    ],
)
def test_every_field_accepts_the_text_of_real_names(value):
    record = record_from_mapping({"id": value, "nombre": value, "apellido": value, "pais": value})

    assert record.as_dict() == {"id": value, "nombre": value, "apellido": value, "pais": value}
