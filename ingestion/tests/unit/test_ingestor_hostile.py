"""Whatever a producer sends, `Ingestor.receive` never raises: each message ends as one
stored row or one dead letter with its code (hypothesis, through the real callback)."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.messages import DATA_MAX_BYTES
from ingestion.tests.support import ERROR_CODES, Harness

FIELDS = ["id", "ID", "nombre", "Nombre", "apellido", "pais", "PAIS", "extra"]
HOSTILE_CHARACTERS = ["\x00", "\x1b[2J", "\u202e", "\u2066", "\ud800", "\udfff", "\u2028", "/"]


def _json_text() -> st.SearchStrategy[str]:
    """JSON text with the values that break parsers: huge numbers, NaN and Infinity, lone
    surrogates, control and bidi characters, nesting."""
    strings = st.one_of(
        st.text(max_size=40),
        st.lists(st.sampled_from(HOSTILE_CHARACTERS) | st.text(max_size=5), max_size=6).map(
            "".join
        ),
        st.text(min_size=250, max_size=300),
    ).map(json.dumps)  # ensure_ascii: lone surrogates travel as \ud800 escapes
    scalars = st.one_of(
        strings,
        st.integers().map(str),
        st.integers(min_value=4_300, max_value=6_000).map(lambda digits: "9" * digits),
        st.floats(allow_nan=True, allow_infinity=True).map(json.dumps),
        st.sampled_from(["1e999", "-0.0", "true", "false", "null", "NaN", "-Infinity"]),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4).map(lambda items: f"[{','.join(items)}]"),
            st.lists(st.tuples(st.sampled_from(FIELDS) | st.text(max_size=8), children)).map(
                lambda pairs: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in pairs) + "}"
            ),
        ),
        max_leaves=12,
    )


def _records() -> st.SearchStrategy[bytes]:
    """Objects shaped like a Record with some fields hostile, so field rules are reached."""
    valid = {"id": '"7"', "nombre": '"Ana"', "apellido": '"Ruiz"', "pais": '"Chile"'}
    return st.dictionaries(st.sampled_from(list(valid)), _json_text(), max_size=4).map(
        lambda hostile: (
            "{" + ",".join(f'"{k}":{v}' for k, v in {**valid, **hostile}.items()) + "}"
        ).encode("utf-8", errors="surrogatepass")
    )


def _edges() -> st.SearchStrategy[bytes]:
    depth = st.integers(min_value=1, max_value=40_000)
    valid = b'{"id": "7", "nombre": "Ana", "apellido": "Ruiz", "pais": "Chile", "pad": "'
    return st.one_of(
        depth.map(lambda n: b"[" * n + b"]" * n),
        depth.map(lambda n: b'{"a":' * min(n, 10_000) + b"1" + b"}" * min(n, 10_000)),
        st.integers(min_value=-3, max_value=3).map(
            lambda delta: valid + b"x" * (DATA_MAX_BYTES - len(valid) - 2 + delta) + b'"}'
        ),
    )


@given(
    data=st.one_of(st.binary(max_size=512), _json_text().map(str.encode), _records(), _edges()),
    attributes=st.dictionaries(
        st.sampled_from(["source_publish_time", "error_code", "topic", "origin"]),
        st.text(max_size=30),
        max_size=2,
    ),
)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_message_ends_as_one_stored_row_or_one_dead_letter(data, attributes):
    harness = Harness.create()
    ingestor = harness.ingestor(size=1)
    message = harness.message(data, attributes=attributes)

    ingestor.receive(message)  # must not raise, whatever the bytes
    ingestor.stop()
    ingestor.run()  # flushes what was buffered

    assert message.outcome == "ack"
    stored = harness.repository.calls["insert"] == 1
    dead = harness.publisher.publications
    assert stored != bool(dead), (stored, dead)
    if dead:
        [letter] = dead
        assert letter.data == data
        assert letter.attributes["error_code"] in ERROR_CODES
        assert letter.attributes["error"]


def test_an_unexpected_error_while_reading_is_dead_lettered_and_logged_without_data(
    harness, monkeypatch, caplog
):
    def broken(message):
        raise KeyError(f"a bug that quotes the data: {message.data!r}")

    monkeypatch.setattr("ingestion.subscriber.stored_record_from_message", broken)
    ingestor = harness.ingestor(size=1)
    message = harness.message({"nombre": "Secreta"})

    ingestor.receive(message)

    assert message.outcome == "ack"
    [letter] = harness.publisher.publications
    assert letter.attributes["error_code"] == "unexpected_error"
    assert "KeyError" in letter.attributes["error"]
    assert "Secreta" not in letter.attributes["error"]
    [logged] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert logged.error_type == "KeyError"
    assert "Secreta" not in logged.getMessage() + logged.where
