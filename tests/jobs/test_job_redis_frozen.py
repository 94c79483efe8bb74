"""A frozen Redis (SIGSTOP: it accepts connections and never answers) must not turn
the API into 500s: throttles fall back to a per-process limit, the job row is
written and POST answers 202 within the broker's socket timeout, reads answer, and
the job runs once Redis answers again (issue 11, item 4)."""

import copy
import io
import os
import signal
import time

import pytest
from django.conf import settings
from django.core.management import call_command

from jobs.models import Job, JobStatus
from jobs.sweeper import jobs_sweep
from tests.jobs.test_job_broker_down import point_celery_at
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def private_redis(settings, no_session_worker):
    """Broker and cache both on a redis-server of this test's own."""
    from celery import current_app

    server = RedisServer().start()
    original = current_app.conf.broker_url
    settings.CELERY_BROKER_URL = server.url
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = f"redis://127.0.0.1:{server.port}/1"
    settings.CACHES = caches  # Django drops its cache connections on this change
    point_celery_at(server.url)
    yield server
    if server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)
    point_celery_at(original)
    server.cleanup()


def test_frozen_redis_api_answers_and_job_runs_after_thaw(private_redis, make_user, client_for, caplog):
    staff = make_user("ops", superuser=True)
    client = client_for(staff)
    assert client.get("/api/v1/jobs/").status_code == 200  # throttles have written to the real cache
    os.kill(private_redis.process.pid, signal.SIGSTOP)

    latencies = []
    ids = []
    for _ in range(2):
        started = time.monotonic()
        response = client.post(
            "/api/v1/jobs/", {"kind": "jobs.sleep", "params": {"seconds": 0.2, "steps": 2}}, format="json"
        )
        latencies.append(time.monotonic() - started)
        assert response.status_code == 202, response.content[:500]
        ids.append(response.json()["id"])
    broker_timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS["socket_timeout"]
    cache_timeout = settings.CACHES["default"]["OPTIONS"]["socket_timeout"]
    # The first request waits once for the cache and once for the broker; the next do not wait.
    assert latencies[0] < broker_timeout + cache_timeout + 0.5, latencies
    assert latencies[1] < 1, latencies
    print(f"POST /api/v1/jobs/ with Redis frozen: {[round(x, 2) for x in latencies]} s")

    started = time.monotonic()
    assert client.get("/api/v1/jobs/").status_code == 200
    assert client.get(f"/api/v1/jobs/{ids[0]}/").status_code == 200
    print(f"GET list + detail with Redis frozen: {time.monotonic() - started:.2f} s")
    assert "per-process" in caplog.text  # the degraded throttle said so

    out = io.StringIO()
    started = time.monotonic()
    call_command("jobs", "run", "jobs.sleep", "--param", "seconds=0.1", "--param", "steps=1", stdout=out)
    assert time.monotonic() - started < broker_timeout + cache_timeout + 0.5
    ids.append(out.getvalue().split()[0])

    jobs = Job.objects.filter(pk__in=ids)
    assert jobs.count() == 3 and {job.status for job in jobs} == {JobStatus.QUEUED}

    os.kill(private_redis.process.pid, signal.SIGCONT)
    worker = WorkerProcess(name="thawed", concurrency=1, env={"REDIS_URL": private_redis.url}).start()
    try:

        def all_done():
            jobs_sweep()
            return set(Job.objects.filter(pk__in=ids).values_list("status", flat=True)) == {JobStatus.SUCCEEDED}

        wait_for(all_done, timeout=90, interval=1, what="jobs run after Redis answers again")
    finally:
        worker.stop()
