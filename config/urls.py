from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.auth import obtain_auth_token

api_v1 = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("", include("jobs.urls")),
    path("", include("invoices.urls")),
    path("", include("emailsync.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("monitoring.urls")),
]
