from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's initialisation as a script file (?script), so the
    # Content-Security-Policy needs no inline script. GET only: its HTML renderer has no
    # template for DRF's OPTIONS metadata.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", http_method_names=["get", "head"]),
        name="docs",
    ),
    path("", include("records.urls")),
]

handler400 = "records.errors.bad_request"
handler404 = "records.errors.not_found"
handler500 = "records.errors.server_error"
