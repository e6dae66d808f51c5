import json
import logging

import pytest

from latam.jsonlog import cloud_logging_formatter
from latam.observability import TraceFilter, _trace_id, trace_id_from_headers

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("cloud_trace", "traceparent", "expected"),
    [
        ("", f"00-{TRACE}-00f067aa0ba902b7-01", TRACE),
        (f"{TRACE.upper()}/123;o=1", "", TRACE),
        ("105445aa7843bc8bf206b12000100000/1;o=1", f"00-{TRACE}-00f067aa0ba902b7-01", TRACE),
        ("garbage", "also-garbage", ""),
        ("", "", ""),
    ],
)
def test_trace_id_from_headers(cloud_trace, traceparent, expected):
    assert trace_id_from_headers(cloud_trace=cloud_trace, traceparent=traceparent) == expected


def test_log_lines_are_json_with_severity_message_and_trace(settings):
    token = _trace_id.set(TRACE)
    try:
        record = logging.LogRecord(
            "latam.x", logging.WARNING, __file__, 1, "warehouse slow", (), None
        )
        TraceFilter().filter(record)
        line = json.loads(cloud_logging_formatter().format(record))
    finally:
        _trace_id.reset(token)

    assert line["severity"] == "WARNING"
    assert line["message"] == "warehouse slow"
    assert line["logging.googleapis.com/trace"] == f"projects/{settings.GCP_PROJECT}/traces/{TRACE}"


def test_request_logs_name_the_route_never_the_record(client, fake_repository, caplog):
    from records.entities import Record

    fake_repository.add(
        [Record(id="dni-30111222", nombre="Marisol", apellido="Prada", pais="Chile")]
    )
    caplog.set_level(logging.INFO)

    client.get("/records/dni-30111222", HTTP_TRACEPARENT=f"00-{TRACE}-00f067aa0ba902b7-01")
    client.get("/records/dni-99999999")

    lines = [cloud_logging_formatter().format(record) for record in caplog.records]
    assert any('"route": "record-detail"' in line for line in lines)
    for secret in ("dni-30111222", "dni-99999999", "Marisol", "Prada"):
        assert all(secret not in line for line in lines)
