"""Celery workers as monitoring sees them: who answers, and what each one does.

Workers are asked through Celery's control channel (ping, inspect stats,
active_queues, active). Every broadcast waits up to its timeout for replies,
so answers are cached for MONITORING_WORKER_CACHE_SECONDS, and a broadcast
stops waiting as soon as the number of workers seen last time have answered.
A worker that stops answering stays listed as offline, with the time of its
last answer, for an hour.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from jobs.models import Job

logger = logging.getLogger(__name__)

PING_KEY = "monitoring:workers:ping"
COUNT_KEY = "monitoring:workers:count"
OVERVIEW_KEY = "monitoring:workers:overview"
SEEN_KEY = "monitoring:workers:seen"
REFRESH_LOCK_KEY = "monitoring:workers:refresh-lock"
FORGET_OFFLINE_AFTER = timedelta(hours=1)


def _cache_get(key: str) -> Any:
    try:
        return cache.get(key)
    except Exception:  # a cache outage must not hide the workers
        return None


def _cache_set(key: str, value: Any, seconds: int) -> None:
    try:
        cache.set(key, value, seconds)
    except Exception as exc:
        logger.debug("Could not cache %s: %s", key, exc)


def _cache_add(key: str, value: Any, seconds: int) -> bool:
    try:
        return cache.add(key, value, seconds)
    except Exception:
        return True


def _expected_count() -> int | None:
    count = _cache_get(COUNT_KEY)
    return count if isinstance(count, int) and count > 0 else None


def _remember_count(answered: int, limit: int | None) -> None:
    # Replies are complete when we did not stop early at the limit.
    if limit is None or answered < limit:
        _cache_set(COUNT_KEY, answered, 24 * 3600)


def workers_ping(*, fresh: bool = False, discover: bool = False) -> list[str]:
    """Host names of the workers that answer a ping (cached briefly unless `fresh`).

    `discover` waits the whole timeout, so workers started since the last full
    ping are found too (the scheduled snapshots do that).
    """
    if not fresh and not discover:
        cached = _cache_get(PING_KEY)
        if cached is not None:
            return cached["hosts"]
    limit = None if discover else _expected_count()
    with current_app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
        replies = (
            current_app.control.ping(
                timeout=settings.MONITORING_WORKER_PING_TIMEOUT, connection=connection, limit=limit
            )
            or []
        )
    hosts = sorted(host for reply in replies for host, answer in reply.items() if answer.get("ok") == "pong")
    _remember_count(len(hosts), limit)
    _cache_set(PING_KEY, {"at": timezone.now().isoformat(), "hosts": hosts}, settings.MONITORING_WORKER_CACHE_SECONDS)
    return hosts


def workers_overview(*, fresh: bool = False, discover: bool = False) -> dict:
    """Every worker seen in the last hour: hostname, pid, concurrency, queues, active
    jobs, processed count and last heartbeat (its last answer), plus `checked_at`.

    Served from the cache while it is younger than MONITORING_WORKER_CACHE_SECONDS;
    while one request refreshes it, others get the previous answer at once.
    """
    cached = _cache_get(OVERVIEW_KEY)
    now = timezone.now()
    if cached and not fresh and not discover:
        age = (now - datetime.fromisoformat(cached["checked_at"])).total_seconds()
        if age < settings.MONITORING_WORKER_CACHE_SECONDS:
            return cached
        if not _cache_add(REFRESH_LOCK_KEY, 1, 10):
            return cached  # another request is asking the workers right now
    try:
        online, error = _inspect_workers(discover=discover), None
    except Exception as exc:  # broker down, ...: show what we knew, all offline
        logger.warning("Could not inspect workers: %s", exc)
        online, error = {}, f"Could not ask the workers: {type(exc).__name__}."
    overview = {"checked_at": now.isoformat(), "error": error, "workers": _merge_seen(online, now)}
    _cache_set(OVERVIEW_KEY, overview, 3600)
    try:
        cache.delete(REFRESH_LOCK_KEY)
    except Exception:
        logger.debug("Could not release the worker refresh lock")
    return overview


def _inspect_workers(*, discover: bool) -> dict[str, dict]:
    app = current_app
    timeout = settings.MONITORING_WORKER_PING_TIMEOUT
    limit = None if discover else _expected_count()
    with app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
        stats = app.control.inspect(timeout=timeout, connection=connection, limit=limit).stats() or {}
        _remember_count(len(stats), limit)
        if not stats:
            return {}
        hosts = sorted(stats)
        asking = app.control.inspect(destination=hosts, timeout=timeout, connection=connection, limit=len(hosts))
        queues = asking.active_queues() or {}
        active = asking.active() or {}
        health = asking._request("apintake_health") or {}
    now = timezone.now().isoformat()
    jobs = _jobs_by_id([task["id"] for tasks in active.values() for task in tasks or []])
    workers = {}
    for host in hosts:
        info = stats[host] or {}
        pool = info.get("pool") or {}
        tasks = active.get(host) or []
        workers[host] = {
            "hostname": host,
            "online": True,
            "pid": info.get("pid"),
            "concurrency": pool.get("max-concurrency"),
            "queues": sorted(queue.get("name") for queue in queues.get(host) or []),
            "active": [_active_entry(task, jobs.get(task["id"])) for task in tasks],
            "active_count": len(tasks),
            "processed": sum((info.get("total") or {}).values()),
            "uptime_seconds": info.get("uptime"),
            "last_heartbeat": now,
            # The worker's own verdict (jobs/worker_health.py): False while its database does not answer.
            "healthy": (health.get(host) or {}).get("healthy", True),
            "problem": (health.get(host) or {}).get("problem"),
        }
    return workers


def _jobs_by_id(ids: list[str]) -> dict[str, Job]:
    valid = []
    for value in ids:
        try:
            valid.append(str(uuid.UUID(value)))
        except (ValueError, TypeError):
            continue
    return {str(job.pk): job for job in Job.objects.filter(pk__in=valid)}


def _active_entry(task: dict, job: Job | None) -> dict:
    entry = {
        "task_id": task.get("id"),
        "task": task.get("name"),
        "job_id": None,
        "kind": task.get("name"),
        "progress_percent": None,
        "started_at": None,
    }
    if task.get("time_start"):
        entry["started_at"] = datetime.fromtimestamp(task["time_start"], tz=timezone.get_current_timezone()).isoformat()
    if job is not None:
        entry.update(
            job_id=str(job.pk),
            kind=job.kind,
            progress_percent=job.progress_percent,
            started_at=job.started_at.isoformat() if job.started_at else entry["started_at"],
        )
    return entry


def _merge_seen(online: dict[str, dict], now: datetime) -> list[dict]:
    seen: dict[str, dict] = _cache_get(SEEN_KEY) or {}
    for host, record in seen.items():
        if host not in online:
            record.update(online=False, active=[], active_count=0)
    seen.update(online)
    cutoff = now - FORGET_OFFLINE_AFTER
    seen = {
        host: record
        for host, record in seen.items()
        if record["online"] or datetime.fromisoformat(record["last_heartbeat"]) >= cutoff
    }
    _cache_set(SEEN_KEY, seen, 24 * 3600)
    return sorted(seen.values(), key=lambda record: (not record["online"], record["hostname"]))


def workers_problems(hosts: list[str]) -> dict[str, str]:
    """Per answering worker that reports itself unhealthy (its database does not
    answer, so it stopped consuming): why."""
    if not hosts:
        return {}
    with current_app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
        replies = current_app.control.inspect(
            destination=hosts, timeout=settings.MONITORING_WORKER_PING_TIMEOUT, connection=connection, limit=len(hosts)
        )._request("apintake_health")
    return {
        host: (state or {}).get("problem") or "unhealthy"
        for host, state in (replies or {}).items()
        if state and state.get("healthy") is False
    }
