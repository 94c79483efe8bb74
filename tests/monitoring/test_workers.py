"""Workers as monitoring sees them, from a real worker process's answers."""

from __future__ import annotations

import pytest
from django.utils import timezone

from jobs.models import Job
from jobs.services import job_enqueue
from monitoring.maintenance import worker_snapshot_record
from monitoring.models import WorkerSnapshot
from monitoring.workers import workers_overview
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess


@pytest.mark.worker
@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_worker_overview_shows_pid_pool_queues_active_job_and_processed_count(no_session_worker, make_user, client_for):
    worker = WorkerProcess(
        name="overview", queues="default,maintenance", concurrency=2, env={"JOB_HEARTBEAT_SECONDS": "1"}
    ).start()
    try:
        job = job_enqueue("jobs.sleep", {"seconds": 4, "steps": 4})
        wait_for(lambda: Job.objects.filter(pk=job.pk, status="running").exists(), timeout=30, what="job running")
        body = client_for(make_user("staff-w", staff=True)).get("/api/v1/monitoring/workers/?fresh=1").json()
        entry = next(w for w in body["workers"] if w["hostname"] == worker.hostname)
        assert entry["online"] is True
        assert entry["pid"] == worker.process.pid
        assert entry["concurrency"] == 2
        assert entry["queues"] == ["default", "maintenance"]
        assert [(task["job_id"], task["kind"]) for task in entry["active"]] == [(str(job.pk), "jobs.sleep")]
        assert body["checked_at"] <= entry["last_heartbeat"] <= timezone.now().isoformat()

        wait_for(lambda: Job.objects.filter(pk=job.pk, status="succeeded").exists(), timeout=30, what="job done")
        first = {s.hostname: s for s in worker_snapshot_record()}[worker.hostname]
        assert first.processed >= 1 and first.active == 0 and first.processed_since_last is None
        job_enqueue("jobs.sleep", {"seconds": 0.1, "steps": 1})
        wait_for(lambda: Job.objects.filter(status="succeeded").count() == 2, timeout=30, what="second job")
        second = {s.hostname: s for s in worker_snapshot_record()}[worker.hostname]
        assert second.processed_since_last == second.processed - first.processed >= 1

        worker.stop()
        after = workers_overview(fresh=True)
        gone = next(w for w in after["workers"] if w["hostname"] == worker.hostname)
        assert gone["online"] is False and gone["active"] == []
        assert entry["last_heartbeat"] < gone["last_heartbeat"] < after["checked_at"]  # its last answer
        assert WorkerSnapshot.objects.filter(hostname=worker.hostname).count() == 2
    finally:
        worker.stop()


@pytest.mark.django_db
def test_workers_endpoint_is_for_staff(make_user, client_for):
    assert client_for(make_user("op-w2", role="operator")).get("/api/v1/monitoring/workers/").status_code == 403
