"""With Redis down, enqueue still answers 202 and the job waits in its row;
once Redis is back the sweeper publishes it and it succeeds."""

import time

import pytest
from celery import current_app
from kombu import pools

from jobs.models import Job, JobStatus
from jobs.sweeper import jobs_sweep
from tests.support.redis_server import RedisServer
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def point_celery_at(url):
    """Switch this process's producer to another broker (as a restart with a new REDIS_URL would)."""
    current_app.conf.broker_url = url
    current_app._pool = None
    current_app.amqp._producer_pool = None
    pools.reset()  # kombu's process-wide producer pools, keyed by connection


@pytest.fixture
def private_broker(settings, no_session_worker):
    server = RedisServer().start()
    original = current_app.conf.broker_url
    settings.CELERY_BROKER_URL = server.url
    point_celery_at(server.url)
    yield server
    point_celery_at(original)
    server.cleanup()


def test_enqueue_while_broker_down_then_recovers(private_broker, make_user, client_for):
    worker = WorkerProcess(name="brokerless", concurrency=1, env={"REDIS_URL": private_broker.url}).start()
    try:
        private_broker.stop()
        staff = make_user("ops", superuser=True)

        started = time.monotonic()
        response = client_for(staff).post(
            "/api/v1/jobs/", {"kind": "jobs.sleep", "params": {"seconds": 0.2, "steps": 2}}, format="json"
        )
        answered_in = time.monotonic() - started

        assert response.status_code == 202
        assert answered_in < 5  # fails fast, does not hang on the dead broker
        job = Job.objects.get(pk=response.json()["id"])
        assert job.status == JobStatus.QUEUED and job.published_at is None
        assert jobs_sweep().published == 0  # still down: stays queued, nothing lost

        private_broker.start()
        deadline = time.monotonic() + 60
        while Job.objects.get(pk=job.pk).status != JobStatus.SUCCEEDED and time.monotonic() < deadline:
            jobs_sweep()
            time.sleep(1)
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED
        assert job.published_at is not None
        assert job.attempts == 1
    finally:
        worker.stop()
