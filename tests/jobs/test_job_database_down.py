"""A worker that cannot reach the database must not swallow jobs: the claim does
not ack (the message is requeued), the worker reports itself unhealthy and stops
consuming until the database answers, then runs the job (issue 11, item 5)."""

import pytest
from django.db import connection
from health_check.exceptions import ServiceUnavailable

from jobs.broker import queue_length, unacked_task_ids
from jobs.models import Job, JobStatus
from jobs.services import job_enqueue
from monitoring.health import WorkersAnswer
from monitoring.workers import workers_overview
from tests.support.redis_server import free_port
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess, subprocess_database_url

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def this_worker(worker):
    return next((w for w in workers_overview(fresh=True)["workers"] if w["hostname"] == worker.hostname), None)


def test_worker_without_database_keeps_the_job_and_says_so(no_session_worker):
    db = connection.settings_dict
    proxy = TcpProxy(free_port(), (db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)))
    url = subprocess_database_url().replace(f":{db.get('PORT') or 5432}/", f":{proxy.port}/")
    assert f":{proxy.port}/" in url
    worker = WorkerProcess(
        name="nodb",
        concurrency=1,
        env={"DATABASE_URL": url, "WORKER_DB_CHECK_SECONDS": "1", "JOB_HEARTBEAT_SECONDS": "1"},
    ).start()
    try:
        job = job_enqueue("jobs.sleep", {"seconds": 0.2, "steps": 2})

        # The worker stops consuming and says why; the message is back in its queue.
        state = wait_for(
            lambda: (w := this_worker(worker)) and w.get("healthy") is False and w,
            timeout=30,
            what="worker reports the database unreachable",
        )
        assert "database" in state["problem"]
        assert state["queues"] == []
        with pytest.raises(ServiceUnavailable, match="database"):
            WorkersAnswer().run()
        # Not acked: back in its queue, or held by the broker as delivered-unacked.
        wait_for(
            lambda: queue_length("default") == 1 or str(job.pk) in unacked_task_ids(),
            timeout=15,
            what="message requeued, not acked",
        )
        assert Job.objects.get(pk=job.pk).status == JobStatus.QUEUED

        proxy.open()  # the database answers again: the same worker takes the same message
        wait_for(
            lambda: Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED,
            timeout=60,
            what="job ran once the database answered",
        )
        state = wait_for(lambda: (w := this_worker(worker)) and w.get("healthy") and w, timeout=15)
        assert "default" in state["queues"]
        WorkersAnswer().run()
    finally:
        worker.stop()
        proxy.close()
