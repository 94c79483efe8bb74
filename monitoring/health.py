"""Health checks: database, migrations, broker, cache, storage, disk, workers, beat.

Each check is a django-health-check `HealthCheck` that raises one of its
exceptions with a message a person understands (and no secrets: never a URL,
a host or a password). `health_report()` runs them all and is what /health/,
the API, `manage.py health`, the health snapshot and the alert rules use.

Checks that use the database run in the caller's thread (the connection and
transaction the caller has); the others run in a small thread pool at the same
time, each within its own timeout, so a frozen Redis costs one timeout, not
the sum of all.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.checks import Database, Storage
from health_check.exceptions import HealthCheckException, ServiceUnavailable

from monitoring.models import Heartbeat
from monitoring.workers import workers_ping, workers_problems

logger = logging.getLogger(__name__)

MIGRATIONS_OK_CACHE_SECONDS = 300
_pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="health-check")
_migrations_ok_at: dict[str, float] = {}
_migrations_lock = threading.Lock()


@dataclass(frozen=True)
class CheckOutcome:
    """One check's verdict."""

    name: str
    ok: bool
    error: str | None
    duration_ms: float

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "error": self.error, "duration_ms": round(self.duration_ms, 2)}


@dataclass(frozen=True)
class HealthReport:
    """All checks' verdicts at one moment."""

    checked_at: datetime.datetime
    checks: list[CheckOutcome]
    duration_ms: float

    @property
    def healthy(self) -> bool:
        return all(check.ok for check in self.checks)

    def outcome(self, name: str) -> CheckOutcome | None:
        return next((check for check in self.checks if check.name == name), None)

    def as_dict(self) -> dict:
        """The full report (for authenticated callers): check names, verdicts and error messages."""
        return {
            "healthy": self.healthy,
            "checked_at": self.checked_at.isoformat(),
            "duration_ms": round(self.duration_ms, 2),
            "checks": [check.as_dict() for check in self.checks],
        }

    def as_public_dict(self) -> dict:
        """What anonymous callers (load balancers) may see: only check names and ok/error."""
        return {
            "status": "ok" if self.healthy else "error",
            "checks": {check.name: "ok" if check.ok else "error" for check in self.checks},
        }


# --- checks ---------------------------------------------------------------------------


@dataclasses.dataclass
class MigrationsApplied(HealthCheck):
    """Every migration the running code knows is applied to the database.

    Building the migration plan costs tens of milliseconds, so a success is
    remembered for a few minutes per process; a failure is checked again each time.
    """

    alias: str = DEFAULT_DB_ALIAS

    def run(self) -> None:
        with _migrations_lock:
            ok_at = _migrations_ok_at.get(self.alias)
        if ok_at is not None and time.monotonic() - ok_at < MIGRATIONS_OK_CACHE_SECONDS:
            return
        executor = MigrationExecutor(connections[self.alias])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:
            names = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _ in plan[:5])
            more = f" and {len(plan) - 5} more" if len(plan) > 5 else ""
            raise ServiceUnavailable(f"{len(plan)} migration(s) not applied: {names}{more}. Run manage.py migrate.")
        with _migrations_lock:
            _migrations_ok_at[self.alias] = time.monotonic()


@dataclasses.dataclass
class BrokerAnswers(HealthCheck):
    """The Redis broker answers PING."""

    timeout: datetime.timedelta = dataclasses.field(default=datetime.timedelta(seconds=2), repr=False)

    def run(self) -> None:
        seconds = self.timeout.total_seconds()
        client = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_timeout=seconds, socket_connect_timeout=seconds
        )
        try:
            client.ping()
        except redis.TimeoutError as exc:
            raise ServiceUnavailable("The broker (Redis) did not answer in time.") from exc
        except redis.RedisError as exc:
            raise ServiceUnavailable(f"The broker (Redis) does not answer: {type(exc).__name__}.") from exc
        finally:
            client.close()


@dataclasses.dataclass
class CacheRoundTrip(HealthCheck):
    """The cache stores and returns a value (synchronous, unlike the library's async Cache check)."""

    def run(self) -> None:
        key = f"monitoring:health:{uuid.uuid4().hex}"
        shared = getattr(cache, "shared", cache)  # Redis itself, not the per-process fallback
        try:
            shared.set(key, "ok", 10)
            value = shared.get(key)
            shared.delete(key)
        except Exception as exc:  # any backend: redis errors, socket errors, ...
            raise ServiceUnavailable(f"The cache does not answer: {type(exc).__name__}.") from exc
        if value != "ok":
            raise ServiceUnavailable("The cache did not return the value just stored.")


@dataclasses.dataclass
class FreeDisk(HealthCheck):
    """Enough free space where files are stored (MEDIA_ROOT and VAR_DIR)."""

    def run(self) -> None:
        minimum_mb = settings.MONITORING_DISK_MIN_FREE_MB
        for label, path in (("media", Path(settings.MEDIA_ROOT)), ("var", Path(settings.VAR_DIR))):
            existing = _nearest_existing(path)
            free_mb = shutil.disk_usage(existing).free / (1024 * 1024)
            if free_mb < minimum_mb:
                raise ServiceUnavailable(
                    f"Only {free_mb:,.0f} MB free for {label} files "
                    f"(minimum {minimum_mb:,} MB, MONITORING_DISK_MIN_FREE_MB)."
                )


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


@dataclasses.dataclass
class WorkersAnswer(HealthCheck):
    """At least one Celery worker answers a ping (the answer is cached briefly)."""

    timeout: datetime.timedelta = dataclasses.field(default=datetime.timedelta(seconds=3), repr=False)

    def run(self) -> None:
        try:
            answered = workers_ping()
            problems = workers_problems(answered)
        except Exception as exc:  # kombu raises many kinds when the broker is unreachable
            raise ServiceUnavailable(
                f"Could not ask the workers: the broker is unreachable ({type(exc).__name__})."
            ) from exc
        if not answered:
            raise ServiceUnavailable("No Celery worker answered a ping.")
        if problems:
            # Not the error text: it may name the database host.
            raise ServiceUnavailable(
                f"{len(problems)} of {len(answered)} worker(s) cannot reach the database and "
                f"stopped consuming: {', '.join(sorted(problems))}."
            )


@dataclasses.dataclass
class BeatAlive(HealthCheck):
    """Beat's heartbeat task ran within two heartbeat intervals."""

    def run(self) -> None:
        age = beat_heartbeat_age()
        limit = 2 * settings.MONITORING_BEAT_HEARTBEAT_SECONDS
        if age is None:
            raise ServiceUnavailable(
                "No beat heartbeat recorded yet: is beat running, with the default schedules "
                "(manage.py ensure_schedules)?"
            )
        if age > limit:
            raise ServiceUnavailable(
                f"Beat heartbeat is {age:.0f} s old (limit {limit} s): beat, or the worker "
                f"of the maintenance queue, is not running."
            )


def beat_heartbeat_age(*, now: datetime.datetime | None = None) -> float | None:
    """Seconds since beat's heartbeat task last ran, or None if it never did."""
    beat_at = Heartbeat.objects.filter(name="beat").values_list("beat_at", flat=True).first()
    if beat_at is None:
        return None
    return max(((now or timezone.now()) - beat_at).total_seconds(), 0.0)


@dataclass(frozen=True)
class NamedCheck:
    name: str
    check: HealthCheck
    uses_database: bool = False


def default_checks() -> list[NamedCheck]:
    """The checks every health report runs, in display order."""
    return [
        NamedCheck("database", Database(), uses_database=True),
        NamedCheck("migrations", MigrationsApplied(), uses_database=True),
        NamedCheck("broker", BrokerAnswers()),
        NamedCheck("cache", CacheRoundTrip()),
        NamedCheck("storage", Storage()),
        NamedCheck("disk", FreeDisk()),
        NamedCheck("workers", WorkersAnswer()),
        NamedCheck("beat", BeatAlive(), uses_database=True),
    ]


# --- running them ----------------------------------------------------------------------


def health_report(checks: list[NamedCheck] | None = None) -> HealthReport:
    """Run the checks and return every verdict."""
    checks = checks if checks is not None else default_checks()
    started = time.perf_counter()
    checked_at = timezone.now()
    futures = {named.name: _pool.submit(_run_one, named) for named in checks if not named.uses_database}
    inline = {named.name: _run_one(named) for named in checks if named.uses_database}
    outcomes = []
    for named in checks:
        if named.name in inline:
            outcomes.append(inline[named.name])
            continue
        wait = named.check.timeout.total_seconds() + 0.5
        try:
            outcomes.append(futures[named.name].result(timeout=wait))
        except FutureTimeout:
            outcomes.append(CheckOutcome(named.name, False, f"Timed out after {wait:g} s.", wait * 1000))
    return HealthReport(checked_at=checked_at, checks=outcomes, duration_ms=(time.perf_counter() - started) * 1000)


def _run_one(named: NamedCheck) -> CheckOutcome:
    started = time.perf_counter()
    error: str | None = None
    try:
        named.check.run()
    except HealthCheckException as exc:
        error = str(exc.message)
    except Exception as exc:
        logger.exception("Health check %s raised", named.name)
        error = f"Unexpected error: {type(exc).__name__}."
    finally:
        if not named.uses_database and threading.current_thread() is not threading.main_thread():
            # A pool thread must not keep database connections open (Storage may touch none, but
            # a check added later might): they would outlive the request.
            connections.close_all()
    return CheckOutcome(named.name, error is None, error, (time.perf_counter() - started) * 1000)


_recent: dict[str, tuple[float, HealthReport]] = {}


def health_report_recent() -> HealthReport:
    """A report at most MONITORING_WORKER_CACHE_SECONDS old (per process), for Prometheus
    scrapes: a gauge does not need a fresh file write and broker ping every 15 s."""
    with _migrations_lock:
        remembered = _recent.get("report")
    if remembered and time.monotonic() - remembered[0] < settings.MONITORING_WORKER_CACHE_SECONDS:
        return remembered[1]
    report = health_report()
    with _migrations_lock:
        _recent["report"] = (time.monotonic(), report)
    return report


def forget_remembered_results() -> None:
    """Drop the remembered migration verdict and report (after `migrate`, and in tests)."""
    with _migrations_lock:
        _migrations_ok_at.clear()
        _recent.clear()
