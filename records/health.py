"""Probes for Cloud Run (plain Django views: no throttling).

Prometheus metrics are not served here: the gunicorn master serves them on a port of
their own (gunicorn.conf.py), which Cloud Run does not route to API consumers.
"""

from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.views.decorators.http import require_GET

from latam.observability import route_name_set
from records import wiring
from records.errors import UNAVAILABLE_BODY, UNAVAILABLE_HEADERS
from records.repository import WarehouseUnavailable

_READY_KEY = "records:readyz"


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Whether the table answers a metadata call, remembered for a few seconds."""
    ready = cache.get(_READY_KEY)
    if ready is None:
        try:
            wiring.record_repository().warehouse_ping()
            ready = True
        except WarehouseUnavailable:
            ready = False
        cache.set(_READY_KEY, ready, settings.READYZ_CACHE_TTL)
    if ready:
        return JsonResponse({"status": "ready"})
    return JsonResponse(UNAVAILABLE_BODY, status=503, headers=UNAVAILABLE_HEADERS)


class ProbeMiddleware:
    """Answers the probes before Django's host validation (CommonMiddleware): Cloud Run's
    probes and uptime checks may not send a Host listed in DJANGO_ALLOWED_HOSTS."""

    PROBES: dict[str, Callable[[HttpRequest], HttpResponseBase]] = {
        "/healthz": healthz,
        "/readyz": readyz,
    }

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        probe = self.PROBES.get(request.path_info.rstrip("/"))
        if probe is None:
            return self.get_response(request)
        route_name_set(request, probe.__name__)  # the metrics label, as for routed views
        return probe(request)
