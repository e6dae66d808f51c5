"""Every error is JSON `{"error": "..."}` with a status code that tells the truth."""

import logging

from django.http import HttpRequest, JsonResponse
from rest_framework.response import Response
from rest_framework.views import exception_handler

from records.repository import WarehouseUnavailable

logger = logging.getLogger(__name__)

UNAVAILABLE_BODY = {"error": "The records warehouse is unavailable; retry later"}
UNAVAILABLE_HEADERS = {"Retry-After": "5"}


def _first_message(detail: object) -> str:
    if isinstance(detail, dict):
        detail = detail.get("detail", next(iter(detail.values()), ""))
    if isinstance(detail, list):
        detail = detail[0] if detail else ""
    return str(detail)


def api_exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's handler, with every body reshaped to `{"error": ...}` and known failures mapped."""
    if isinstance(exc, WarehouseUnavailable):
        return Response(UNAVAILABLE_BODY, status=503, headers=UNAVAILABLE_HEADERS)
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
    return JsonResponse({"error": "Bad request"}, status=400)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"error": "Internal server error"}, status=500)
