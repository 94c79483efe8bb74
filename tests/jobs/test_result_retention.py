"""One retention setting governs job rows and task results: Celery's built-in
backend_cleanup must not delete result rows our retention still keeps
(issue 11, item 8)."""

from datetime import timedelta

import pytest
from celery import current_app
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler
from django_celery_results.models import TaskResult

from jobs.retention import jobs_prune

pytestmark = pytest.mark.django_db


def result_row(task_id, *, days_old, status="SUCCESS"):
    row = TaskResult.objects.create(task_id=task_id, status=status, task_name="jobs.sleep")
    TaskResult.objects.filter(pk=row.pk).update(date_done=timezone.now() - timedelta(days=days_old))
    return row


def test_celery_backend_cleanup_keeps_results_within_our_retention(settings):
    settings.JOB_RETENTION_SUCCEEDED_DAYS = 14
    settings.JOB_RETENTION_FAILED_DAYS = 90
    kept = result_row("two-days-old", days_old=2)
    failed = result_row("failed-30-days-ago", days_old=30, status="FAILURE")

    current_app.tasks["celery.backend_cleanup"]()  # what beat would run at 04:00

    assert TaskResult.objects.filter(pk__in=[kept.pk, failed.pk]).count() == 2

    # Our retention is what deletes them, at the documented ages.
    old = result_row("twenty-days-old", days_old=20)
    report = jobs_prune()
    assert report.results_deleted == 1
    assert not TaskResult.objects.filter(pk=old.pk).exists()
    assert TaskResult.objects.filter(pk__in=[kept.pk, failed.pk]).count() == 2


@pytest.mark.django_db(transaction=True)  # the scheduler closes the connection it found
def test_beat_does_not_install_its_own_result_cleanup():
    scheduler = DatabaseScheduler(app=current_app)
    assert "celery.backend_cleanup" not in scheduler.schedule
