"""Monitoring at scale: health endpoint latency, /metrics scrape time, and compliance
scan times, with 1,000,000 Job rows and 100,000 invoices in PostgreSQL.

    .venv/bin/python bench/monitoring.py [--jobs 1000000] [--invoices 100000] [--requests 200]

Uses its own database (apintake_bench_mon, dropped at the end) and Redis
databases 7 (broker) and 8 (cache). Rows are generated inside PostgreSQL
(INSERT ... SELECT over generate_series, copying a template row's columns), so
the set-up takes a minute, not an hour. The health checks run for real: a
Celery worker process answers the ping, beat's heartbeat row is fresh.

Targets: health p95 < 100 ms, /metrics < 500 ms, full scan < 60 s, incremental
scan of 100 changed invoices < 2 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BenchError,
    WorkerProcess,
    bench_environment,
    create_database,
    drop_database,
    flush_redis,
    median,
    migrate,
    percentile,
    print_header,
    print_table,
    require_services,
    service_versions,
    setup_django,
    time_budget,
)

DATABASE = "apintake_bench_mon"
REDIS_DB = 7
TOKEN = "bench-metrics-token"
KINDS = [
    ("invoices.process_invoice", "invoices"),
    ("invoices.validate_invoice", "invoices"),
    ("invoices.export_invoices", "exports"),
    ("invoices.scan_inbox", "invoices"),
    ("monitoring.compliance_scan", "maintenance"),
    ("monitoring.evaluate_alerts", "maintenance"),
    ("jobs.sleep", "default"),
    ("jobs.prune", "maintenance"),
]


def _copy_template_sql(model, template_pk, overrides: dict[str, str], count: int, skip: set[str] = frozenset()) -> str:
    """INSERT ... SELECT that copies a template row `count` times, with per-row SQL overrides (column -> expression
    over the series number i)."""
    from django.db import connection

    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.column in skip:
            continue
        columns.append(quote(field.column))
        values.append(overrides.get(field.column, f"t.{quote(field.column)}"))
    pk = quote(model._meta.pk.column)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} "
        f"FROM {table} t, generate_series(1, {count}) AS i WHERE t.{pk} = {template_pk!r}"
    )


def generate_jobs(count: int) -> None:
    from django.db import connection

    from jobs.models import Job

    template = Job.objects.create(kind="jobs.sleep", queue="default", status="succeeded")
    kinds = "ARRAY[" + ",".join(f"'{kind}'" for kind, _ in KINDS) + "]"
    queues = "ARRAY[" + ",".join(f"'{queue}'" for _, queue in KINDS) + "]"
    status = (
        "CASE WHEN i <= 1000 THEN 'queued' WHEN i <= 1050 THEN 'running' WHEN i % 20 = 0 THEN 'failed' "
        "WHEN i % 33 = 0 THEN 'cancelled' ELSE 'succeeded' END"
    )
    created = "(now() - make_interval(secs => CASE WHEN i <= 1050 THEN i ELSE (i * 2.59) END))"
    started = f"CASE WHEN i <= 1000 THEN NULL ELSE {created} + make_interval(secs => i % 7) END"
    finished = (
        f"CASE WHEN i <= 1050 THEN NULL ELSE {created} + make_interval(secs => i % 7) "
        f"+ make_interval(secs => (i % 600) / 10.0) END"
    )
    overrides = {
        "id": "gen_random_uuid()",
        "kind": f"({kinds})[1 + i % {len(KINDS)}]",
        "queue": f"({queues})[1 + i % {len(KINDS)}]",
        "status": status,
        "created_at": created,
        "started_at": started,
        "finished_at": finished,
        "heartbeat_at": "CASE WHEN i <= 1050 AND i > 1000 THEN now() ELSE NULL END",
        "is_dead_letter": "(i > 1050 AND i % 20 = 0)",
        "error": "CASE WHEN i > 1050 AND i % 20 = 0 THEN 'ValueError: generated failure' ELSE '' END",
    }
    with connection.cursor() as cursor:
        cursor.execute(
            _copy_template_sql(Job, str(template.pk).replace("-", ""), overrides, count).replace(
                f"'{str(template.pk).replace('-', '')}'", f"'{template.pk}'"
            )
        )
        cursor.execute("DELETE FROM jobs_job WHERE id = %s", [template.pk])
        cursor.execute("VACUUM ANALYZE jobs_job")  # as autovacuum would have


def generate_invoices(count: int, vendors: int = 2000) -> None:
    from decimal import Decimal

    from django.db import connection
    from django.utils import timezone

    from invoices.models import Invoice, Vendor

    Vendor.objects.bulk_create(
        [
            Vendor(
                name=f"Vendor {n}",
                vat_id=f"VAT{n}",
                iban=f"DE{n:020d}",
                approval_limit=Decimal("10000.00"),
                status="blocked" if n % 100 == 0 else "active",
                requires_purchase_order=n % 20 == 0,
            )
            for n in range(vendors)
        ],
        batch_size=1000,
    )
    first_vendor = Vendor.objects.order_by("pk").values_list("pk", flat=True).first()
    template = Invoice.objects.create(
        status="validated",
        source="upload",
        original="originals/t.xml",
        original_filename="t.xml",
        sha256="0" * 64,
        size=1000,
        currency="EUR",
        seller_name="Seller",
        total_gross=Decimal("1.00"),
        due_date=timezone.localdate(),
    )
    overrides = {
        "sha256": "md5(i::text) || md5((i + 1)::text)",
        "invoice_number": "'INV-' || CASE WHEN i % 500 = 0 THEN i - 1 ELSE i END",
        "seller_vat_id": f"'VAT' || ((CASE WHEN i % 500 = 0 THEN i - 1 ELSE i END) % {vendors})",
        "vendor_id": f"{first_vendor} + ((CASE WHEN i % 500 = 0 THEN i - 1 ELSE i END) % {vendors})",
        "total_gross": "((i * 7919) % 2000000) / 100.0",
        "purchase_order_reference": "CASE WHEN i % 10 = 0 THEN '' ELSE 'PO-' || i END",
        "due_date": "current_date - (i % 120) + 60",
        "status": "CASE WHEN i % 50 = 0 THEN 'exported' WHEN i % 7 = 0 THEN 'needs_review' ELSE 'validated' END",
        "payment_iban": f"CASE WHEN i % 250 = 0 THEN 'DE99' ELSE 'DE' || lpad(((i % {vendors}))::text, 20, '0') END",
        "created_at": "now() - interval '2 days'",
        "updated_at": "now() - interval '2 days'",
    }
    with connection.cursor() as cursor:
        cursor.execute(_copy_template_sql(Invoice, template.pk, overrides, count, skip={"id"}))
        cursor.execute("DELETE FROM invoices_invoice WHERE id = %s", [template.pk])
        cursor.execute("UPDATE invoices_vendor SET updated_at = now() - interval '2 days'")
        cursor.execute("UPDATE monitoring_policyrule SET updated_at = now() - interval '2 days'")
        cursor.execute("VACUUM ANALYZE invoices_invoice")


def timed(call, repeat: int) -> list[float]:
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        durations.append((time.perf_counter() - started) * 1000)
    return durations


def run(args: argparse.Namespace) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from invoices.models import Invoice
    from monitoring.compliance import compliance_scan_run
    from monitoring.tasks import beat_heartbeat

    started = time.monotonic()
    generate_jobs(args.jobs)
    generate_invoices(args.invoices)
    setup_seconds = time.monotonic() - started
    print(f"generated {args.jobs:,} jobs and {args.invoices:,} invoices in {setup_seconds:.0f} s", flush=True)

    user = get_user_model().objects.create_user("bench", password="bench", is_staff=True)
    token = Token.objects.create(user=user)
    api = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    beat_heartbeat()

    def health():
        response = api.get("/api/v1/monitoring/health/")
        if response.status_code != 200:
            raise BenchError(f"health answered {response.status_code}: {response.content[:500]!r}")

    health()  # warm: connection, migration plan, worker count
    health_ms = timed(health, args.requests)

    scraper = Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    def scrape():
        response = scraper.get("/metrics")
        if response.status_code != 200 or b"apintake_queue_length" not in response.content:
            raise BenchError(f"/metrics answered {response.status_code}")

    first_scrape_ms = timed(scrape, 1)[0]  # adds every finished job to the running totals once
    scrape_ms = timed(scrape, args.scrapes)

    full = compliance_scan_run(mode="full")
    changed = list(Invoice.objects.order_by("?").values_list("pk", flat=True)[:100])
    from django.db.models import F
    from django.utils import timezone

    Invoice.objects.filter(pk__in=changed).update(total_gross=F("total_gross") + 20000, updated_at=timezone.now())
    incremental = compliance_scan_run(mode="incremental")

    rows = [
        [
            "GET /api/v1/monitoring/health/ (in-process, token auth)",
            f"{args.requests} requests",
            f"p50 {median(health_ms):.1f} ms, p95 {percentile(health_ms, 0.95):.1f} ms, max {max(health_ms):.1f} ms",
            "p95 < 100 ms",
        ],
        ["GET /metrics, first scrape (totals catch up on every job)", "1", f"{first_scrape_ms:.0f} ms", "-"],
        [
            "GET /metrics, steady state",
            f"{args.scrapes} scrapes",
            f"p50 {median(scrape_ms):.0f} ms, p95 {percentile(scrape_ms, 0.95):.0f} ms",
            "< 500 ms",
        ],
        [
            "full compliance scan (8 rules)",
            f"{full.records_scanned:,} invoices",
            f"{full.duration_seconds:.1f} s, {full.violations_found:,} violations",
            "< 60 s",
        ],
        [
            "incremental scan, 100 changed invoices",
            f"{incremental.records_scanned:,} invoices",
            f"{incremental.duration_seconds:.2f} s, {incremental.violations_opened} opened, "
            f"{incremental.violations_resolved} resolved",
            "< 2 s",
        ],
    ]
    print_table(
        ["measure", "sample", "result", "target"],
        rows,
        title=f"Monitoring with {args.jobs:,} jobs and {args.invoices:,} invoices",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="Health requests to time.")
    parser.add_argument("--scrapes", type=int, default=20, help="/metrics scrapes to time.")
    parser.add_argument("--budget", type=int, default=1800, help="Give up after this many seconds.")
    args = parser.parse_args()
    require_services()
    media = tempfile.mkdtemp(prefix="bench-mon-media-")
    env = bench_environment(
        database=DATABASE,
        redis_db=REDIS_DB,
        extra={
            "METRICS_TOKEN": TOKEN,
            "MEDIA_ROOT": media,
            "VAR_DIR": media,
            "MONITORING_DISK_MIN_FREE_MB": "100",
            "ALLOWED_HOSTS": "testserver",
        },
    )
    create_database(DATABASE)
    flush_redis(REDIS_DB)
    setup_django(env)
    print_header("Monitoring benchmark", " ".join(["bench/monitoring.py", *sys.argv[1:]]))
    worker = None
    try:
        with time_budget(args.budget):
            migrate()
            print(service_versions(), flush=True)
            worker = WorkerProcess(
                env=env, name="bench-mon", queues="maintenance", concurrency=1, loglevel="WARNING"
            ).start()
            run(args)
    finally:
        if worker is not None:
            worker.stop()
        drop_database(DATABASE)
        flush_redis(REDIS_DB)
    return 0


if __name__ == "__main__":
    sys.exit(main())
