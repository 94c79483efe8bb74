"""HTML and plain-text endpoints: /health/ (public), /metrics (token or staff),
the staff dashboard at /monitoring/ with its fragments, and system reports."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitoring.health import health_report
from monitoring.metrics import recent_failures
from monitoring.models import SystemReport
from monitoring.prometheus import registry
from monitoring.queues import queue_overview
from monitoring.selectors import (
    health_history,
    hourly_job_counts,
    latest_scans,
    monitoring_status,
    open_alerts,
    running_jobs,
)
from monitoring.workers import workers_overview


def _wants_json(request: HttpRequest) -> bool:
    if request.GET.get("format") == "json":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


@require_GET
def health_page(request: HttpRequest) -> HttpResponse:
    """For load balancers and people: 200 when healthy, 503 when not. No login, and it shows
    only each check's name and ok/error (details are in the authenticated API)."""
    report = health_report()
    code = 200 if report.healthy else 503
    if _wants_json(request):
        response = JsonResponse(report.as_public_dict(), status=code)
    else:
        response = render(request, "monitoring/health.html", {"public": report.as_public_dict()}, status=code)
    patch_vary_headers(response, ["Accept"])
    add_never_cache_headers(response)
    return response


def _metrics_allowed(request: HttpRequest) -> tuple[bool, int]:
    token = settings.METRICS_TOKEN
    header = request.headers.get("authorization", "")
    if token and header.lower().startswith("bearer "):
        offered = header[7:].strip()
        if hmac.compare_digest(offered.encode(), token.encode()):
            return True, 200
        return False, 401
    user = request.user
    if user.is_authenticated:
        return (True, 200) if user.is_staff else (False, 403)
    return False, 401


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. `Authorization: Bearer <METRICS_TOKEN>`, or a staff session."""
    allowed, code = _metrics_allowed(request)
    if not allowed:
        message = (
            "Send Authorization: Bearer <METRICS_TOKEN>."
            if settings.METRICS_TOKEN
            else "Log in as staff (METRICS_TOKEN is not set, so no token is accepted)."
        )
        response = HttpResponse(message + "\n", status=code, content_type="text/plain")
        if code == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    response = HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    add_never_cache_headers(response)
    return response


# --- dashboard ---------------------------------------------------------------------------------

FRAGMENTS = ("health", "queues", "workers", "charts", "running", "failures", "alerts", "scans")


def _fragment_context(name: str) -> dict:
    if name == "health":
        report = health_report()
        return {
            "report": report,
            "failing": [check for check in report.checks if not check.ok],
            "strip": _strip(health_history()),
        }
    if name == "queues":
        return {"overview": queue_overview()}
    if name == "workers":
        return {"overview": workers_overview()}
    if name == "charts":
        return {"chart": _chart(hourly_job_counts())}
    if name == "running":
        return {"jobs": running_jobs()}
    if name == "failures":
        return {"failures": recent_failures(limit=10)}
    if name == "alerts":
        return {"alerts": open_alerts()}
    if name == "scans":
        return {"scans": latest_scans(), "status": monitoring_status()}
    raise Http404("No such dashboard part.")


CHART_WIDTH, CHART_HEIGHT, CHART_MARGIN = 720, 160, 24
# How often (in refresh ticks) each part is fetched again: charts change slowly.
REFRESH_EVERY = {"health": 2, "charts": 10, "scans": 2}


def _strip(snapshots: list) -> list[dict]:
    """Health history as a row of coloured cells, oldest left."""
    if not snapshots:
        return []
    width = CHART_WIDTH / len(snapshots)
    return [
        {
            "x": round(index * width, 2),
            "width": round(max(width, 1.0), 2),
            "healthy": snapshot.healthy,
            "at": snapshot.created_at,
            "failing": ", ".join(c["name"] for c in snapshot.checks if not c["ok"]),
        }
        for index, snapshot in enumerate(snapshots)
    ]


def _chart(buckets: list[dict]) -> dict:
    """Bar geometry for the server-rendered SVG: succeeded and failed jobs per hour."""
    highest = max([b["succeeded"] + b["failed"] for b in buckets] + [1])
    slot = (CHART_WIDTH - 2 * CHART_MARGIN) / max(len(buckets), 1)
    usable = CHART_HEIGHT - 2 * CHART_MARGIN
    bars = []
    for index, bucket in enumerate(buckets):
        ok_height = usable * bucket["succeeded"] / highest
        failed_height = usable * bucket["failed"] / highest
        x = CHART_MARGIN + index * slot + 1
        bars.append(
            {
                "x": round(x, 1),
                "width": round(max(slot - 2, 1), 1),
                "hour": bucket["hour"],
                "succeeded": bucket["succeeded"],
                "failed": bucket["failed"],
                "ok_y": round(CHART_HEIGHT - CHART_MARGIN - ok_height, 1),
                "ok_height": round(ok_height, 1),
                "failed_y": round(CHART_HEIGHT - CHART_MARGIN - ok_height - failed_height, 1),
                "failed_height": round(failed_height, 1),
                "label": index % 3 == 0,
            }
        )
    return {
        "bars": bars,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "highest": highest,
        "baseline": CHART_HEIGHT - CHART_MARGIN,
        "margin": CHART_MARGIN,
        "total_succeeded": sum(b["succeeded"] for b in buckets),
        "total_failed": sum(b["failed"] for b in buckets),
    }


@staff_member_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The staff dashboard: every part rendered now, then refreshed by fetching fragments."""
    parts = [
        {
            "name": name,
            "every": REFRESH_EVERY.get(name, 1),
            "html": render_to_string(f"monitoring/fragments/{name}.html", _fragment_context(name), request),
        }
        for name in FRAGMENTS
    ]
    context = {
        **admin.site.each_context(request),
        "is_nav_sidebar_enabled": False,
        "title": "Monitoring",
        "parts": parts,
        "refresh_ms": settings.MONITORING_DASHBOARD_REFRESH_SECONDS * 1000,
        "refresh_seconds": settings.MONITORING_DASHBOARD_REFRESH_SECONDS,
    }
    return render(request, "monitoring/dashboard.html", context)


@staff_member_required
@require_GET
def dashboard_fragment(request: HttpRequest, name: str) -> HttpResponse:
    """One part of the dashboard as an HTML fragment."""
    if name not in FRAGMENTS:
        raise Http404("No such dashboard part.")
    response = render(request, f"monitoring/fragments/{name}.html", _fragment_context(name))
    add_never_cache_headers(response)
    return response


@staff_member_required
@require_GET
def report_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "monitoring/report_list.html",
        {
            **admin.site.each_context(request),
            "is_nav_sidebar_enabled": False,
            "title": "System reports",
            "reports": SystemReport.objects.all()[:100],
        },
    )


@staff_member_required
@require_GET
def report_detail(request: HttpRequest, pk: int) -> HttpResponse:
    report = get_object_or_404(SystemReport, pk=pk)
    return render(
        request,
        "monitoring/report_detail.html",
        {
            **admin.site.each_context(request),
            "is_nav_sidebar_enabled": False,
            "title": str(report),
            "report": report,
            "data": report.data,
        },
    )
