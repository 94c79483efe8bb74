"""Per job kind: throughput, failure rate, run and wait time percentiles, slow jobs,
recent failures. Read from the Job rows of the last day.

Percentiles interpolate linearly between the two nearest ranks (PostgreSQL's
`percentile_cont`, NumPy's default): p50 of 1, 2, 3, 4 s is 2.5 s.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from jobs.kinds import all_kinds
from jobs.models import Job, JobStatus
from monitoring.models import RuntimeBudget

WINDOWS = {"last_minute": timedelta(minutes=1), "last_hour": timedelta(hours=1), "last_day": timedelta(days=1)}
SLOW_JOBS_LIMIT = 10
RECENT_FAILURES_LIMIT = 5


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Linear-interpolation percentile (fraction 0..1) of already sorted values."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * fraction
    lower = math.floor(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    weight = position - lower
    return sorted_values[lower] * (1 - weight) + sorted_values[upper] * weight


@dataclass
class _KindRows:
    finished: list[tuple] = field(default_factory=list)  # (status, finished_at, runtime or None)
    waits: list[float] = field(default_factory=list)
    slow_candidates: list[tuple] = field(default_factory=list)  # (runtime, id, finished_at, status)


def kind_metrics(*, now: datetime | None = None) -> dict:
    """Metrics of every job kind with jobs in the last day (and every registered kind)."""
    now = now or timezone.now()
    day_ago = now - WINDOWS["last_day"]
    budgets = dict(RuntimeBudget.objects.values_list("kind", "max_seconds"))
    per_kind: dict[str, _KindRows] = defaultdict(_KindRows)
    finished_rows = (
        Job.objects.filter(finished_at__gte=day_ago, finished_at__lte=now)
        .values_list("id", "kind", "status", "finished_at", "started_at")
        .iterator(chunk_size=5000)
    )
    for job_id, kind, status, finished_at, started_at in finished_rows:
        runtime = (finished_at - started_at).total_seconds() if started_at else None
        rows = per_kind[kind]
        rows.finished.append((status, finished_at, runtime))
        if runtime is not None and status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            rows.slow_candidates.append((runtime, job_id, finished_at, status))
    started_rows = (
        Job.objects.filter(started_at__gte=day_ago, started_at__lte=now)
        .values_list("kind", "created_at", "not_before", "started_at")
        .iterator(chunk_size=5000)
    )
    for kind, created_at, not_before, started_at in started_rows:
        due = max(created_at, not_before) if not_before else created_at
        per_kind[kind].waits.append(max((started_at - due).total_seconds(), 0.0))
    kinds = sorted(set(per_kind) | {kind.name for kind in all_kinds()})
    failures = _recent_failures(kinds, now=now)
    return {
        "generated_at": now.isoformat(),
        "kinds": [
            _one_kind(kind, per_kind.get(kind) or _KindRows(), budgets.get(kind), failures.get(kind, []), now)
            for kind in kinds
        ],
    }


def _one_kind(kind: str, rows: _KindRows, budget: int | None, failures: list[dict], now: datetime) -> dict:
    throughput = {}
    failure_rate = {}
    for label, span in WINDOWS.items():
        since = now - span
        in_window = [status for status, finished_at, _ in rows.finished if finished_at >= since]
        succeeded = in_window.count(JobStatus.SUCCEEDED)
        failed = in_window.count(JobStatus.FAILED)
        throughput[label] = succeeded + failed
        failure_rate[label] = round(100.0 * failed / (succeeded + failed), 2) if succeeded + failed else None
    runtimes = sorted(runtime for runtime, *_ in rows.slow_candidates)
    waits = sorted(rows.waits)
    p95 = percentile(runtimes, 0.95)
    threshold = float(budget) if budget is not None else p95
    slow = sorted((row for row in rows.slow_candidates if threshold is not None and row[0] > threshold), reverse=True)[
        :SLOW_JOBS_LIMIT
    ]
    return {
        "kind": kind,
        "throughput": throughput,
        "finished_last_day": {
            status: sum(1 for s, _, _ in rows.finished if s == status)
            for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
        },
        "failure_rate_percent": failure_rate,
        "runtime_seconds": {
            "p50": _round(percentile(runtimes, 0.5)),
            "p95": _round(p95),
            "max": _round(runtimes[-1] if runtimes else None),
            "samples": len(runtimes),
        },
        "wait_seconds": {
            "p50": _round(percentile(waits, 0.5)),
            "p95": _round(percentile(waits, 0.95)),
            "samples": len(waits),
        },
        "slow_threshold_seconds": _round(threshold),
        "slow_threshold_source": "budget" if budget is not None else "p95",
        "slow_jobs": [
            {
                "job_id": str(job_id),
                "runtime_seconds": _round(runtime),
                "status": status,
                "finished_at": finished_at.isoformat(),
            }
            for runtime, job_id, finished_at, status in slow
        ],
        "recent_failures": failures,
    }


def _recent_failures(kinds: list[str], *, now: datetime) -> dict[str, list[dict]]:
    result: dict[str, list[dict]] = {}
    for kind in kinds:
        rows = (
            Job.objects.filter(kind=kind, status=JobStatus.FAILED, finished_at__lte=now)
            .order_by("-finished_at")
            .values("id", "error", "finished_at", "attempts")[:RECENT_FAILURES_LIMIT]
        )
        result[kind] = [failure_entry(row) for row in rows]
    return result


def failure_entry(row: dict) -> dict:
    """A failed job as metrics and the dashboard show it: id, first line of the error, when."""
    first_line = (row["error"] or "").strip().splitlines()[0][:300] if (row["error"] or "").strip() else ""
    return {
        "job_id": str(row["id"]),
        "error": first_line,
        "attempts": row.get("attempts"),
        "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
    }


def recent_failures(*, limit: int = 20) -> list[dict]:
    """The latest failed jobs of every kind."""
    rows = (
        Job.objects.filter(status=JobStatus.FAILED)
        .order_by("-finished_at")
        .values("id", "kind", "error", "finished_at", "attempts")[:limit]
    )
    return [{**failure_entry(row), "kind": row["kind"]} for row in rows]


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None
