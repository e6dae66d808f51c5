"""Every error is JSON `{"error": "..."}` with a status code that tells the truth."""

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler

from records.repository import WarehouseUnavailable

logger = logging.getLogger(__name__)

UNAVAILABLE_BODY = {"error": "The records warehouse is unavailable; retry later"}
UNAVAILABLE_HEADERS = {"Retry-After": "5"}
BAD_REQUEST_BODY = {"error": "Bad request"}
# Headers of a refusal that a client needs, kept when its body is replaced.
_KEPT_HEADERS = ("Allow", "Retry-After")


def _first_message(detail: object) -> str:
    if isinstance(detail, dict):
        detail = detail.get("detail", next(iter(detail.values()), ""))
    if isinstance(detail, list):
        detail = detail[0] if detail else ""
    return str(detail)


def _log_refused(exception: Exception | None) -> None:
    # The kind of fault only: the path carries record ids, and the Host, query or body of
    # a hostile request may carry anything.
    logger.warning(
        "malformed or suspicious request refused",
        extra={"error_type": type(exception).__name__, "status": 400},
    )


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's handler, with every body reshaped to `{"error": ...}` and known failures mapped."""
    # Copies: renderers may write into a response's data (TemplateHTMLRenderer does).
    if isinstance(exc, WarehouseUnavailable):
        return Response(dict(UNAVAILABLE_BODY), status=503, headers=UNAVAILABLE_HEADERS)
    # What Django answers 400 for outside views (e.g. TooManyFieldsSent from query_params).
    if isinstance(exc, SuspiciousOperation | BadRequest):
        _log_refused(exc)
        return Response(dict(BAD_REQUEST_BODY), status=400)
    response = exception_handler(exc, context)
    if response is None:
        view = context.get("view")
        logger.error(
            "unhandled API error",
            exc_info=exc,
            extra={"view": type(view).__name__ if view else "", "error_type": type(exc).__name__},
        )
        return Response({"error": "Internal server error"}, status=500)
    response.data = {"error": _first_message(response.data)}
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"error": "Not found"}, status=404)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """Django's answer to a SuspiciousOperation (e.g. DisallowedHost) or BadRequest raised
    outside a DRF view; `django.security` is silenced in LOGGING in favour of this line."""
    _log_refused(exception)
    return JsonResponse(BAD_REQUEST_BODY, status=400)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"error": "Internal server error"}, status=500)


def _browser_page(response: HttpResponseBase) -> bool:
    """DRF's browsable API, which a client asked for (Accept: text/html or ?format=api)."""
    return isinstance(response, Response) and isinstance(
        getattr(response, "accepted_renderer", None), BrowsableAPIRenderer
    )


class JsonErrorMiddleware:
    """Gives the API's JSON error body to the refusals that other layers answer in their
    own way: Django's `require_GET` and WhiteNoise (an empty 405), drf-spectacular's schema
    view (YAML when the client accepts anything)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or response.get("Content-Type") == "application/json"
            or _browser_page(response)
        ):
            return response
        data = getattr(response, "data", None)
        message = data.get("error") if isinstance(data, dict) else None
        replacement = JsonResponse(
            {"error": message or response.reason_phrase},
            status=response.status_code,
            headers={name: response[name] for name in _KEPT_HEADERS if response.has_header(name)},
        )
        response.close()  # a static file's handle, if any
        return replacement
