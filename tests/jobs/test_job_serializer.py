"""The job answer's own field loop (jobs/api.py, bound once per class) gives what
DRF's generic loop gives, for jobs in every state the API shows."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.test import APIRequestFactory

from jobs.api import JobSerializer
from jobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db


def _jobs(owner) -> list[Job]:
    now = timezone.now()
    queued = Job.objects.create(
        kind="jobs.sleep", owner=owner, params={"seconds": 1}, not_before=now + timedelta(hours=1)
    )
    running = Job.objects.create(
        kind="jobs.sleep",
        status=JobStatus.RUNNING,
        started_at=now - timedelta(seconds=3),
        progress_done=2,
        progress_total=5,
        progress_message="step 2",
        subject_type="invoices.invoice",
        subject_id="42",
        subject_label="INV-42",
        unique_key="sleep:42",
    )
    failed = Job.objects.create(
        kind="jobs.sleep",
        owner=owner,
        status=JobStatus.FAILED,
        started_at=now - timedelta(seconds=9),
        finished_at=now,
        error="boom",
        traceback="Traceback ...",
        attempts=3,
        is_dead_letter=True,
        result={"rows": 3},
    )
    retried = Job.objects.create(kind="jobs.sleep", owner=owner, retry_of=failed, cancel_requested_at=now)
    return list(Job.objects.select_related("owner").filter(pk__in=[j.pk for j in (queued, running, failed, retried)]))


@pytest.mark.parametrize("staff", [True, False])
def test_the_answer_is_drfs_for_every_state(make_user, staff, monkeypatch):
    user = make_user("alice", staff=staff)
    request = APIRequestFactory().get("/")
    request.user = user
    jobs = _jobs(user)
    # A running job's time left and duration move with the clock: both loops read the same instant.
    frozen = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: frozen)
    for job in jobs:
        serializer = JobSerializer(job, context={"request": request})
        generic = serializers.ModelSerializer.to_representation(serializer, job)
        if not staff:
            generic["traceback"] = None
        assert serializer.data == generic
        assert list(serializer.data) == list(generic)  # same keys, same order
