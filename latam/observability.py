"""Logs, traces and metrics shared by every process (API workers, commands, subscriber).

Logs are JSON lines for Cloud Logging: `severity`, `message` and the request's trace.
Nothing here logs a request path or a record: record values (and ids) are personal data,
so requests are identified by their route name only.
"""

import contextvars
import logging
import re
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from prometheus_client import Counter, Histogram

logger = logging.getLogger("latam.request")

_trace_id: contextvars.ContextVar[str] = contextvars.ContextVar("trace_id", default="")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-(?P<trace>[0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_CLOUD_TRACE = re.compile(r"^(?P<trace>[0-9a-fA-F]{32})(/.*)?$")
# Any token is a valid method: a label value per token would let clients grow the
# metrics (and gunicorn's multiprocess files) without bound.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
# Where a request answered outside Django's URL resolver (the probes) keeps its route name.
_ROUTE_ATTRIBUTE = "route_name"

HTTP_REQUESTS = Counter(
    "latam_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "latam_http_request_duration_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def trace_id_from_headers(*, cloud_trace: str, traceparent: str) -> str:
    """The trace id of a request: W3C `traceparent` first, then Google's own header."""
    for header, pattern in ((traceparent, _TRACEPARENT), (cloud_trace, _CLOUD_TRACE)):
        match = pattern.match(header.strip())
        if match:
            return match["trace"].lower()
    return ""


class TraceFilter(logging.Filter):
    """Adds the current request's trace in the field Cloud Logging correlates on."""

    def filter(self, record: logging.LogRecord) -> bool:
        trace_id = _trace_id.get()
        if trace_id:
            setattr(
                record,
                "logging.googleapis.com/trace",
                f"projects/{settings.GCP_PROJECT}/traces/{trace_id}",
            )
        return True


def route_name_set(request: HttpRequest, name: str) -> None:
    """Name the route of a request that Django's URL resolver does not see (a probe,
    answered by a middleware): the metrics and the log line label it so."""
    setattr(request, _ROUTE_ATTRIBUTE, name)


class RequestObservabilityMiddleware:
    """Binds the trace id, times the request, counts it by route, logs one line."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        token = _trace_id.set(
            trace_id_from_headers(
                cloud_trace=request.headers.get("X-Cloud-Trace-Context", ""),
                traceparent=request.headers.get("traceparent", ""),
            )
        )
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            elapsed = time.perf_counter() - started
            match = request.resolver_match
            route = match.view_name if match else getattr(request, _ROUTE_ATTRIBUTE, "unmatched")
            method = request.method if request.method in _METHODS else "other"
            HTTP_REQUESTS.labels(method, route, str(response.status_code)).inc()
            HTTP_LATENCY.labels(route).observe(elapsed)
            logger.info(
                "request",
                extra={
                    "httpMethod": method,
                    "route": route,
                    "status": response.status_code,
                    "latency_ms": round(elapsed * 1000, 2),
                },
            )
            return response
        finally:
            _trace_id.reset(token)
