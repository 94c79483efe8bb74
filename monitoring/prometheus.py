"""Prometheus metrics, collected from the database and Redis at scrape time.

The metric names are a contract (docs/monitoring.md, docs/deployment.md):

- `apintake_queue_length{queue}`: messages waiting in the broker
- `apintake_queue_oldest_job_age_seconds{queue}`: age of the oldest due, waiting job (0 when none)
- `apintake_jobs_finished_total{kind,status}`: counter of finished jobs
- `apintake_job_runtime_seconds{kind}`: histogram of run times of finished jobs

Counters must never go down, but retention deletes old Job rows, so the
counter and histogram are running totals kept in JobCounter: each scrape adds
the jobs finished since the last one (up to a few seconds ago, so a job
finishing while we read is counted next time, never twice or never).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from jobs.models import ACTIVE_STATUSES, Job
from monitoring.health import beat_heartbeat_age, health_report_recent
from monitoring.models import Alert, AlertStatus, JobCounter, MetricsCursor, PolicyRule, ScanRun, ViolationStatus
from monitoring.queues import broker_queue_lengths, oldest_waiting_since
from monitoring.workers import workers_ping

logger = logging.getLogger(__name__)

RUNTIME_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
CURSOR_NAME = "jobs_finished"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def job_counters_refresh(*, now: datetime | None = None) -> int:
    """Add jobs finished since the last refresh into the running totals; returns how many."""
    now = now or timezone.now()
    until = now - timedelta(seconds=settings.MONITORING_METRICS_SETTLE_SECONDS)
    MetricsCursor.objects.get_or_create(name=CURSOR_NAME, defaults={"position": EPOCH})
    with transaction.atomic():
        cursor = MetricsCursor.objects.select_for_update().get(name=CURSOR_NAME)
        if until <= cursor.position:
            return 0
        runtime = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
        buckets = {
            f"le_{i}": Count("id", filter=Q(runtime__lte=timedelta(seconds=bound)))
            for i, bound in enumerate(RUNTIME_BUCKETS)
        }
        rows = (
            Job.objects.filter(finished_at__gt=cursor.position, finished_at__lte=until)
            .annotate(runtime=runtime)
            .values("kind", "status")
            .annotate(
                finished=Count("id"),
                runtime_count=Count("id", filter=Q(started_at__isnull=False)),
                runtime_total=Sum("runtime", filter=Q(started_at__isnull=False)),
                **buckets,
            )
            .order_by()
        )
        added = 0
        for row in rows:
            counter, _ = JobCounter.objects.select_for_update().get_or_create(
                kind=row["kind"], status=row["status"], defaults={"runtime_buckets": [0] * (len(RUNTIME_BUCKETS) + 1)}
            )
            new_buckets = [row[f"le_{i}"] for i in range(len(RUNTIME_BUCKETS))] + [row["runtime_count"]]
            old = counter.runtime_buckets or [0] * len(new_buckets)
            counter.runtime_buckets = [a + b for a, b in zip(old, new_buckets, strict=True)]
            counter.finished += row["finished"]
            counter.runtime_count += row["runtime_count"]
            counter.runtime_sum += row["runtime_total"].total_seconds() if row["runtime_total"] else 0.0
            counter.save()
            added += row["finished"]
        cursor.position = until
        cursor.save(update_fields=["position"])
    return added


class ApIntakeCollector(Collector):
    """Reads queues, jobs, workers, health, alerts and compliance at each scrape.

    A source that fails (Redis down) is reported in `apintake_metrics_source_up`
    and leaves out its own metrics only.
    """

    def collect(self) -> Iterator[Metric]:
        sources = GaugeMetricFamily(
            "apintake_metrics_source_up",
            "1 when this source of metrics could be read at this scrape.",
            labels=["source"],
        )
        for source, produce in (
            ("broker", self._queues_from_broker),
            ("jobs", self._jobs),
            ("job_totals", self._job_totals),
            ("workers", self._workers),
            ("health", self._health),
            ("alerts", self._alerts),
            ("compliance", self._compliance),
        ):
            try:
                yield from list(produce())
                sources.add_metric([source], 1)
            except Exception as exc:
                logger.warning("Metrics source %s failed: %s", source, exc)
                sources.add_metric([source], 0)
        yield sources

    def _queues_from_broker(self) -> Iterator[Metric]:
        lengths, error = broker_queue_lengths()
        if error:
            raise RuntimeError(error)
        total = GaugeMetricFamily("apintake_queue_length", "Messages waiting in the broker queue.", labels=["queue"])
        steps = GaugeMetricFamily(
            "apintake_queue_priority_length",
            "Messages waiting in one priority step of a queue (0 runs first).",
            labels=["queue", "priority"],
        )
        for queue, by_priority in lengths.items():
            total.add_metric([queue], sum(by_priority.values()))
            for step, count in by_priority.items():
                steps.add_metric([queue, str(step)], count)
        yield total
        yield steps

    def _jobs(self) -> Iterator[Metric]:
        now = timezone.now()
        waiting = oldest_waiting_since(now=now)
        age = GaugeMetricFamily(
            "apintake_queue_oldest_job_age_seconds",
            "Seconds the oldest due job of the queue has waited (0 when none waits).",
            labels=["queue"],
        )
        for queue in settings.JOB_QUEUES:
            since = waiting.get(queue, {}).get("waiting_since")
            age.add_metric([queue], max((now - since).total_seconds(), 0.0) if since else 0.0)
        yield age
        active = GaugeMetricFamily(
            "apintake_jobs_active", "Jobs queued, running or retrying.", labels=["queue", "status"]
        )
        counts = (
            Job.objects.filter(status__in=ACTIVE_STATUSES).values("queue", "status").annotate(n=Count("id")).order_by()
        )
        seen = {(row["queue"], row["status"]): row["n"] for row in counts}
        for queue in settings.JOB_QUEUES:
            for status in ACTIVE_STATUSES:
                active.add_metric([queue, str(status)], seen.get((queue, status), 0))
        yield active
        dead = GaugeMetricFamily("apintake_dead_letter_jobs", "Failed jobs not retried (dead letters).")
        dead.add_metric([], Job.objects.filter(is_dead_letter=True).count())
        yield dead

    def _job_totals(self) -> Iterator[Metric]:
        job_counters_refresh()
        finished = CounterMetricFamily(
            "apintake_jobs_finished", "Jobs finished, by kind and final status.", labels=["kind", "status"]
        )
        runtime = HistogramMetricFamily("apintake_job_runtime_seconds", "Run time of finished jobs.", labels=["kind"])
        per_kind: dict[str, dict] = defaultdict(lambda: {"buckets": [0] * (len(RUNTIME_BUCKETS) + 1), "sum": 0.0})
        for counter in JobCounter.objects.order_by("kind", "status"):
            finished.add_metric([counter.kind, counter.status], counter.finished)
            totals = per_kind[counter.kind]
            totals["buckets"] = [a + b for a, b in zip(totals["buckets"], counter.runtime_buckets, strict=True)]
            totals["sum"] += counter.runtime_sum
        for kind, totals in sorted(per_kind.items()):
            bounds = [_bound(value) for value in RUNTIME_BUCKETS] + ["+Inf"]
            runtime.add_metric([kind], list(zip(bounds, totals["buckets"], strict=True)), totals["sum"])
        yield finished
        yield runtime

    def _workers(self) -> Iterator[Metric]:
        online = GaugeMetricFamily("apintake_workers_online", "Celery workers answering a ping (cached briefly).")
        online.add_metric([], len(workers_ping()))
        yield online

    def _health(self) -> Iterator[Metric]:
        report = health_report_recent()
        checks = GaugeMetricFamily("apintake_health_check_ok", "1 when the health check passes.", labels=["check"])
        for outcome in report.checks:
            checks.add_metric([outcome.name], 1 if outcome.ok else 0)
        yield checks
        age = beat_heartbeat_age()
        if age is not None:
            beat = GaugeMetricFamily("apintake_beat_heartbeat_age_seconds", "Seconds since beat's heartbeat task ran.")
            beat.add_metric([], age)
            yield beat

    def _alerts(self) -> Iterator[Metric]:
        firing = GaugeMetricFamily("apintake_alerts_firing", "Alerts firing now.", labels=["severity"])
        counts = dict(
            Alert.objects.filter(status=AlertStatus.FIRING)
            .values_list("rule__severity")
            .annotate(n=Count("id"))
            .order_by()
        )
        for severity in ("warning", "critical"):
            firing.add_metric([severity], counts.get(severity, 0))
        yield firing

    def _compliance(self) -> Iterator[Metric]:
        open_violations = GaugeMetricFamily(
            "apintake_compliance_open_violations", "Open policy violations per rule.", labels=["rule"]
        )
        for name, count in PolicyRule.objects.annotate(
            n=Count("violations", filter=Q(violations__status=ViolationStatus.OPEN))
        ).values_list("name", "n"):
            open_violations.add_metric([name], count)
        yield open_violations
        last = ScanRun.objects.filter(status=ScanRun.Status.SUCCEEDED).order_by("-started_at").first()
        if last is not None:
            finished = GaugeMetricFamily(
                "apintake_compliance_last_scan_timestamp_seconds",
                "Unix time the last successful compliance scan finished.",
            )
            finished.add_metric([], (last.finished_at or last.started_at).timestamp())
            yield finished


def _bound(value: float) -> str:
    return f"{value:g}" if value != int(value) else f"{value:.1f}"


registry = CollectorRegistry(auto_describe=False)
registry.register(ApIntakeCollector())
