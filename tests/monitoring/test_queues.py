"""Queue length from the real Redis broker, and the age of the oldest waiting job from the Job rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.broker import broker_client, priority_queue_names
from jobs.models import Job
from jobs.services import job_enqueue


@pytest.fixture
def empty_default_queue():
    """Nothing consumes or holds messages of the default queue during the test, and it is emptied after."""
    names = priority_queue_names("default")
    broker_client().delete(*names)
    yield
    broker_client().delete(*names)


def sleep_jobs(count: int, *, priority: int, capture) -> list[Job]:
    with capture(execute=True):
        return [job_enqueue("jobs.sleep", {"seconds": 0.1, "steps": 1}, priority=priority) for _ in range(count)]


@pytest.mark.services
@pytest.mark.django_db
def test_queue_length_and_oldest_job_age_with_real_waiting_jobs(
    no_session_worker, empty_default_queue, django_capture_on_commit_callbacks, make_user, client_for
):
    urgent = sleep_jobs(2, priority=2, capture=django_capture_on_commit_callbacks)
    bulk = sleep_jobs(3, priority=7, capture=django_capture_on_commit_callbacks)
    # A job due in an hour waits in its row, not in the broker, and is not "waiting" yet.
    with django_capture_on_commit_callbacks(execute=True):
        job_enqueue("jobs.sleep", {"seconds": 0.1, "steps": 1}, countdown=3600)
    oldest_created = timezone.now() - timedelta(minutes=7)
    Job.objects.filter(pk=bulk[0].pk).update(created_at=oldest_created)
    Job.objects.filter(pk=urgent[0].pk).update(created_at=timezone.now() - timedelta(minutes=2))

    client = client_for(make_user("staff-q", staff=True))
    body = client.get("/api/v1/monitoring/queues/").json()
    default = next(queue for queue in body["queues"] if queue["name"] == "default")

    redis_lengths = {step: broker_client().llen(name) for step, name in enumerate(priority_queue_names("default"))}
    assert default["length"] == 5 == sum(redis_lengths.values())
    assert {step: count for step, count in default["by_priority"].items() if count} == {
        str(step): count for step, count in redis_lengths.items() if count
    }
    assert len([count for count in redis_lengths.values() if count]) == 2  # two priority sub-queues in use
    assert default["waiting_jobs"] == 5
    assert default["delayed_jobs"] == 1
    expected_age = (timezone.now() - oldest_created).total_seconds()
    assert expected_age - 5 <= default["oldest_waiting_age_seconds"] <= expected_age + 1
    others = [queue for queue in body["queues"] if queue["name"] != "default"]
    assert all(queue["oldest_waiting_age_seconds"] is None for queue in others)


@pytest.mark.django_db
def test_a_job_retrying_later_is_not_waiting_yet_but_one_due_again_is(empty_default_queue):
    from monitoring.queues import queue_overview

    now = timezone.now()
    for due_in in (timedelta(minutes=5), timedelta(seconds=-90)):
        Job.objects.create(kind="jobs.sleep", queue="default", status="retrying", next_attempt_at=now + due_in)
    default = next(q for q in queue_overview(now=now)["queues"] if q["name"] == "default")
    assert default["waiting_jobs"] == 1 and default["delayed_jobs"] == 1
    assert default["oldest_waiting_age_seconds"] == pytest.approx(90, abs=0.01)


@pytest.mark.django_db
def test_queues_endpoint_is_for_staff(make_user, client_for, api_client):
    assert api_client.get("/api/v1/monitoring/queues/").status_code == 401
    assert client_for(make_user("op-q", role="operator")).get("/api/v1/monitoring/queues/").status_code == 403


@pytest.mark.services
@pytest.mark.django_db
def test_queue_lengths_are_reported_unknown_when_the_broker_is_down(settings, private_redis):
    from monitoring.queues import queue_overview

    settings.CELERY_BROKER_URL = private_redis.url
    private_redis.stop()
    overview = queue_overview()
    assert overview["broker_error"].startswith("The broker did not answer")
    assert {queue["length"] for queue in overview["queues"]} == {None}
