"""The staff dashboard and its fragments (server-rendered), and the link from the admin."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from jobs.models import Job
from monitoring.alerts import alerts_evaluate
from monitoring.models import AlertRule

ROOT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def staff_client(make_user) -> Client:
    client = Client()
    client.force_login(make_user("staff-d", staff=True))
    return client


@pytest.mark.django_db
def test_dashboard_is_for_staff_only(make_user):
    assert Client().get("/monitoring/").status_code == 302
    clerk = Client()
    clerk.force_login(make_user("clerk-d", role="ap_clerk"))
    assert clerk.get("/monitoring/").status_code == 302
    assert clerk.get("/monitoring/parts/queues/").status_code == 302


@pytest.mark.django_db
def test_dashboard_shows_health_queues_running_jobs_failures_alerts_and_chart(staff_client, settings):
    settings.ADMINS = []
    now = timezone.now()
    running = Job.objects.create(
        kind="jobs.sleep",
        queue="default",
        status="running",
        started_at=now,
        progress_done=3,
        progress_total=4,
        progress_message="slept 3 of 4 slices",
    )
    Job.objects.create(
        kind="invoices.process_invoice",
        queue="invoices",
        status="failed",
        started_at=now - timedelta(minutes=5),
        finished_at=now - timedelta(minutes=4),
        error="InvalidInvoice: the total is not a number",
    )
    for _ in range(3):
        Job.objects.create(
            kind="jobs.sleep",
            queue="default",
            status="succeeded",
            started_at=now - timedelta(hours=2),
            finished_at=now - timedelta(hours=2),
        )
    AlertRule.objects.all().delete()
    AlertRule.objects.create(name="Beat stale", kind="beat_stale")
    alerts_evaluate()

    page = staff_client.get("/monitoring/").content.decode()
    for section in (
        "Health",
        "Queues",
        "Workers",
        "Jobs finished per hour",
        "Running jobs",
        "Recent failures",
        "Open alerts",
        "Compliance scans",
    ):
        assert f"<h2>{section}" in page
    assert f'data-job-id="{running.pk}"' in page and 'data-percent="75"' in page
    assert "InvalidInvoice: the total is not a number" in page
    assert "Beat has never sent its heartbeat task." in page
    assert "succeeded 3" in page and "failed 1" in page
    assert '<script src="/static/monitoring/dashboard.js" defer>' in page  # a file, not inline (CSP)
    script = (ROOT_DIR / "monitoring" / "static" / "monitoring" / "dashboard.js").read_text()
    assert "<svg" in page and "fetch(" in script and "http" not in script  # nothing from the internet


@pytest.mark.django_db
def test_each_fragment_renders_alone(staff_client):
    for name in ("health", "queues", "workers", "charts", "running", "failures", "alerts", "scans"):
        response = staff_client.get(f"/monitoring/parts/{name}/")
        assert response.status_code == 200, name
        assert "<h2>" in response.content.decode() and "<html" not in response.content.decode()
    assert staff_client.get("/monitoring/parts/nonsense/").status_code == 404


@pytest.mark.django_db
def test_admin_index_links_to_the_dashboard(staff_client):
    page = staff_client.get("/admin/").content.decode()
    assert 'href="/monitoring/"' in page and 'id="monitoring-link"' in page
