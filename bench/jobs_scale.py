"""The job screens and the retention job with a million Job rows in PostgreSQL.

Usage (from the repository root; needs PostgreSQL and Redis):

    .venv/bin/python bench/jobs_scale.py [--rows 1000000] [--runs 5] [--skip-prune]

1. Fills its own database (apintake_bench_scale) with --rows Job rows by
   `INSERT ... SELECT generate_series` in chunks of 100,000, spread like a busy
   installation: created uniformly over the last 30 days; kinds 70 %
   invoices.process_invoice, 15 % emailsync.sync_mailbox, 8 %
   monitoring.compliance_scan, 4 % invoices.export_invoices, 2.5 % jobs.prune,
   0.5 % jobs.sleep; statuses 92 % succeeded, 5 % failed (80 % of those dead
   letters, with a ~1 KB traceback), 3 % cancelled, and queued / running /
   retrying only among jobs created in the last 10 minutes; 2 % owned by the
   non-staff user `clerk-01`, 28 % of the invoice jobs by 29 more clerks, the
   rest (about 77 %) without owner (scheduled or system jobs). Every finished
   job also gets its
   JobExecution row and its django-celery-results TaskResult row, as a real
   worker leaves them (--no-related skips both). Then VACUUM ANALYZE, as
   autovacuum would do on a live system.
2. Times each list (median of --runs runs after one warm-up run), in this
   process through Django's test Client with DEBUG=0: the admin job list
   logged in as a superuser, unfiltered and filtered by status, kind and dead
   letter, and the API list /api/v1/jobs/ with a token as a staff user
   (unfiltered and filtered) and as the non-staff owner clerk-01. For each it
   prints the number of SQL statements and the slowest one; when a list is
   over the 300 ms target its slowest statement is shown with EXPLAIN ANALYZE.
3. Runs the retention job, jobs.retention.jobs_prune (default ages: 14 days
   for succeeded / cancelled, 90 days for failed; batch size from settings),
   in a fresh child process, and prints its wall time, what it deleted and
   the child's peak RSS (resource.getrusage(RUSAGE_SELF).ru_maxrss) next to
   its RSS before the prune started.

Redis db 9 (broker, unused) and 10 (cache), the same as bench/jobs_throughput.py: it
refuses to start while another client uses them. The database is dropped at the end
unless --keep-db; --reuse-db skips step 1 when a kept database is there.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    BenchError,
    BenchTimeout,
    bench_environment,
    claim_redis,
    create_database,
    database_exists,
    drop_database,
    flush_redis,
    load_average,
    median,
    migrate,
    print_header,
    print_table,
    require_services,
    service_versions,
    setup_django,
    time_budget,
)

TARGET_MS = 300.0
CHUNK = 100_000
CLERKS = 30
SPREAD_DAYS = 30

# The rows, one chunk per statement; every distribution is described in the
# module docstring. The column list is built from the model's current fields
# (build_insert), so a field added later gets its default instead of breaking
# the benchmark.
JOB_ROWS = """
WITH base AS (
    SELECT g, random() AS r_kind, random() AS r_status, random() AS r_owner, random() AS r_extra,
           now() - random() * make_interval(days => %(days)s) AS created
    FROM generate_series(%(start)s, %(stop)s) AS g
), shaped AS (
    SELECT g, created, r_status, r_owner, r_extra,
        CASE WHEN r_kind < 0.70 THEN 'invoices.process_invoice'
             WHEN r_kind < 0.85 THEN 'emailsync.sync_mailbox'
             WHEN r_kind < 0.93 THEN 'monitoring.compliance_scan'
             WHEN r_kind < 0.97 THEN 'invoices.export_invoices'
             WHEN r_kind < 0.995 THEN 'jobs.prune'
             ELSE 'jobs.sleep' END AS kind,
        CASE WHEN created > now() - interval '10 minutes' AND r_status < 0.5
                  THEN (ARRAY['queued', 'running', 'retrying'])[1 + floor(r_status * 6)::int]
             WHEN r_status < 0.92 THEN 'succeeded'
             WHEN r_status < 0.97 THEN 'failed'
             ELSE 'cancelled' END AS status
    FROM base
), timed AS (
    SELECT *,
        created + r_extra * interval '5 seconds' AS started,
        -- the run time takes the next digits of r_status: independent of the status itself
        created + r_extra * interval '5 seconds'
            + (r_status * 1000 - floor(r_status * 1000)) * interval '40 seconds' AS ended,
        CASE WHEN r_owner < 0.02 THEN %(target_owner)s
             WHEN r_owner < 0.30 AND kind LIKE 'invoices.%%'
                  THEN (%(owners)s::int[])[1 + floor(r_extra * %(owner_count)s)::int]
             ELSE NULL END AS owner_id
    FROM shaped
)
"""

JOB_COLUMNS = {
    "id": "gen_random_uuid()",
    "kind": "kind",
    "queue": """CASE WHEN kind = 'invoices.export_invoices' THEN 'exports'
         WHEN kind LIKE 'invoices.%%' THEN 'invoices'
         WHEN kind LIKE 'emailsync.%%' THEN 'email'
         WHEN kind IN ('monitoring.compliance_scan', 'jobs.prune') THEN 'maintenance'
         ELSE 'default' END""",
    "priority": "CASE WHEN owner_id IS NULL THEN 7 ELSE 3 END",
    "status": "status",
    "params": """CASE WHEN kind LIKE 'invoices.process%%' THEN jsonb_build_object('invoice_id', g)
         WHEN kind LIKE 'emailsync.%%' THEN jsonb_build_object('mailbox_id', g %% 20, 'months', 3)
         ELSE '{}'::jsonb END""",
    "source": """CASE WHEN owner_id IS NOT NULL THEN (CASE WHEN r_extra < 0.7 THEN 'api' ELSE 'admin' END)
         WHEN kind IN ('invoices.process_invoice', 'invoices.export_invoices') THEN 'system'
         ELSE 'schedule' END""",
    "owner_id": "owner_id",
    "subject_id": "CASE WHEN kind LIKE 'invoices.process%%' THEN g::text ELSE '' END",
    "subject_label": """CASE WHEN kind LIKE 'invoices.process%%' THEN 'Invoice ' || g
         WHEN kind LIKE 'emailsync.%%' THEN 'ap-' || (g %% 20) || '@example.com' ELSE '' END""",
    "unique_key": "CASE WHEN kind LIKE 'emailsync.%%' THEN 'mailbox:' || g END",
    "schedule_name": "CASE WHEN owner_id IS NULL AND kind NOT LIKE 'invoices.%%' THEN kind ELSE '' END",
    "progress_done": "CASE WHEN status = 'succeeded' AND kind LIKE 'emailsync.%%' THEN 120 ELSE 0 END",
    "progress_total": "CASE WHEN kind LIKE 'emailsync.%%' THEN 120 ELSE 0 END",
    "progress_message": "CASE WHEN kind LIKE 'emailsync.%%' THEN 'INBOX: 120 of 120 messages' ELSE '' END",
    "attempts": "CASE WHEN status = 'queued' THEN 0 WHEN status = 'failed' THEN 3 ELSE 1 END",
    "max_attempts": "3",
    "result": "CASE WHEN status = 'succeeded' THEN jsonb_build_object('status', 'validated', 'issues', 0) END",
    "error": """CASE WHEN status = 'failed' THEN 'ValueError: The invoice total is not a number.'
         WHEN status = 'cancelled' THEN 'Cancelled by operator' ELSE '' END""",
    "traceback": "CASE WHEN status = 'failed' THEN repeat('Traceback line with a path and a line number;', 24)"
    " ELSE '' END",
    "created_at": "created",
    "published_at": "created",
    "started_at": "CASE WHEN status <> 'queued' THEN started END",
    "finished_at": "CASE WHEN status IN ('succeeded', 'failed', 'cancelled') THEN ended END",
    "heartbeat_at": "CASE WHEN status <> 'queued' THEN ended END",
    "next_attempt_at": "CASE WHEN status = 'retrying' THEN now() + interval '30 seconds' END",
    "worker": "CASE WHEN status = 'queued' THEN '' ELSE 'all@worker-' || (g %% 3) END",
    "worker_pid": "CASE WHEN status = 'queued' THEN NULL ELSE 1000 + g %% 4 END",
    "claim_token": "CASE WHEN status = 'running' THEN gen_random_uuid() END",
    "is_dead_letter": "status = 'failed' AND r_extra < 0.8",
}

EXECUTION_COLUMNS = {
    "job_id": "id",
    "attempt": "attempts",
    "worker": "worker",
    "worker_pid": "worker_pid",
    "started_at": "started_at",
    "finished_at": "finished_at",
    "outcome": "CASE status WHEN 'succeeded' THEN 'succeeded' WHEN 'failed' THEN 'failed' ELSE 'cancelled' END",
    "error": "error",
}

TASK_RESULT_COLUMNS = {
    "task_id": "id::text",
    "status": "CASE status WHEN 'succeeded' THEN 'SUCCESS' WHEN 'failed' THEN 'FAILURE' ELSE 'REVOKED' END",
    "content_type": "'application/json'",
    "content_encoding": "'utf-8'",
    "result": "COALESCE(result::text, 'null')",
    "date_done": "finished_at",
    "traceback": "NULLIF(traceback, '')",
    "meta": "'{\"children\": []}'",
    "task_args": "'[\"' || id || '\"]'",
    "task_kwargs": "'{}'",
    "task_name": "kind",
    "worker": "worker",
    "date_created": "created_at",
    "periodic_task_name": "NULLIF(schedule_name, '')",
    "date_started": "started_at",
}


def build_insert(model, expressions: dict[str, str], source_sql: str, params: dict) -> tuple[str, dict]:
    """INSERT INTO <the model's table> (every concrete column) SELECT ... <source_sql>.

    Columns without an expression get the field's default (NULL when it has
    none and may be null), so the statement follows the model as it changes.
    """
    from django.db import connection

    columns, values, params = [], [], dict(params)
    for field in model._meta.concrete_fields:
        columns.append(connection.ops.quote_name(field.column))
        if field.column in expressions:
            values.append(expressions[field.column])
        elif field.primary_key and field.get_internal_type() in ("AutoField", "BigAutoField"):
            columns.pop()  # the database numbers it
        elif field.has_default() or not field.null:
            name = f"default_{field.column}"
            params[name] = field.get_db_prep_save(field.get_default(), connection)
            values.append(f"%({name})s")
        else:
            values.append("NULL")
    table = connection.ops.quote_name(model._meta.db_table)
    select = ",\n    ".join(values)
    return f"INSERT INTO {table} ({', '.join(columns)})\nSELECT\n    {select}\n{source_sql}", params


def subject_type_expression(invoice_label: str = "invoices.invoice") -> tuple[str, dict]:
    """Invoice jobs are about an invoice: a content type id or a model label,
    whichever the Job model's subject_type field holds."""
    from django.contrib.contenttypes.models import ContentType

    from jobs.models import Job

    if Job._meta.get_field("subject_type").is_relation:
        app_label, model = invoice_label.split(".")
        content_type = ContentType.objects.filter(app_label=app_label, model=model).first()
        return "CASE WHEN kind LIKE 'invoices.process%%' THEN %(subject_type)s::int END", {
            "subject_type": content_type.pk if content_type else None
        }
    return "CASE WHEN kind LIKE 'invoices.process%%' THEN %(subject_type)s ELSE '' END", {"subject_type": invoice_label}


@dataclass
class Timing:
    """One list page: its timings and what SQL it ran."""

    name: str
    url: str
    runs_ms: list[float]
    statements: int
    slowest_ms: float
    slowest_sql: str
    rows: int | None

    @property
    def median_ms(self) -> float:
        return median(self.runs_ms)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="Job rows (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per list after a warm-up (default 5)")
    parser.add_argument("--no-related", action="store_true", help="no JobExecution / TaskResult rows")
    parser.add_argument("--skip-prune", action="store_true", help="do not run the retention job")
    parser.add_argument("--database", default="apintake_bench_scale")
    parser.add_argument("--redis-db", type=int, default=9, help="broker db; the cache uses the next one (default 9)")
    parser.add_argument("--budget", type=int, default=3000, help="stop after this many seconds (default 3000)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--reuse-db", action="store_true", help="use a kept database as it is (skips the fill)")
    parser.add_argument("--prune-child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- filling the table ------------------------------------------------------------------------


@dataclass
class People:
    superuser: object
    staff: object
    owner: object


def create_people() -> People:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    users = get_user_model().objects
    superuser = users.create_superuser(username="bench-admin", email="admin@example.com", password=None)
    staff = users.create_user(username="bench-staff", password=None, is_staff=True)
    staff.groups.add(Group.objects.get(name="operator"))
    clerks = [users.create_user(username=f"clerk-{i:02d}", password=None) for i in range(1, CLERKS + 1)]
    clerk_group = Group.objects.get(name="ap_clerk")
    for clerk in clerks:
        clerk.groups.add(clerk_group)
    return People(superuser=superuser, staff=staff, owner=clerks[0])


def people() -> People:
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    return People(
        superuser=users.get(username="bench-admin"),
        staff=users.get(username="bench-staff"),
        owner=users.get(username="clerk-01"),
    )


def fill(rows: int, *, related: bool, people_: People) -> list[list[object]]:
    """Insert the rows; returns (step, rows, seconds) for the table."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django_celery_results.models import TaskResult

    from jobs.models import Job, JobExecution

    other_clerks = list(
        get_user_model()
        .objects.filter(username__startswith="clerk-")
        .exclude(pk=people_.owner.pk)
        .values_list("pk", flat=True)
    )
    subject_sql, subject_params = subject_type_expression()
    subject_column = Job._meta.get_field("subject_type").column
    jobs_sql, jobs_params = build_insert(
        Job,
        {**JOB_COLUMNS, subject_column: subject_sql},
        "FROM timed",
        {
            "days": SPREAD_DAYS,
            "target_owner": people_.owner.pk,
            "owners": other_clerks,
            "owner_count": len(other_clerks),
            **subject_params,
        },
    )
    steps = []
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '256MB'")
        # Bulk-load practice: drop the secondary indexes, load, build them once.
        indexes = secondary_indexes(cursor, Job._meta.db_table)
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
        for start in range(1, rows + 1, CHUNK):
            stop = min(rows, start + CHUNK - 1)
            cursor.execute(JOB_ROWS + jobs_sql, {**jobs_params, "start": start, "stop": stop})
            print(f"  inserted jobs {stop:,} / {rows:,} ({time.perf_counter() - started:.0f} s)", flush=True)
        steps.append(["jobs_job (INSERT ... SELECT generate_series)", rows, time.perf_counter() - started])
        began = time.perf_counter()
        for _, definition in indexes:
            cursor.execute(definition)
        steps.append([f"jobs_job: build its {len(indexes)} secondary indexes", "", time.perf_counter() - began])
        if related:
            finished = "FROM jobs_job WHERE finished_at IS NOT NULL AND started_at IS NOT NULL"
            for model, expressions in ((JobExecution, EXECUTION_COLUMNS), (TaskResult, TASK_RESULT_COLUMNS)):
                began = time.perf_counter()
                cursor.execute(*build_insert(model, expressions, finished, {}))
                steps.append([model._meta.db_table, cursor.rowcount, time.perf_counter() - began])
                print(f"  inserted {cursor.rowcount:,} {model._meta.db_table} rows", flush=True)
        began = time.perf_counter()
        cursor.execute("VACUUM ANALYZE")
        steps.append(["VACUUM ANALYZE", "", time.perf_counter() - began])
    return steps


def secondary_indexes(cursor, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the table's indexes that back no constraint."""
    cursor.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.schemaname = current_schema() AND i.tablename = %s
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)""",
        [table],
    )
    return cursor.fetchall()


PRUNABLE = """(status IN ('succeeded', 'cancelled') AND finished_at < now() - interval '14 days')
               OR (status = 'failed' AND finished_at < now() - interval '90 days')"""


def prunable_count() -> int:
    """Jobs past the default retention ages (14 days, 90 for failures), counted before the prune."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM jobs_job WHERE {PRUNABLE}")
        return cursor.fetchone()[0]


def describe_data() -> list[list[object]]:
    """What is in the table, counted (not taken from the generator's intentions)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT count(*),
                   count(*) FILTER (WHERE {PRUNABLE}),
                   count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE is_dead_letter),
                   count(*) FILTER (WHERE status IN ('queued', 'running', 'retrying')),
                   count(*) FILTER (WHERE owner_id IS NULL),
                   pg_size_pretty(pg_total_relation_size('jobs_job'))
            FROM jobs_job""")
        total, prunable, failed, dead, active, ownerless, size = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM jobs_jobexecution")
        executions = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM django_celery_results_taskresult")
        results = cursor.fetchone()[0]
    return [
        ["jobs", total],
        ["  past retention (14 d succeeded/cancelled, 90 d failed)", prunable],
        ["  failed / dead letters", f"{failed:,} / {dead:,}"],
        ["  active", active],
        ["  without owner", ownerless],
        ["  jobs_job with indexes", size],
        ["job executions", executions],
        ["task results", results],
    ]


# --- timing the lists ----------------------------------------------------------------------------


def list_pages(people_: People) -> list[tuple[str, str, object, str]]:
    """(name, url, user, how) for every list the benchmark times."""
    admin = "/admin/jobs/job/"
    api = "/api/v1/jobs/"
    su, staff, owner = people_.superuser, people_.staff, people_.owner
    return [
        ("admin, unfiltered", admin, su, "session"),
        ("admin, status = failed", admin + "?status__exact=failed", su, "session"),
        ("admin, status = succeeded (92 %)", admin + "?status__exact=succeeded", su, "session"),
        ("admin, kind = emailsync.sync_mailbox (15 %)", admin + "?kind=emailsync.sync_mailbox", su, "session"),
        ("admin, kind = invoices.process_invoice (70 %)", admin + "?kind=invoices.process_invoice", su, "session"),
        ("admin, dead letters", admin + "?dead_letter=yes", su, "session"),
        ("API staff, unfiltered", api, staff, "token"),
        ("API staff, status = failed", api + "?status=failed", staff, "token"),
        ("API staff, status = succeeded", api + "?status=succeeded", staff, "token"),
        ("API staff, kind = emailsync.sync_mailbox", api + "?kind=emailsync.sync_mailbox", staff, "token"),
        ("API staff, dead_letter = true", api + "?dead_letter=true", staff, "token"),
        ("API staff, active = true", api + "?active=true", staff, "token"),
        ("API owner clerk-01 (non-staff), unfiltered", api, owner, "token"),
        ("API owner clerk-01 (non-staff), status = failed", api + "?status=failed", owner, "token"),
    ]


def client_for(user, how: str):
    from django.test import Client
    from rest_framework.authtoken.models import Token

    if how == "session":
        client = Client()
        client.force_login(user)
        return client
    token, _ = Token.objects.get_or_create(user=user)
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_ACCEPT="application/json")


def time_page(name: str, url: str, client, runs: int) -> Timing:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url)  # warm-up
    if response.status_code != 200:
        raise BenchError(f"{name}: GET {url} answered {response.status_code}: {response.content[:300]!r}")
    rows = len(response.json()["results"]) if url.startswith("/api/") else None
    runs_ms = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        runs_ms.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise BenchError(f"{name}: GET {url} answered {response.status_code}")
    with CaptureQueriesContext(connection) as queries:  # one more, untimed, to see the SQL
        client.get(url)
    slowest = max(queries.captured_queries, key=lambda q: float(q["time"]), default={"time": 0, "sql": ""})
    return Timing(
        name=name,
        url=url,
        runs_ms=runs_ms,
        statements=len(queries.captured_queries),
        slowest_ms=float(slowest["time"]) * 1000,
        slowest_sql=slowest["sql"],
        rows=rows,
    )


def explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def time_lists(people_: People, runs: int) -> list[Timing]:
    timings = []
    for name, url, user, how in list_pages(people_):
        timing = time_page(name, url, client_for(user, how), runs)
        timings.append(timing)
        print(f"  {name}: median {timing.median_ms:.0f} ms", flush=True)
    rows = [
        [
            t.name,
            t.url,
            f"{t.median_ms:.0f}",
            f"{min(t.runs_ms):.0f}-{max(t.runs_ms):.0f}",
            t.statements,
            f"{t.slowest_ms:.0f}",
            "met" if t.median_ms < TARGET_MS else "NOT met",
        ]
        for t in timings
    ]
    print_table(
        ["list", "URL", "median ms", "min-max ms", "SQL statements", "slowest SQL ms", f"< {TARGET_MS:.0f} ms"],
        rows,
        title=f"Lists with the full table (median of {runs} runs)",
    )
    for timing in timings:
        if timing.median_ms >= TARGET_MS or timing.slowest_ms >= TARGET_MS / 2:
            print(f"\n{timing.name}: slowest statement ({timing.slowest_ms:.0f} ms):\n{timing.slowest_sql}\n")
            print(explain(timing.slowest_sql))
    return timings


# --- retention ------------------------------------------------------------------------------------


def prune_in_child(args: argparse.Namespace, env: dict[str, str], timeout: float) -> dict:
    """Run jobs_prune in a fresh process, so its peak RSS is the prune's own."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--prune-child",
        "--database",
        args.database,
        "--redis-db",
        str(args.redis_db),
    ]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if completed.returncode != 0:
        raise BenchError(f"The prune process failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def prune_child_main() -> None:
    """In the child: settings are up; prune and report as one JSON line."""
    from django.db import connection

    from jobs.retention import jobs_prune

    connection.ensure_connection()
    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    batches = []
    started = time.perf_counter()

    def progress(done, total, message):
        batches.append(time.perf_counter() - started)

    report = jobs_prune(progress=progress)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "report": report.as_dict(),
                "batches": len(batches),
                "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "rss_before_kb": rss_before_kb,
                "first_batch_s": batches[0] if batches else None,
                "last_batch_s": (batches[-1] - batches[-2]) if len(batches) > 1 else None,
            }
        )
    )


def report_prune(result: dict, *, expected: int, after: list[list[object]]) -> None:
    report = result["report"]
    deleted = report["jobs_deleted"] + report["results_deleted"]
    rows = [
        ["wall time", f"{result['seconds']:.1f} s"],
        ["jobs past their retention age before the prune", f"{expected:,}"],
        ["jobs deleted", f"{report['jobs_deleted']:,}"],
        ["task results deleted (untracked, after the jobs' own)", f"{report['results_deleted']:,}"],
        ["jobs deleted per second", f"{report['jobs_deleted'] / result['seconds']:,.0f}"],
        ["batches (progress calls)", result["batches"]],
        ["first batch / last batch", f"{result['first_batch_s']:.2f} s / {result['last_batch_s'] or 0:.2f} s"],
        ["peak RSS of the prune process", f"{result['peak_rss_kb'] / 1024:.0f} MB"],
        ["RSS before the prune (Django loaded, connected)", f"{result['rss_before_kb'] / 1024:.0f} MB"],
    ]
    print_table(["retention: jobs_prune()", "value"], rows, title="Retention (fresh process)")
    print_table(["table after the prune", "value"], after)
    if not deleted:
        raise BenchError("The prune deleted nothing: the data set has no rows past the retention age.")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    env = bench_environment(
        database=args.database, redis_db=args.redis_db, extra={"ALLOWED_HOSTS": "testserver,127.0.0.1"}
    )
    if args.prune_child:
        setup_django(env)
        prune_child_main()
        return 0
    command = "python bench/jobs_scale.py " + shlex.join(argv)
    require_services()
    claim_redis(args.redis_db)  # before anything is created: a refusal leaves nothing behind
    reuse = args.reuse_db and database_exists(args.database)
    if not reuse:
        create_database(args.database)
    setup_django(env)
    try:
        with time_budget(args.budget):
            print_header("Jobs at scale: lists and retention with a million jobs", command)
            print(f"services: {service_versions()}")
            if reuse:
                people_ = people()
                print("reusing the kept database as it is")
            else:
                migrate()
                people_ = create_people()
                steps = fill(args.rows, related=not args.no_related, people_=people_)
                print_table(["fill step", "rows", "seconds"], steps, title="Filling the database")
            print_table(["data", "count"], describe_data(), title="The data set")
            time_lists(people_, args.runs)
            if not args.skip_prune:
                expected = prunable_count()
                print("\nrunning jobs_prune in a child process ...", flush=True)
                result = prune_in_child(args, {**os.environ, **env}, timeout=args.budget)
                report_prune(result, expected=expected, after=describe_data())
            print(f"\nload average at end: {load_average()}")
    except (BenchError, BenchTimeout, subprocess.TimeoutExpired) as exc:
        print(f"\nbenchmark stopped: {exc}", file=sys.stderr)
        return 1
    finally:
        flush_redis(args.redis_db)
        if not args.keep_db:
            drop_database(args.database)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as error:  # refused before anything was created (services, Redis dbs in use)
        print(f"benchmark not started: {error}", file=sys.stderr)
        sys.exit(2)
