"""Per-kind metrics (JSON) and the Prometheus endpoint, against jobs with known timings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from jobs.broker import broker_client, priority_queue_names
from jobs.models import Job
from jobs.services import job_enqueue
from monitoring.models import RuntimeBudget

TOKEN = "metrics-token-for-tests"


def finished_job(
    kind: str, *, status: str, runtime: float, ended_ago: timedelta, wait: float = 0.0, error: str = ""
) -> Job:
    finished_at = timezone.now() - ended_ago
    started_at = finished_at - timedelta(seconds=runtime)
    job = Job.objects.create(
        kind=kind,
        queue="default",
        status=status,
        started_at=started_at,
        finished_at=finished_at,
        error=error,
        is_dead_letter=status == "failed",
    )
    Job.objects.filter(pk=job.pk).update(created_at=started_at - timedelta(seconds=wait))
    return job


@pytest.fixture
def known_jobs(db):
    """jobs.sleep: ten successes of 1..10 s (waits 0.5..5 s) half an hour ago, two 20 s failures two hours ago;
    invoices.validate_invoice: one 3 s success 20 s ago."""
    for seconds in range(1, 11):
        finished_job(
            "jobs.sleep", status="succeeded", runtime=seconds, ended_ago=timedelta(minutes=30), wait=seconds / 2
        )
    finished_job(
        "jobs.sleep",
        status="failed",
        runtime=20,
        ended_ago=timedelta(hours=2),
        error="ValueError: bad input\nTraceback ...",
    )
    finished_job(
        "jobs.sleep",
        status="failed",
        runtime=20,
        ended_ago=timedelta(hours=2, minutes=1),
        error="ConnectionError: refused",
    )
    finished_job("invoices.validate_invoice", status="succeeded", runtime=3, ended_ago=timedelta(seconds=20))


def kind_entry(body: dict, kind: str) -> dict:
    return next(entry for entry in body["kinds"] if entry["kind"] == kind)


@pytest.mark.django_db
def test_metrics_per_kind_from_known_durations(known_jobs, make_user, client_for):
    body = client_for(make_user("staff-m", staff=True)).get("/api/v1/monitoring/metrics/").json()
    sleep = kind_entry(body, "jobs.sleep")
    assert sleep["throughput"] == {"last_minute": 0, "last_hour": 10, "last_day": 12}
    assert sleep["failure_rate_percent"] == {"last_minute": None, "last_hour": 0.0, "last_day": round(200 / 12, 2)}
    # Twelve run times 1..10, 20, 20: p50 halfway between the 6th and 7th (6.5), p95 between two 20s.
    assert sleep["runtime_seconds"] == {"p50": 6.5, "p95": 20.0, "max": 20.0, "samples": 12}
    # Waits 0, 0 (the failures) and 0.5..5.0 s: p50 halfway between the 6th and 7th (2.0 and 2.5),
    # p95 at rank 10.45 of 0..11: 45 % of the way from 4.5 to 5.0.
    assert sleep["wait_seconds"]["p50"] == 2.25
    assert sleep["wait_seconds"]["p95"] == pytest.approx(4.5 + 0.45 * 0.5, abs=0.001)
    assert sleep["slow_threshold_source"] == "p95" and sleep["slow_jobs"] == []
    assert [failure["error"] for failure in sleep["recent_failures"]] == [
        "ValueError: bad input",
        "ConnectionError: refused",
    ]
    validate = kind_entry(body, "invoices.validate_invoice")
    assert validate["throughput"] == {"last_minute": 1, "last_hour": 1, "last_day": 1}
    assert [failure["kind"] for failure in body["recent_failures"]] == ["jobs.sleep", "jobs.sleep"]


@pytest.mark.django_db
def test_slow_jobs_are_those_over_the_configured_budget(known_jobs, make_user, client_for):
    RuntimeBudget.objects.create(kind="jobs.sleep", max_seconds=8)
    body = client_for(make_user("staff-b", staff=True)).get("/api/v1/monitoring/metrics/").json()
    sleep = kind_entry(body, "jobs.sleep")
    assert sleep["slow_threshold_source"] == "budget" and sleep["slow_threshold_seconds"] == 8.0
    assert [job["runtime_seconds"] for job in sleep["slow_jobs"]] == [20.0, 20.0, 10.0, 9.0]


@pytest.mark.django_db
def test_metrics_api_is_for_staff(make_user, client_for):
    assert client_for(make_user("clerk-m", role="ap_clerk")).get("/api/v1/monitoring/metrics/").status_code == 403


def scrape(client: Client, **headers) -> dict:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.mark.services
@pytest.mark.django_db
def test_prometheus_counters_histogram_queue_length_and_age(
    known_jobs, settings, no_session_worker, django_capture_on_commit_callbacks
):
    settings.METRICS_TOKEN = TOKEN
    broker_client().delete(*priority_queue_names("default"))
    with django_capture_on_commit_callbacks(execute=True):
        waiting = [job_enqueue("jobs.sleep", {"seconds": 0.1, "steps": 1}) for _ in range(2)]
    Job.objects.filter(pk=waiting[0].pk).update(created_at=timezone.now() - timedelta(seconds=100))
    try:
        samples = scrape(Client(), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    finally:
        broker_client().delete(*priority_queue_names("default"))

    assert value(samples, "apintake_jobs_finished_total", kind="jobs.sleep", status="succeeded") == 10
    assert value(samples, "apintake_jobs_finished_total", kind="jobs.sleep", status="failed") == 2
    assert value(samples, "apintake_job_runtime_seconds_bucket", kind="jobs.sleep", le="1.0") == 1
    assert value(samples, "apintake_job_runtime_seconds_bucket", kind="jobs.sleep", le="2.5") == 2
    assert value(samples, "apintake_job_runtime_seconds_bucket", kind="jobs.sleep", le="5.0") == 5
    assert value(samples, "apintake_job_runtime_seconds_bucket", kind="jobs.sleep", le="10.0") == 10
    assert value(samples, "apintake_job_runtime_seconds_bucket", kind="jobs.sleep", le="30.0") == 12
    assert value(samples, "apintake_job_runtime_seconds_bucket", kind="jobs.sleep", le="+Inf") == 12
    assert value(samples, "apintake_job_runtime_seconds_count", kind="jobs.sleep") == 12
    assert value(samples, "apintake_job_runtime_seconds_sum", kind="jobs.sleep") == pytest.approx(55 + 40)
    assert value(samples, "apintake_queue_length", queue="default") == 2
    assert value(samples, "apintake_queue_length", queue="exports") == 0
    assert 99 <= value(samples, "apintake_queue_oldest_job_age_seconds", queue="default") <= 110
    assert value(samples, "apintake_queue_oldest_job_age_seconds", queue="email") == 0
    assert value(samples, "apintake_jobs_active", queue="default", status="queued") == 2
    assert value(samples, "apintake_dead_letter_jobs") == 2
    assert value(samples, "apintake_metrics_source_up", source="broker") == 1


@pytest.mark.django_db
def test_counters_never_go_down_when_old_jobs_are_deleted(known_jobs, settings):
    settings.METRICS_TOKEN = TOKEN
    header = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    before = scrape(Client(), **header)
    Job.objects.filter(kind="jobs.sleep").delete()  # what retention does
    settings.MONITORING_METRICS_SETTLE_SECONDS = 0
    finished_job("jobs.sleep", status="succeeded", runtime=0.2, ended_ago=timedelta(0))  # a job finishing now
    after = scrape(Client(), **header)
    assert value(before, "apintake_jobs_finished_total", kind="jobs.sleep", status="succeeded") == 10
    assert value(after, "apintake_jobs_finished_total", kind="jobs.sleep", status="succeeded") == 11
    assert value(after, "apintake_jobs_finished_total", kind="jobs.sleep", status="failed") == 2
    assert value(after, "apintake_job_runtime_seconds_bucket", kind="jobs.sleep", le="0.25") == 1


@pytest.mark.django_db
def test_metrics_endpoint_needs_the_token_or_a_staff_session(settings, make_user):
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer guessed").status_code == 401
    staff, clerk = Client(), Client()
    staff.force_login(make_user("staff-p", staff=True))
    clerk.force_login(make_user("clerk-p", role="ap_clerk"))
    assert staff.get("/metrics").status_code == 200
    assert clerk.get("/metrics").status_code == 403

    settings.METRICS_TOKEN = TOKEN
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"].startswith("Bearer")
