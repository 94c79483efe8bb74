"""Monitoring URLs, included at the root by config/urls.py: the API under
/api/v1/monitoring/, /health/, /metrics and the /monitoring/ dashboard."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from monitoring import api, views

router = SimpleRouter()
router.register("schedules", api.ScheduleViewSet, basename="monitoring-schedule")
router.register("alerts", api.AlertViewSet, basename="monitoring-alert")
router.register("scans", api.ScanRunViewSet, basename="monitoring-scanrun")
router.register("violations", api.ViolationViewSet, basename="monitoring-violation")

api_urls = [
    path("health/", api.HealthView.as_view(), name="monitoring-api-health"),
    path("status/", api.StatusView.as_view(), name="monitoring-api-status"),
    path("scan/", api.ScanView.as_view(), name="monitoring-api-scan"),
    path("queues/", api.QueuesView.as_view(), name="monitoring-api-queues"),
    path("workers/", api.WorkersView.as_view(), name="monitoring-api-workers"),
    path("metrics/", api.MetricsView.as_view(), name="monitoring-api-metrics"),
    path("", include(router.urls)),
]

urlpatterns = [
    path("api/v1/monitoring/", include(api_urls)),
    path("health/", views.health_page, name="health"),
    path("metrics", views.metrics, name="metrics"),
    path("monitoring/", views.dashboard, name="monitoring-dashboard"),
    path("monitoring/parts/<slug:name>/", views.dashboard_fragment, name="monitoring-fragment"),
    path("monitoring/reports/", views.report_list, name="monitoring-reports"),
    path("monitoring/reports/<int:pk>/", views.report_detail, name="monitoring-report"),
]
