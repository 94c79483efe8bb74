"""The jobs admin: list with filters, the job page with its buttons, Run a job."""

import pytest
from django.urls import reverse

from core.models import AuditEntry
from jobs.models import Job, JobStatus
from jobs.services import job_enqueue

pytestmark = [pytest.mark.services, pytest.mark.django_db]


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("root", superuser=True))
    return client


def test_job_list_filters_and_search(admin_client):
    queued = job_enqueue("jobs.sleep", {"seconds": 1, "steps": 1}, countdown=300)
    failed = job_enqueue("jobs.prune", {}, countdown=300)
    Job.objects.filter(pk=failed.pk).update(status=JobStatus.FAILED, is_dead_letter=True, error="boom")
    url = reverse("admin:jobs_job_changelist")

    page = admin_client.get(url).content.decode()
    assert str(queued.pk)[:8] in page and str(failed.pk)[:8] in page
    dead = admin_client.get(url, {"dead_letter": "yes"}).content.decode()
    assert str(failed.pk)[:8] in dead and str(queued.pk)[:8] not in dead
    by_kind = admin_client.get(url, {"kind": "jobs.sleep"}).content.decode()
    assert str(queued.pk)[:8] in by_kind and str(failed.pk)[:8] not in by_kind
    by_id = admin_client.get(url, {"q": str(failed.pk)}).content.decode()
    assert str(failed.pk)[:8] in by_id and str(queued.pk)[:8] not in by_id


def test_job_page_buttons_cancel_and_retry(admin_client):
    job = job_enqueue("jobs.sleep", {"seconds": 1, "steps": 1}, countdown=300)
    page = admin_client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    assert reverse("admin:jobs_job_cancel", args=[job.pk]) in page
    assert "task result" in page

    admin_client.post(reverse("admin:jobs_job_cancel", args=[job.pk]), {"reason": "from admin"})
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert AuditEntry.objects.get(job=job).source == "admin"

    response = admin_client.post(reverse("admin:jobs_job_retry", args=[job.pk]))
    new = Job.objects.get(retry_of=job)
    assert response.url == reverse("admin:jobs_job_change", args=[new.pk])


def test_run_a_job_page_builds_a_form_from_the_schema(admin_client):
    url = reverse("admin:jobs_job_run")
    page = admin_client.get(url, {"kind": "jobs.sleep"}).content.decode()
    assert 'name="seconds"' in page and 'name="steps"' in page

    invalid = admin_client.post(url, {"kind": "jobs.sleep", "seconds": "-1", "steps": "2"})
    assert invalid.status_code == 200 and not Job.objects.exists()

    admin_client.post(url, {"kind": "jobs.sleep", "seconds": "0.5", "steps": "2", "reason": "smoke"})
    job = Job.objects.get()
    assert job.params == {"seconds": 0.5, "steps": 2} and job.source == "admin"


def test_bulk_retry_action(admin_client):
    jobs = [job_enqueue("jobs.sleep", {"seconds": 1, "steps": 1}, countdown=300) for _ in range(3)]
    Job.objects.filter(pk__in=[j.pk for j in jobs[:2]]).update(status=JobStatus.FAILED)
    admin_client.post(
        reverse("admin:jobs_job_changelist"),
        {"action": "retry_selected", "_selected_action": [str(j.pk) for j in jobs]},
    )
    assert Job.objects.filter(retry_of__in=[j.pk for j in jobs[:2]]).count() == 2
    assert not Job.objects.filter(retry_of=jobs[2]).exists()


def test_non_staff_cannot_open_the_admin(client, make_user):
    client.force_login(make_user("op", role="operator"))
    response = client.get(reverse("admin:jobs_job_changelist"))
    assert response.status_code == 302 and "login" in response.url


def test_large_filtered_lists_use_the_planner_estimate(admin_client, monkeypatch):
    from django.db import connection

    from jobs import admin as jobs_admin
    from jobs.admin import EstimatedCountPaginator

    for _ in range(3):
        job_enqueue("jobs.sleep", {"seconds": 1, "steps": 1}, countdown=300)
    monkeypatch.setattr(jobs_admin, "ESTIMATE_ABOVE", -1)  # as if the table held millions
    paginator = EstimatedCountPaginator(Job.objects.filter(status=JobStatus.QUEUED).order_by("-created_at"), 50)
    if connection.vendor == "postgresql":
        assert paginator.count >= 1  # the planner's guess, not a COUNT(*)
    else:
        assert paginator.count == 3
    page = admin_client.get(reverse("admin:jobs_job_changelist"), {"status__exact": "queued"})
    assert page.status_code == 200
