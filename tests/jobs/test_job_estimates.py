"""A job's answer estimates its run time from the median of its kind's recent runs;
each process reuses a median it read for a few seconds (jobs/selectors.py)."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from jobs import selectors
from jobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db

SLEEP = {"kind": "jobs.sleep", "params": {"seconds": 0.1, "steps": 1}}


def _finished_runs(owner, *seconds: float) -> None:
    end = timezone.now()
    for duration in seconds:
        Job.objects.create(
            kind="jobs.sleep",
            owner=owner,
            status=JobStatus.SUCCEEDED,
            started_at=end - timedelta(seconds=duration),
            finished_at=end,
        )


def test_a_queued_job_shows_its_kinds_median_run_time(make_user, client_for):
    alice = make_user("alice", superuser=True)
    api = client_for(alice)
    _finished_runs(alice, 2.0, 4.0, 10.0)

    job = api.post("/api/v1/jobs/", {**SLEEP, "countdown": 3600}, format="json").json()

    assert job["estimated_duration"] == 4.0
    assert job["estimated_time_left"] == 4.0
    assert api.get(f"/api/v1/jobs/{job['id']}/").json()["estimated_duration"] == 4.0


def test_a_new_median_shows_once_the_process_copy_is_older_than_its_limit(make_user, client_for, monkeypatch):
    alice = make_user("alice", superuser=True)
    api = client_for(alice)
    _finished_runs(alice, 2.0)
    job = api.post("/api/v1/jobs/", {**SLEEP, "countdown": 3600}, format="json").json()
    assert job["estimated_duration"] == 2.0

    _finished_runs(alice, 8.0, 8.0)
    cache.clear()  # the shared cache's minute is over
    assert api.get(f"/api/v1/jobs/{job['id']}/").json()["estimated_duration"] == 2.0  # this process's copy

    monkeypatch.setattr(selectors, "DURATION_LOCAL_SECONDS", 0.0)  # ... and so is the process copy's time
    assert api.get(f"/api/v1/jobs/{job['id']}/").json()["estimated_duration"] == 8.0
