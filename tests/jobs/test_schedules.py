"""Default schedules: created once, never overwritten; beat's sends become tracked jobs."""

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from jobs.models import Job
from jobs.schedules import default_schedules

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def test_ensure_schedules_creates_missing_and_keeps_admin_edits():
    call_command("ensure_schedules")
    names = {s.name for s in default_schedules()}
    assert set(PeriodicTask.objects.values_list("name", flat=True)) >= names
    assert {"jobs.sweep", "jobs.prune", "invoices.scan_inbox", "emailsync.sync_all_mailboxes"} <= set(
        PeriodicTask.objects.values_list("task", flat=True)
    )
    every_default_expires = PeriodicTask.objects.filter(name__in=names, expire_seconds__isnull=True)
    assert not every_default_expires.exists()

    edited = PeriodicTask.objects.get(task="jobs.prune")
    edited.enabled = False
    edited.save()
    PeriodicTask.objects.get(task="jobs.sweep").delete()
    call_command("ensure_schedules")
    assert PeriodicTask.objects.get(task="jobs.prune").enabled is False
    assert PeriodicTask.objects.filter(task="jobs.sweep").count() == 1


def test_a_beat_send_is_a_tracked_job_from_the_start():
    from celery import current_app

    result = current_app.tasks["jobs.prune"].apply_async(
        kwargs={}, headers={"periodic_task_name": "jobs: delete old jobs and results"}, expires=60
    )
    job = Job.objects.get(pk=result.id)
    assert job.source == "schedule"
    assert job.schedule_name == "jobs: delete old jobs and results"
    assert job.expires_at is not None
