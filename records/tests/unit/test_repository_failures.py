"""How BigQuery's failures are classified (records.repository._failure): the reasons the
API and the subscriber act on. No warehouse: the client's own exception types."""

import pytest
from google.api_core import exceptions as google_exceptions

from records.repository import WarehouseRequestRefused, WarehouseUnavailable, _failure

COST = {"reason": "bytesBilledLimitExceeded", "message": "Query exceeded limit for bytes billed"}


@pytest.mark.parametrize(
    "error",
    [
        # jobs.query answers the refusal itself: HTTP 400.
        google_exceptions.BadRequest("Query exceeded limit for bytes billed", errors=[COST]),
        # A job that failed for it (jobs.insert, or a query that outlived jobs.query's wait):
        # the client maps the job's unknown reason to a 500.
        google_exceptions.InternalServerError("Query exceeded limit", errors=[COST]),
    ],
    ids=["jobs.query-400", "job-error-result"],
)
def test_a_query_refused_for_its_cost_is_unavailable_for_reason_cost(error):
    failure = _failure("list", error)

    assert type(failure) is WarehouseUnavailable
    assert failure.reason == "cost"
    assert not failure.permanent


@pytest.mark.parametrize(
    ("error", "kind", "reason"),
    [
        (
            google_exceptions.BadRequest("bad", errors=[{"reason": "invalid"}]),
            WarehouseRequestRefused,
            "request_refused",
        ),
        (google_exceptions.BadRequest("bad"), WarehouseRequestRefused, "request_refused"),
        (google_exceptions.NotFound("gone"), WarehouseUnavailable, "missing"),
        (
            google_exceptions.Forbidden("q", errors=[{"reason": "quotaExceeded"}]),
            WarehouseUnavailable,
            "quota",
        ),
        (
            google_exceptions.Forbidden("no", errors=[{"reason": "accessDenied"}]),
            WarehouseUnavailable,
            "denied",
        ),
        (
            google_exceptions.InternalServerError("boom", errors=[{"reason": "backendError"}]),
            WarehouseUnavailable,
            "unavailable",
        ),
        (google_exceptions.ServiceUnavailable("down"), WarehouseUnavailable, "unavailable"),
    ],
)
def test_other_reasons_are_unchanged(error, kind, reason):
    failure = _failure("insert", error)

    assert type(failure) is kind
    assert failure.reason == reason
