from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("", include("records.urls")),
]

handler400 = "records.errors.bad_request"
handler404 = "records.errors.not_found"
handler500 = "records.errors.server_error"
