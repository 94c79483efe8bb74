"""Each alert rule kind fires once and resolves once, with an email (SMTP sink) and a signed webhook."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.broker import broker_client, priority_queue_names
from jobs.models import Job
from jobs.services import job_enqueue
from monitoring.alerts import alerts_evaluate
from monitoring.models import Alert, AlertNotification, AlertRule, Heartbeat
from monitoring.tasks import beat_heartbeat
from tests.support.workers import WorkerProcess


class Scenario:
    """Puts the system in a state where the rule's condition holds (`break_it`), then out of it (`fix_it`)."""

    rule: dict = {}
    needs: tuple[str, ...] = ()

    def __init__(self, request):
        self.request = request

    def break_it(self):
        raise NotImplementedError

    def fix_it(self):
        raise NotImplementedError


class QueueBacklog(Scenario):
    rule = {"kind": "queue_backlog", "threshold": 3, "queue": "default"}
    needs = ("no_session_worker",)

    def break_it(self):
        broker_client().delete(*priority_queue_names("default"))
        capture = self.request.getfixturevalue("django_capture_on_commit_callbacks")
        with capture(execute=True):
            for _ in range(4):
                job_enqueue("jobs.sleep", {"seconds": 0.1, "steps": 1})

    def fix_it(self):
        broker_client().delete(*priority_queue_names("default"))


class OldestWaiting(Scenario):
    rule = {"kind": "oldest_waiting", "threshold": 600}

    def break_it(self):
        self.job = Job.objects.create(kind="jobs.sleep", queue="exports", status="queued")
        Job.objects.filter(pk=self.job.pk).update(created_at=timezone.now() - timedelta(minutes=15))

    def fix_it(self):
        Job.objects.filter(pk=self.job.pk).update(
            status="succeeded", started_at=timezone.now(), finished_at=timezone.now()
        )


def _finished(status: str, count: int, ago: timedelta = timedelta(minutes=10)):
    end = timezone.now() - ago
    for _ in range(count):
        Job.objects.create(
            kind="invoices.process_invoice",
            queue="invoices",
            status=status,
            started_at=end - timedelta(seconds=1),
            finished_at=end,
            is_dead_letter=status == "failed",
        )


class FailureRate(Scenario):
    rule = {"kind": "failure_rate", "threshold": 50, "window_minutes": 60, "min_jobs": 2}

    def break_it(self):
        _finished("failed", 3)
        _finished("succeeded", 1)  # 75 %

    def fix_it(self):
        _finished("succeeded", 4)  # 3 of 8: 37.5 %


class DeadLettersGrowing(Scenario):
    rule = {"kind": "dead_letters_growing", "threshold": 0, "window_minutes": 60}

    def break_it(self):
        _finished("failed", 1, ago=timedelta(minutes=5))

    def fix_it(self):
        Job.objects.filter(is_dead_letter=True).update(is_dead_letter=False)  # retried by an operator


class WorkersBelow(Scenario):
    rule = {"kind": "workers_below", "threshold": 1}
    needs = ("no_session_worker",)

    def break_it(self):
        self.worker = WorkerProcess(name="alerts", queues="maintenance", concurrency=1)
        self.request.addfinalizer(self.worker.stop)

    def fix_it(self):
        self.worker.start()


class BeatStale(Scenario):
    rule = {"kind": "beat_stale"}

    def break_it(self):
        Heartbeat.objects.create(name="beat", beat_at=timezone.now() - timedelta(minutes=10))

    def fix_it(self):
        beat_heartbeat()


class JobOverBudget(Scenario):
    rule = {"kind": "job_over_budget", "threshold": 60}

    def break_it(self):
        self.job = Job.objects.create(
            kind="jobs.sleep", queue="default", status="running", started_at=timezone.now() - timedelta(minutes=5)
        )

    def fix_it(self):
        Job.objects.filter(pk=self.job.pk).update(status="succeeded", finished_at=timezone.now())


class HealthCheckFailing(Scenario):
    rule = {"kind": "health_check_failing", "check_name": "disk"}

    def break_it(self):
        self.request.getfixturevalue("settings").MONITORING_DISK_MIN_FREE_MB = 10**12

    def fix_it(self):
        self.request.getfixturevalue("settings").MONITORING_DISK_MIN_FREE_MB = 1


SCENARIOS = [
    QueueBacklog,
    OldestWaiting,
    FailureRate,
    DeadLettersGrowing,
    WorkersBelow,
    BeatStale,
    JobOverBudget,
    HealthCheckFailing,
]


@pytest.mark.services
@pytest.mark.django_db
@pytest.mark.parametrize("scenario_class", SCENARIOS, ids=lambda cls: cls.rule["kind"])
def test_rule_fires_once_and_resolves_once_with_notifications(scenario_class, request, smtp_sink, webhook_receiver):
    from django.core.cache import cache

    scenario = scenario_class(request)
    for fixture in scenario.needs:
        request.getfixturevalue(fixture)
    AlertRule.objects.all().delete()  # only this test's rule
    rule = AlertRule.objects.create(
        name=f"test {scenario.rule['kind']}",
        email_to="ops@example.com",
        webhook_url=webhook_receiver.url,
        **scenario.rule,
    )

    scenario.break_it()
    first = alerts_evaluate()
    again = alerts_evaluate()
    assert [alert.rule_id for alert in first.fired] == [rule.pk]
    assert again.fired == [] and again.resolved == [] and again.still_firing == 1
    assert Alert.objects.filter(rule=rule, status="firing").count() == 1

    scenario.fix_it()
    cache.clear()
    resolved = alerts_evaluate()
    after = alerts_evaluate()
    assert [alert.rule_id for alert in resolved.resolved] == [rule.pk]
    assert after.fired == [] and after.resolved == []
    alert = Alert.objects.get(rule=rule)
    assert alert.status == "resolved" and alert.resolved_at >= alert.fired_at

    subjects = [
        email.message_from_bytes(message.content, policy=email.policy.default)["Subject"]
        for message in smtp_sink.messages
    ]
    assert subjects == [
        f"[AP Intake] FIRING: {rule.name}" + (f" ({alert.key})" if alert.key else ""),
        f"[AP Intake] RESOLVED: {rule.name}" + (f" ({alert.key})" if alert.key else ""),
    ]
    assert [message.rcpt_tos for message in smtp_sink.messages] == [["ops@example.com"], ["ops@example.com"]]
    assert webhook_receiver.events() == ["alert.fired", "alert.resolved"]
    assert all(entry["valid"] for entry in webhook_receiver.received)
    assert [entry["payload"]["status"] for entry in webhook_receiver.received] == ["firing", "resolved"]
    assert webhook_receiver.received[0]["payload"]["rule_kind"] == scenario.rule["kind"]
    assert set(AlertNotification.objects.filter(alert=alert).values_list("status", flat=True)) == {"sent"}


@pytest.mark.django_db
def test_webhook_is_retried_after_a_server_error(webhook_receiver):
    webhook_receiver.responses.extend([500, 502])
    AlertRule.objects.all().delete()
    AlertRule.objects.create(name="beat", kind="beat_stale", email_to="none", webhook_url=webhook_receiver.url)
    alerts_evaluate()
    delivery = AlertNotification.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("sent", 3, 200)
    assert len(webhook_receiver.received) == 3 and all(entry["valid"] for entry in webhook_receiver.received)


@pytest.mark.django_db
def test_webhook_gives_up_after_its_retries_and_does_not_retry_a_refusal(webhook_receiver, settings):
    settings.MONITORING_WEBHOOK_RETRIES = 2
    webhook_receiver.responses.extend([503, 503, 503, 400])
    AlertRule.objects.all().delete()
    AlertRule.objects.create(name="beat", kind="beat_stale", email_to="none", webhook_url=webhook_receiver.url)
    alerts_evaluate()
    failed = AlertNotification.objects.get()
    assert (failed.status, failed.attempts, failed.response_status) == ("failed", 3, 503)
    assert "after 3 attempts" in failed.error

    beat_heartbeat()
    alerts_evaluate()  # resolves: the receiver answers 400 at once
    refused = AlertNotification.objects.get(event="resolved")
    assert (refused.status, refused.attempts, refused.response_status) == ("failed", 1, 400)


@pytest.mark.django_db
def test_webhook_is_never_sent_unsigned(webhook_receiver, settings):
    settings.MONITORING_WEBHOOK_SECRET = ""
    AlertRule.objects.all().delete()
    AlertRule.objects.create(name="beat", kind="beat_stale", email_to="none", webhook_url=webhook_receiver.url)
    alerts_evaluate()
    assert webhook_receiver.received == []
    assert "MONITORING_WEBHOOK_SECRET" in AlertNotification.objects.get().error


@pytest.mark.django_db
def test_email_goes_to_admins_by_default_and_a_failure_is_recorded(settings):
    from tests.support.redis_server import free_port

    settings.ADMINS = [("Ops", "admin@example.com")]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    AlertRule.objects.all().delete()
    AlertRule.objects.create(name="beat", kind="beat_stale")
    alerts_evaluate()
    failed = AlertNotification.objects.get()
    assert (failed.channel, failed.target, failed.status) == ("email", "admin@example.com", "failed")
    assert "ConnectionRefusedError" in failed.error
    assert Alert.objects.get().status == "firing"  # the alert stands even when nobody could be told


@pytest.mark.django_db
def test_disabling_a_rule_resolves_its_alerts(settings):
    settings.ADMINS = []
    AlertRule.objects.all().delete()
    rule = AlertRule.objects.create(name="beat", kind="beat_stale")
    alerts_evaluate()
    rule.enabled = False
    rule.save()
    assert [alert.rule_id for alert in alerts_evaluate().resolved] == [rule.pk]


@pytest.mark.django_db
def test_alerts_endpoint_lists_firing_alerts_for_staff(make_user, client_for, settings):
    settings.ADMINS = []
    AlertRule.objects.all().delete()
    AlertRule.objects.create(name="Beat stale", kind="beat_stale", severity="critical")
    alerts_evaluate()
    body = client_for(make_user("staff-a", staff=True)).get("/api/v1/monitoring/alerts/?status=firing").json()
    assert [(a["rule"], a["severity"], a["status"]) for a in body["results"]] == [("Beat stale", "critical", "firing")]
    assert body["results"][0]["message"] == "Beat has never sent its heartbeat task."
    assert client_for(make_user("viewer-a", role="viewer")).get("/api/v1/monitoring/alerts/").status_code == 403
