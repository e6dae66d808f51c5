"""`record_from_data`: a Pub/Sub message's bytes → a Record, or a RecordInvalid with a code."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingestion.messages import DATA_MAX_BYTES, record_from_data
from ingestion.tests.support import ERROR_CODES
from records.entities import Record, RecordInvalid

VALID = {"id": "12345", "nombre": "Juan", "apellido": "Perez", "pais": "Argentina"}
SECRET = "S3cr3t-dni-30111222"


def encoded(value: object, *, ensure_ascii: bool = False) -> bytes:
    return json.dumps(value, ensure_ascii=ensure_ascii).encode()


def with_fields(**change: object) -> bytes:
    """VALID with some fields replaced; a field set to `...` is left out."""
    return encoded({key: value for key, value in {**VALID, **change}.items() if value is not ...})


def padded_to(size: int) -> bytes:
    """A valid Record whose JSON is exactly `size` bytes long (an unknown key pads it)."""
    empty = encoded({**VALID, "padding": ""})
    return encoded({**VALID, "padding": "x" * (size - len(empty))})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(encoded(VALID), Record(**VALID), id="plain"),
        pytest.param(
            encoded({"id": "ü-1", "nombre": "José", "apellido": "Müller", "pais": "Perú"}),
            Record(id="ü-1", nombre="José", apellido="Müller", pais="Perú"),
            id="latin-accents",
        ),
        pytest.param(
            encoded({"id": "vn-1", "nombre": "Nguyễn", "apellido": "王小明", "pais": "日本"}),
            Record(id="vn-1", nombre="Nguyễn", apellido="王小明", pais="日本"),
            id="vietnamese-and-cjk",
        ),
        pytest.param(
            encoded({"id": "🙂", "nombre": "Ana 🌎", "apellido": "Gómez", "pais": "México"}),
            Record(id="🙂", nombre="Ana 🌎", apellido="Gómez", pais="México"),
            id="emoji",
        ),
        pytest.param(
            encoded(
                {"id": "e-1", "nombre": "José", "apellido": "😀", "pais": "Perú"}, ensure_ascii=True
            ),
            Record(id="e-1", nombre="José", apellido="😀", pais="Perú"),
            id="json-unicode-escapes",
        ),
        pytest.param(
            encoded({"ID": "7", "Nombre": "Ana", "APELLIDO": "Gómez", "pAiS": "Chile"}),
            Record(id="7", nombre="Ana", apellido="Gómez", pais="Chile"),
            id="keys-in-capitals-and-mixed-case",
        ),
        pytest.param(
            encoded({**VALID, "edad": 33, "meta": {"source": "crm"}, "tags": [1, None]}),
            Record(**VALID),
            id="unknown-keys-ignored",
        ),
        pytest.param(
            encoded(
                {"id": "\t7 ", "nombre": "  Ana\n", "apellido": " de la Cruz ", "pais": " Perú"}
            ),
            Record(id="7", nombre="Ana", apellido="de la Cruz", pais="Perú"),
            id="surrounding-whitespace-trimmed",
        ),
        pytest.param(
            with_fields(id="i" * 128),
            Record(**{**VALID, "id": "i" * 128}),
            id="id-of-128-chars",
        ),
        pytest.param(
            with_fields(nombre="n" * 256, apellido="a" * 256, pais="p" * 256),
            Record(id="12345", nombre="n" * 256, apellido="a" * 256, pais="p" * 256),
            id="texts-of-256-chars",
        ),
        pytest.param(
            with_fields(id="é" * 128, nombre="ñ" * 256),
            Record(**{**VALID, "id": "é" * 128, "nombre": "ñ" * 256}),
            id="limits-count-characters-not-bytes",
        ),
        pytest.param(
            with_fields(nombre=f"  {'n' * 256}  "),
            Record(**{**VALID, "nombre": "n" * 256}),
            id="limit-applies-after-trimming",
        ),
        pytest.param(padded_to(DATA_MAX_BYTES), Record(**VALID), id="data-of-max-bytes"),
    ],
)
def test_valid_data_becomes_a_record(data, expected):
    assert record_from_data(data) == expected


NESTED_ARRAYS = b"[" * 30_000 + b"]" * 30_000
NESTED_OBJECTS = b'{"a":' * 10_000 + b"1" + b"}" * 10_000


@pytest.mark.parametrize(
    ("data", "code", "says"),
    [
        pytest.param(b"\xff\xfe{}", "not_utf8", "UTF-8", id="not-utf8"),
        pytest.param(
            json.dumps({**VALID, "nombre": "José"}, ensure_ascii=False).encode("latin-1"),
            "not_utf8",
            "UTF-8",
            id="latin1-encoded",
        ),
        pytest.param(b"not json", "invalid_json", "JSON", id="not-json"),
        pytest.param(with_fields()[:-5], "invalid_json", "JSON", id="truncated-json"),
        pytest.param(b"", "invalid_json", "JSON", id="empty-bytes"),
        pytest.param(b"  \n ", "invalid_json", "JSON", id="only-whitespace"),
        pytest.param(NESTED_ARRAYS, "invalid_json", "nested", id="deeply-nested-arrays"),
        pytest.param(NESTED_OBJECTS, "invalid_json", "nested", id="deeply-nested-objects"),
        pytest.param(b"[]", "not_object", "object", id="array"),
        pytest.param(encoded([VALID]), "not_object", "object", id="array-of-record"),
        pytest.param(b'"hola"', "not_object", "object", id="string"),
        pytest.param(b"42", "not_object", "object", id="integer"),
        pytest.param(b"4.2", "not_object", "object", id="float"),
        pytest.param(b"null", "not_object", "object", id="null"),
        pytest.param(b"true", "not_object", "object", id="true"),
        *[
            pytest.param(
                with_fields(**{field: ...}), "missing_field", f"'{field}'", id=f"{field}-missing"
            )
            for field in VALID
        ],
        *[
            pytest.param(
                with_fields(**{field: None}), "missing_field", f"'{field}'", id=f"{field}-null"
            )
            for field in VALID
        ],
        pytest.param(with_fields(id=12345), "invalid_field", "'id'", id="id-number"),
        pytest.param(with_fields(nombre=["Juan"]), "invalid_field", "'nombre'", id="nombre-list"),
        pytest.param(
            with_fields(apellido={"v": "Perez"}),
            "invalid_field",
            "'apellido'",
            id="apellido-object",
        ),
        pytest.param(with_fields(pais=True), "invalid_field", "'pais'", id="pais-bool"),
        pytest.param(with_fields(pais=1.5), "invalid_field", "'pais'", id="pais-float"),
        *[
            pytest.param(
                with_fields(**{field: ""}), "invalid_field", f"'{field}'", id=f"{field}-empty"
            )
            for field in VALID
        ],
        *[
            pytest.param(
                with_fields(**{field: " \t\n "}), "invalid_field", f"'{field}'", id=f"{field}-blank"
            )
            for field in VALID
        ],
        pytest.param(with_fields(id="i" * 129), "invalid_field", "'id'", id="id-of-129-chars"),
        *[
            pytest.param(
                with_fields(**{field: "x" * 257}),
                "invalid_field",
                f"'{field}'",
                id=f"{field}-257-chars",
            )
            for field in ("nombre", "apellido", "pais")
        ],
        pytest.param(with_fields(id="a/b"), "invalid_field", "'id'", id="id-with-slash"),
        pytest.param(with_fields(id="a\x00b"), "invalid_field", "'id'", id="id-with-nul"),
        pytest.param(with_fields(id="a\nb"), "invalid_field", "'id'", id="id-with-newline"),
        pytest.param(with_fields(id="a\x1bb"), "invalid_field", "'id'", id="id-with-escape"),
        pytest.param(encoded({**VALID, "ID": "67890"}), "invalid_field", "'id'", id="id-and-ID"),
        pytest.param(
            encoded({**VALID, "Nombre": "Ana"}), "invalid_field", "'nombre'", id="nombre-and-Nombre"
        ),
        pytest.param(
            b'{"id": "1", "id": "2", "nombre": "a", "apellido": "b", "pais": "c"}',
            "invalid_field",
            "'id' is given more than once",
            id="id-twice-same-spelling",
        ),
        pytest.param(
            padded_to(DATA_MAX_BYTES + 1), "too_large", str(DATA_MAX_BYTES), id="one-byte-too-large"
        ),
        pytest.param(b"\xff" * (DATA_MAX_BYTES * 2), "too_large", "larger", id="large-garbage"),
    ],
)
def test_invalid_data_is_refused_with_a_code_naming_the_problem(data, code, says):
    with pytest.raises(RecordInvalid) as raised:
        record_from_data(data)

    assert raised.value.code == code
    assert says in str(raised.value)


def test_nested_json_cases_stay_under_the_size_limit():
    """Otherwise `too_large` would hide what the nesting cases mean to test."""
    assert len(NESTED_ARRAYS) <= DATA_MAX_BYTES
    assert len(NESTED_OBJECTS) <= DATA_MAX_BYTES


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(with_fields(nombre=SECRET * 20), id="too-long-text"),
        pytest.param(with_fields(id=SECRET * 10), id="too-long-id"),
        pytest.param(with_fields(apellido=[SECRET]), id="list"),
        pytest.param(with_fields(pais={"value": SECRET}), id="object"),
        pytest.param(with_fields(id=f"{SECRET}/1"), id="id-with-slash"),
        pytest.param(with_fields(id=f"{SECRET}\x00"), id="id-with-control-char"),
        pytest.param(encoded({**VALID, "ID": SECRET}), id="duplicate-field"),
        pytest.param(encoded(SECRET), id="json-string"),
        pytest.param(with_fields(nombre=SECRET)[:-30], id="truncated-json"),
        pytest.param(f'{{"nombre": "{SECRET}" "x"}}'.encode(), id="broken-json"),
        pytest.param(with_fields(nombre=SECRET) + b"\xff", id="not-utf8"),
        pytest.param(
            padded_to(DATA_MAX_BYTES + 1).replace(b"12345", SECRET.encode()), id="too-large"
        ),
    ],
)
def test_errors_never_quote_the_offending_value(data):
    with pytest.raises(RecordInvalid) as raised:
        record_from_data(data)

    text = str(raised.value)
    assert SECRET not in text
    assert "30111222" not in text
    assert all(SECRET not in str(arg) for arg in raised.value.args)


HUGE_INTEGER = "9" * 5000  # past Python's 4,300-digit limit for int()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            encoded({**VALID, "edad": 0}).replace(b"0}", HUGE_INTEGER.encode() + b"}"), id="int"
        ),
        pytest.param(
            encoded({**VALID, "meta": [0]}).replace(b"[0]", f"[-{HUGE_INTEGER}]".encode()),
            id="negative-int-in-array",
        ),
        pytest.param(encoded({**VALID, "x": 0}).replace(b"0}", b"1e99999}"), id="float-overflow"),
        pytest.param(
            encoded({**VALID, "x": 0}).replace(b"0}", f"0.{HUGE_INTEGER}}}".encode()),
            id="float-of-5000-digits",
        ),
    ],
)
def test_huge_numbers_under_unknown_keys_are_ignored_like_any_unknown_value(data):
    assert record_from_data(data) == Record(**VALID)


def test_a_huge_number_as_a_field_is_an_invalid_field():
    data = encoded({**VALID, "pais": 0}).replace(b"0}", HUGE_INTEGER.encode() + b"}")

    with pytest.raises(RecordInvalid) as raised:
        record_from_data(data)

    assert (raised.value.code, "'pais'" in str(raised.value)) == ("invalid_field", True)


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_not_json(constant):
    data = encoded({**VALID, "x": 0}).replace(b"0}", constant + b"}")

    with pytest.raises(RecordInvalid) as raised:
        record_from_data(data)

    assert raised.value.code == "invalid_json"


def test_a_huge_number_alone_is_not_an_object():
    with pytest.raises(RecordInvalid) as raised:
        record_from_data(HUGE_INTEGER.encode())

    assert (raised.value.code, str(raised.value)) == (
        "not_object",
        "data must be a JSON object, not a number",
    )


@given(data=st.binary(max_size=2048))
@settings(max_examples=500, deadline=None)
def test_any_bytes_become_a_record_or_a_coded_refusal(data):
    try:
        record = record_from_data(data)
    except RecordInvalid as error:
        assert error.code in ERROR_CODES
    else:
        assert isinstance(record, Record)
