"""Schedule observability (expected against actual runs) and "run now"."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from core.models import AuditEntry
from jobs.models import Job
from jobs.schedules import schedules_ensure
from monitoring.periodic import schedule_report


def scheduled_run(name: str, at) -> Job:
    job = Job.objects.create(
        kind="jobs.sleep",
        queue="default",
        status="succeeded",
        source="schedule",
        schedule_name=name,
        started_at=at,
        finished_at=at,
    )
    Job.objects.filter(pk=job.pk).update(created_at=at)
    return job


@pytest.mark.django_db
def test_ensure_schedules_creates_the_monitoring_schedules():
    created = schedules_ensure()
    monitoring = sorted(name for name in created if name.startswith("monitoring:"))
    assert monitoring == sorted(
        [
            "monitoring: beat heartbeat",
            "monitoring: evaluate alert rules",
            "monitoring: compliance scan (incremental)",
            "monitoring: compliance scan (full, daily)",
            "monitoring: health snapshot",
            "monitoring: worker snapshot",
            "monitoring: delete temporary files",
            "monitoring: system report",
            "monitoring: configuration backup",
        ]
    )
    scan = PeriodicTask.objects.get(name="monitoring: compliance scan (incremental)")
    assert (scan.task, scan.interval.every, scan.interval.period) == ("monitoring.compliance_scan", 300, "seconds")


@pytest.mark.django_db
def test_crontab_schedule_late_missed_and_twice_runs_in_its_time_zone():
    berlin = ZoneInfo("Europe/Berlin")
    crontab = CrontabSchedule.objects.create(minute="0", hour="*", timezone=berlin)
    task = PeriodicTask.objects.create(name="hourly sleep", task="jobs.sleep", crontab=crontab)
    now = timezone.now()
    top_of_hour = now.replace(minute=0, second=0, microsecond=0)
    slots = [top_of_hour - timedelta(hours=hours) for hours in range(23, -1, -1)]
    for index, slot in enumerate(slots):
        if index == 21:
            continue  # missed
        if index == 20:
            scheduled_run(task.name, slot + timedelta(minutes=5))  # late
        elif index == 19:
            scheduled_run(task.name, slot + timedelta(seconds=2))
            scheduled_run(task.name, slot + timedelta(seconds=10))  # twice
        else:
            scheduled_run(task.name, slot + timedelta(seconds=3))
    task.last_run_at = slots[-1]
    task.save()

    report = schedule_report(task, now=now)
    assert (report["expected_runs"], report["actual_runs"]) == (24, 24)
    assert (report["missed"], report["late"], report["run_twice"]) == (1, 1, 1)
    assert report["state"] == "missed" and report["tracked"] is True
    assert report["timezone"] == "Europe/Berlin"
    assert report["next_run_at"] == (top_of_hour + timedelta(hours=1)).astimezone(berlin).isoformat()


@pytest.mark.django_db
def test_interval_schedule_gaps_show_late_missed_and_twice():
    interval = IntervalSchedule.objects.create(every=10, period="minutes")
    task = PeriodicTask.objects.create(name="ten minutes", task="jobs.sleep", interval=interval)
    start = timezone.now() - timedelta(hours=2)
    offsets = [0, 600, 1200, 2400, 2450, 3150]  # 1200: one missed; 50: twice; 700: late
    for seconds in offsets:
        scheduled_run(task.name, start + timedelta(seconds=seconds))
    task.last_run_at = start + timedelta(seconds=offsets[-1])
    task.save()
    now = start + timedelta(seconds=offsets[-1] + 100)

    report = schedule_report(task, now=now)
    assert (report["missed"], report["late"], report["run_twice"], report["actual_runs"]) == (1, 1, 1, 6)
    assert report["next_run_at"] == (task.last_run_at + timedelta(minutes=10)).isoformat()


@pytest.mark.django_db
def test_an_untracked_task_shows_its_last_run_only(make_user, client_for):
    schedules_ensure()
    sweep = PeriodicTask.objects.get(task="jobs.sweep")
    body = client_for(make_user("staff-s", staff=True)).get("/api/v1/monitoring/schedules/").json()
    entry = next(item for item in body if item["id"] == sweep.pk)
    assert entry["tracked"] is False and entry["state"] == "never_run" and entry["expected_runs"] is None
    assert {item["name"] for item in body} >= {"monitoring: beat heartbeat", "jobs: sweep lost and waiting jobs"}


@pytest.mark.django_db
def test_run_now_creates_an_audited_job_linked_to_the_schedule(
    make_user, client_for, django_capture_on_commit_callbacks
):
    schedules_ensure()
    task = PeriodicTask.objects.get(name="monitoring: system report")
    admin_user = make_user("root-s", superuser=True)
    assert (
        client_for(make_user("staff-n", staff=True)).post(f"/api/v1/monitoring/schedules/{task.pk}/run/").status_code
        == 403
    )
    with django_capture_on_commit_callbacks(execute=False):
        response = client_for(admin_user).post(
            f"/api/v1/monitoring/schedules/{task.pk}/run/", {"reason": "testing"}, format="json"
        )
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["job_id"])
    assert (job.kind, job.schedule_name, job.source, job.params) == (
        "monitoring.system_report",
        task.name,
        "api",
        {"hours": 12},
    )
    entry = AuditEntry.objects.get(action="schedule.run_now")
    assert (entry.actor, entry.reason, entry.target_label) == (admin_user, "testing", str(task))
    # a manual run does not count as the schedule running twice
    assert schedule_report(task)["actual_runs"] == 0


@pytest.mark.django_db
def test_run_now_from_the_beat_admin_is_the_same_checked_and_audited_service(
    make_user, client, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import Permission

    schedules_ensure()
    task = PeriodicTask.objects.get(name="monitoring: system report")
    # Staff who may edit schedules but not start this kind: the admin used to send it anyway.
    editor = make_user("beat-editor", staff=True)
    editor.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="django_celery_beat", codename__in=["view_periodictask", "change_periodictask"]
        )
    )
    client.force_login(editor)
    url = "/admin/django_celery_beat/periodictask/"
    with django_capture_on_commit_callbacks(execute=False):
        refused = client.post(url, {"action": "run_tasks", "_selected_action": [task.pk]}, follow=True)
    assert not Job.objects.filter(kind="monitoring.system_report").exists()
    assert "You may not start monitoring.system_report jobs." in refused.content.decode()

    root = make_user("beat-root", superuser=True)
    client.force_login(root)
    with django_capture_on_commit_callbacks(execute=False):
        client.post(url, {"action": "run_tasks", "_selected_action": [task.pk]})
    job = Job.objects.get(kind="monitoring.system_report")
    assert (job.schedule_name, job.source) == (task.name, "admin")
    entry = AuditEntry.objects.get(action="schedule.run_now")
    assert (entry.actor, entry.reason, entry.job) == (root, "admin action", job)
