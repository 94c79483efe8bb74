"""Each health check fails when its service is broken and passes again once it is back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from monitoring.health import health_report
from monitoring.models import Heartbeat
from tests.support.workers import REPO_ROOT, WorkerProcess, subprocess_database_url


def verdict(name: str):
    outcome = health_report().outcome(name)
    assert outcome is not None, f"no check named {name}"
    return outcome


def run_health_command(database_url: str) -> tuple[int, dict]:
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "manage.py", "health", "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.mark.services
@pytest.mark.django_db
def test_database_check_fails_when_the_database_does_not_answer_and_passes_when_it_does():
    code, report = run_health_command("postgres://postgres@127.0.0.1:1/apintake")
    checks = {check["name"]: check for check in report["checks"]}
    assert code == 1
    assert checks["database"]["ok"] is False
    assert "127.0.0.1" not in checks["database"]["error"]  # no connection details leak

    code, report = run_health_command(subprocess_database_url())
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["database"] == {**checks["database"], "ok": True, "error": None}
    assert checks["migrations"]["ok"] is True


@pytest.mark.django_db
def test_migrations_check_names_the_missing_migration_and_recovers():
    from django.db.migrations.loader import MigrationLoader

    # The app's newest migration: with an older one missing but a newer one applied, nothing is planned.
    [latest] = [name for app, name in MigrationLoader(connection).graph.leaf_nodes() if app == "monitoring"]
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = %s AND name = %s", ["monitoring", latest])
    failing = verdict("migrations")
    assert not failing.ok
    assert f"monitoring.{latest}" in failing.error

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, %s)",
            ["monitoring", latest, timezone.now()],
        )
    assert verdict("migrations").ok


@pytest.mark.services
@pytest.mark.django_db
def test_broker_check_follows_a_redis_that_stops_and_starts(settings, private_redis):
    settings.CELERY_BROKER_URL = private_redis.url
    assert verdict("broker").ok

    private_redis.stop()
    down = verdict("broker")
    assert not down.ok
    assert "broker" in down.error.lower()
    assert str(private_redis.port) not in down.error

    private_redis.start()
    assert verdict("broker").ok


@pytest.mark.services
@pytest.mark.django_db
def test_cache_check_follows_a_redis_that_stops_and_starts(settings, private_redis):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": private_redis.url,
            "OPTIONS": {"socket_timeout": 1, "socket_connect_timeout": 1},
        }
    }
    assert verdict("cache").ok

    private_redis.stop()
    assert not verdict("cache").ok

    private_redis.start()
    assert verdict("cache").ok


@pytest.mark.django_db
def test_storage_check_fails_when_media_root_cannot_hold_files(settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the media directory should be")
    settings.MEDIA_ROOT = blocker
    assert not verdict("storage").ok

    settings.MEDIA_ROOT = tmp_path / "media"
    assert verdict("storage").ok
    assert list((tmp_path / "media").rglob("*.txt")) == []  # the probe file is removed again


@pytest.mark.django_db
def test_disk_check_compares_free_space_with_the_minimum(settings):
    settings.MONITORING_DISK_MIN_FREE_MB = 10**12
    low = verdict("disk")
    assert not low.ok
    assert "MONITORING_DISK_MIN_FREE_MB" in low.error

    settings.MONITORING_DISK_MIN_FREE_MB = 1
    assert verdict("disk").ok


@pytest.mark.django_db
def test_beat_check_goes_stale_after_two_heartbeat_intervals(settings):
    from monitoring.tasks import beat_heartbeat

    settings.MONITORING_BEAT_HEARTBEAT_SECONDS = 30
    assert not verdict("beat").ok  # never ran

    beat_heartbeat()  # what the scheduled task does
    assert verdict("beat").ok

    Heartbeat.objects.filter(name="beat").update(beat_at=timezone.now() - timedelta(seconds=61))
    stale = verdict("beat")
    assert not stale.ok
    assert "61 s old" in stale.error or "62 s old" in stale.error

    Heartbeat.objects.filter(name="beat").update(beat_at=timezone.now() - timedelta(seconds=45))
    assert verdict("beat").ok


@pytest.mark.worker
@pytest.mark.services
@pytest.mark.django_db
def test_workers_check_follows_a_worker_that_stops_and_starts(no_session_worker):
    from django.core.cache import cache

    worker = WorkerProcess(name="health", queues="maintenance", concurrency=1).start()
    try:
        cache.clear()
        assert verdict("workers").ok

        worker.stop()
        cache.clear()  # the ping answer is cached for MONITORING_WORKER_CACHE_SECONDS
        gone = verdict("workers")
        assert not gone.ok
        assert gone.error == "No Celery worker answered a ping."

        worker.start()
        cache.clear()
        assert verdict("workers").ok
    finally:
        worker.stop()


@pytest.mark.worker
@pytest.mark.services
@pytest.mark.django_db
def test_the_worker_answer_is_cached_briefly(no_session_worker, settings):
    from django.core.cache import cache

    settings.MONITORING_WORKER_CACHE_SECONDS = 60
    worker = WorkerProcess(name="cached", queues="maintenance", concurrency=1).start()
    try:
        cache.clear()
        assert verdict("workers").ok
        worker.stop()
        assert verdict("workers").ok  # served from the cache, no broadcast
        cache.clear()
        assert not verdict("workers").ok
    finally:
        worker.stop()
