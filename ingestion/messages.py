"""A Pub/Sub message's data → a Record, with the read side's rules (records.entities).

Every refusal is a RecordInvalid whose `code` names the class of problem (the dead-letter
`error_code` attribute) and whose text says what is wrong without quoting any value.
"""

import json

from records.entities import Record, RecordInvalid, record_from_mapping

# Four fields of at most 256 characters fit in far less; anything bigger is not a Record.
DATA_MAX_BYTES = 64 * 1024


def record_from_data(data: bytes) -> Record:
    if len(data) > DATA_MAX_BYTES:
        raise RecordInvalid("too_large", f"data is larger than {DATA_MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RecordInvalid("not_utf8", f"data is not UTF-8 (byte {error.start})") from None
    try:
        value = json.loads(text, object_pairs_hook=_Pairs)
    except json.JSONDecodeError as error:
        raise RecordInvalid(
            "invalid_json",
            f"data is not JSON: {error.msg} at line {error.lineno} column {error.colno}",
        ) from None
    except RecursionError:
        raise RecordInvalid("invalid_json", "data is not JSON: nested too deeply") from None
    if not isinstance(value, _Pairs):
        raise RecordInvalid("not_object", f"data must be a JSON object, not {_kind(value)}")
    return record_from_mapping(value)


class _Pairs(list):
    """A JSON object as its key/value pairs, so that a key given twice is seen."""


def _kind(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
