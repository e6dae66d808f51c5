"""A Pub/Sub message → a Record, with the read side's rules (records.entities).

Every refusal is a RecordInvalid whose `code` names the class of problem (the dead-letter
`error_code` attribute) and whose text says what is wrong without quoting any value.
"""

import json
from datetime import datetime

from google.cloud.pubsub_v1.subscriber.message import Message

from records.entities import Record, RecordInvalid, StoredRecord, record_from_mapping

# Four fields of at most 256 characters fit in far less; anything bigger is not a Record.
DATA_MAX_BYTES = 64 * 1024
# When the data was first published, carried by a dead letter and by its replay, so that
# replaying an old version never hides a newer one (reads keep the latest per id).
SOURCE_PUBLISH_TIME = "source_publish_time"


def stored_record_from_message(message: Message) -> StoredRecord:
    return StoredRecord(
        record=record_from_data(message.data),
        published_at=message_published_at(message),
        message_id=message.message_id,
    )


def message_published_at(message: Message) -> datetime:
    """The message's publish time, or the earlier one its SOURCE_PUBLISH_TIME attribute
    gives (never a later one: an attribute cannot make data newer than it is)."""
    raw = message.attributes.get(SOURCE_PUBLISH_TIME)
    if raw is None:
        return message.publish_time
    try:
        original = datetime.fromisoformat(raw)
    except ValueError:
        original = None
    if original is None or original.tzinfo is None:
        raise RecordInvalid(
            "invalid_attribute",
            f"attribute '{SOURCE_PUBLISH_TIME}' must be an ISO 8601 time with its UTC offset",
        )
    return min(original, message.publish_time)


class _Number:
    """A JSON number, kept as text: no field of a Record is a number, so none is ever
    converted (int() refuses more than 4,300 digits, which would be a crash, not a 400)."""

    __slots__ = ()


_NUMBER = _Number()


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


_decoder = json.JSONDecoder(
    object_pairs_hook=lambda pairs: _Pairs(pairs),
    parse_int=lambda _: _NUMBER,
    parse_float=lambda _: _NUMBER,
    parse_constant=_refuse_constant,
)


def record_from_data(data: bytes) -> Record:
    if len(data) > DATA_MAX_BYTES:
        raise RecordInvalid("too_large", f"data is larger than {DATA_MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RecordInvalid("not_utf8", f"data is not UTF-8 (byte {error.start})") from None
    try:
        value = _decoder.decode(text)
    except json.JSONDecodeError as error:
        raise RecordInvalid(
            "invalid_json",
            f"data is not JSON: {error.msg} at line {error.lineno} column {error.colno}",
        ) from None
    except ValueError as error:  # NaN and Infinity
        raise RecordInvalid("invalid_json", f"data is not JSON: {error}") from None
    except RecursionError:
        raise RecordInvalid("invalid_json", "data is not JSON: nested too deeply") from None
    if not isinstance(value, _Pairs):
        raise RecordInvalid("not_object", f"data must be a JSON object, not {_kind(value)}")
    return record_from_mapping(value)


class _Pairs(list[tuple[str, object]]):
    """A JSON object as its key/value pairs, so that a key given twice is seen."""


def _kind(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
