from django.urls import re_path
from rest_framework.routers import SimpleRouter

from records import health
from records.views import RecordViewSet


class OptionalSlashRouter(SimpleRouter):
    """Routes `/records` and `/records/` alike: no redirect, no 404 for either form."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("records", RecordViewSet, basename="record")

urlpatterns = [
    re_path(r"^healthz/?$", health.healthz, name="healthz"),
    re_path(r"^readyz/?$", health.readyz, name="readyz"),
    *router.urls,
]
