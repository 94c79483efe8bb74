"""How much does job tracking cost? No-op tasks drained three ways by one real worker.

Usage (from the repository root; needs PostgreSQL and Redis):

    .venv/bin/python bench/jobs_throughput.py [--n 5000] [--rounds 3] [--concurrency 2]

Variants, on the same Redis, PostgreSQL and worker (prefork, --concurrency,
prefetch 1 and acks late from config/settings.py, all five queues like the
Procfile, log level INFO):

  a  bare      a Celery task with ignore_result=True (bench.noop_bare)
  b  results   a Celery task whose result the django-db backend stores (bench.noop_result)
  c  tracked   a tracked job published by jobs.services.job_enqueue (bench.noop)

What is timed. Each round publishes all N messages of a variant while the worker's
consumer of the "default" queue is cancelled (nothing runs), then adds the
consumer back. The drain time runs from the moment the first message leaves the
Redis queue (polled every millisecond) to the moment the queue and Redis's
"unacked" hash are both empty, i.e. the last message was acknowledged; with
acks late that is after the task ran and its result / Job row was written.
jobs/s = N / drain time. For b and c the span from the first start to the last
finish recorded in the database (TaskResult.date_started / date_done,
Job.started_at / finished_at) is printed as a cross-check.

Also printed: the publish rate of each variant from one process (job_enqueue in
autocommit, i.e. one transaction and one message per job; job_enqueue for N
jobs inside one transaction.atomic(); job_enqueue_many, one INSERT per 1,000
jobs and one broker connection), the drain rate of the jobs enqueued those two
other ways, the database work per task measured from pg_stat_database around
each drain, and the SQL statements of one tracked job counted in-process with
Django's CaptureQueriesContext.

It creates its own database (apintake_bench_throughput) and uses Redis db 9
(broker) and 10 (cache), refusing to start if another client uses them; both
are emptied and the database dropped at the end.
"""

from __future__ import annotations

import argparse
import resource
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BenchError,
    BenchTimeout,
    WorkerProcess,
    bench_environment,
    claim_redis,
    create_database,
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
    wait_until,
)

QUEUE = "default"
VARIANTS = ("a", "b", "c")
VARIANT_NAMES = {
    "a": "a: bare Celery, ignore_result",
    "b": "b: bare Celery + django-db result",
    "c": "c: tracked job (job_enqueue)",
    "c1": "c': tracked, enqueued in one transaction",
    "c2": "c'': tracked, enqueued with job_enqueue_many",
}
TARGETS = {"c/b": 0.8, "c/a": 0.5}


@dataclass
class Drain:
    """One variant's N messages going through the worker."""

    variant: str
    n: int
    publish_seconds: float
    drain_seconds: float = 0.0
    db_span_seconds: float | None = None
    db_work: dict[str, float] = field(default_factory=dict)
    worker_cpu_ms: float = 0.0  # per task, all worker processes
    publish_cpu_ms: float = 0.0  # per message, the publishing process

    @property
    def per_second(self) -> float:
        return self.n / self.drain_seconds

    @property
    def publish_per_second(self) -> float:
        return self.n / self.publish_seconds


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="messages per variant and round (default 5000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of a, b, c; medians are printed (default 3)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes (default 2)")
    parser.add_argument("--loglevel", default="INFO", help="worker log level (default INFO, as in the Procfile)")
    parser.add_argument("--warmup", type=int, default=300, help="untimed messages per variant first (default 300)")
    parser.add_argument("--database", default="apintake_bench_throughput")
    parser.add_argument("--redis-db", type=int, default=9, help="broker db; the cache uses the next one (default 9)")
    parser.add_argument("--budget", type=int, default=1800, help="stop after this many seconds (default 1800)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--variants", default="a,b,c", help="which variants to run (default a,b,c)")
    parser.add_argument("--no-profile", action="store_true", help="skip the in-process SQL profile")
    args = parser.parse_args(argv)
    args.variants = [v for v in VARIANTS if v in args.variants.split(",")]
    return args


# --- broker ------------------------------------------------------------------------------


def broker():
    from jobs.broker import broker_client

    return broker_client()


def waiting_and_unacked() -> tuple[int, int]:
    """Messages waiting in the queue (all priorities) and messages delivered but not acked."""
    from jobs.broker import UNACKED_HASH, priority_queue_names

    with broker().pipeline() as pipe:
        for name in priority_queue_names(QUEUE):
            pipe.llen(name)
        pipe.hlen(UNACKED_HASH)
        *lengths, unacked = pipe.execute()
    return sum(lengths), unacked


def control(worker: WorkerProcess, command: str) -> None:
    from celery import current_app

    method = getattr(current_app.control, command)
    replies = method(QUEUE, destination=[worker.hostname], reply=True, timeout=5)
    if not replies:
        raise BenchError(f"The worker did not answer {command}({QUEUE!r}).")


def pause(worker: WorkerProcess) -> None:
    """Stop the worker taking messages from the queue (what it holds, it finishes)."""
    control(worker, "cancel_consumer")


def resume_and_time_drain(worker: WorkerProcess, n: int, *, timeout: float) -> float:
    """Let the worker consume again; seconds from the first message taken to the last acked."""
    control(worker, "add_consumer")
    deadline = time.monotonic() + timeout
    while True:  # tight poll: the clock starts when the worker takes the first message
        waiting, unacked = waiting_and_unacked()
        if waiting < n or unacked:
            started = time.perf_counter()
            break
        if time.monotonic() > deadline:
            raise BenchError("The worker did not start consuming.")
        time.sleep(0.001)
    while True:
        waiting, unacked = waiting_and_unacked()
        if waiting == 0 and unacked == 0:
            finished = time.perf_counter()
            break
        if time.monotonic() > deadline:
            raise BenchError(f"Not drained within {timeout} s: {waiting} waiting, {unacked} unacked.")
        time.sleep(0.005)
    pause(worker)
    return finished - started


def wait_published(n: int) -> None:
    wait_until(lambda: waiting_and_unacked()[0] >= n, timeout=30, interval=0.05, what=f"{n} messages in the queue")


# --- publishing --------------------------------------------------------------------------


def publish_bare(task, n: int) -> tuple[float, list[str]]:
    started = time.perf_counter()
    ids = [task.apply_async().id for _ in range(n)]
    return time.perf_counter() - started, ids


def enqueue_tracked(n: int, *, how: str = "autocommit") -> tuple[float, list[str]]:
    """n tracked jobs from this process: job_enqueue with each call in its own
    transaction (insert, publish on commit, mark published), job_enqueue n times
    in one transaction, or one job_enqueue_many call."""
    from django.db import transaction

    from jobs.services import job_enqueue, job_enqueue_many

    started = time.perf_counter()
    if how == "bulk":
        ids = [str(job.pk) for job in job_enqueue_many("bench.noop", [{}] * n)]
    elif how == "one_transaction":
        with transaction.atomic():
            ids = [str(job_enqueue("bench.noop").pk) for _ in range(n)]
    else:
        ids = [str(job_enqueue("bench.noop").pk) for _ in range(n)]
    return time.perf_counter() - started, ids


def publish(variant: str, n: int) -> tuple[float, list[str]]:
    from bench.kinds import noop_bare, noop_result

    if variant == "a":
        return publish_bare(noop_bare, n)
    if variant == "b":
        return publish_bare(noop_result, n)
    return enqueue_tracked(n, how={"c1": "one_transaction", "c2": "bulk"}.get(variant, "autocommit"))


# --- what the database saw -------------------------------------------------------------------

PG_COUNTERS = ("xact_commit", "tup_inserted", "tup_updated", "tup_deleted", "tup_fetched", "sessions")


def pg_counters() -> dict[str, int]:
    """This database's cumulative counters; other backends flush theirs within ~1 s of going idle."""
    from django.db import connection

    time.sleep(1.2)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(f"SELECT {', '.join(PG_COUNTERS)} FROM pg_stat_database WHERE datname = current_database()")
        return dict(zip(PG_COUNTERS, cursor.fetchone(), strict=True))


def db_span(variant: str, ids: list[str]) -> float | None:
    """First start to last finish as the database recorded them."""
    from django.db.models import Max, Min
    from django_celery_results.models import TaskResult

    from jobs.models import Job

    if variant == "a":
        return None
    if variant == "b":
        span = TaskResult.objects.filter(task_id__in=ids).aggregate(start=Min("date_started"), end=Max("date_done"))
    else:
        span = Job.objects.filter(pk__in=ids).aggregate(start=Min("started_at"), end=Max("finished_at"))
    if not span["start"] or not span["end"]:
        return None
    return (span["end"] - span["start"]).total_seconds()


def check_all_ran(variant: str, ids: list[str]) -> None:
    """A drain only counts if every task really ran to success."""
    from django_celery_results.models import TaskResult

    from jobs.models import Job, JobStatus

    if variant == "b":
        done = TaskResult.objects.filter(task_id__in=ids, status="SUCCESS").count()
    elif variant in ("c", "c1", "c2"):
        done = Job.objects.filter(pk__in=ids, status=JobStatus.SUCCEEDED).count()
    else:
        return
    if done != len(ids):
        raise BenchError(f"Variant {variant}: only {done} of {len(ids)} tasks succeeded.")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_variant(worker: WorkerProcess, variant: str, n: int, *, measure_db: bool = True) -> Drain:
    cpu_before = own_cpu_seconds()
    publish_seconds, ids = publish(variant, n)
    drain = Drain(variant=variant, n=n, publish_seconds=publish_seconds,
                  publish_cpu_ms=(own_cpu_seconds() - cpu_before) * 1000 / n)
    wait_published(n)
    before = pg_counters() if measure_db else {}
    worker_cpu_before = worker.cpu_seconds()
    drain.drain_seconds = resume_and_time_drain(worker, n, timeout=max(120.0, n / 20))
    drain.worker_cpu_ms = (worker.cpu_seconds() - worker_cpu_before) * 1000 / n
    if measure_db:
        after = pg_counters()
        drain.db_work = {key: (after[key] - before[key]) / n for key in PG_COUNTERS}
    check_all_ran(variant, ids)
    drain.db_span_seconds = db_span(variant, ids)
    return drain


# --- in-process profile of one tracked job ----------------------------------------------------


def profile_tracked_job() -> dict[str, list[str]]:
    """The SQL of one job, phase by phase, as the enqueuing process and a worker run it.

    The worker side runs the task body through Celery's tracer (task.apply):
    tracked tasks ignore results, so that is all a worker writes for a job
    that succeeds (run_tracked_job writes the result row itself).
    """
    from celery import current_app
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from jobs.services import job_enqueue

    task = current_app.tasks["bench.noop"]
    phases: dict[str, list[str]] = {}

    def capture(name: str, call) -> object:
        with CaptureQueriesContext(connection) as queries:
            value = call()
        phases[name] = [query["sql"] for query in queries.captured_queries]
        return value

    job = capture("enqueue: job_enqueue (autocommit, publish on commit)", lambda: job_enqueue("bench.noop"))
    job_id = str(job.pk)
    capture("worker: run_tracked_job (claim, body, finish + result row)",
            lambda: task.apply(args=[job_id], task_id=job_id))
    return phases


def print_profile(phases: dict[str, list[str]]) -> None:
    rows = []
    for phase, statements in phases.items():
        for index, sql in enumerate(statements):
            rows.append([phase if index == 0 else "", index + 1, _short_sql(sql)])
    print_table(["phase", "#", "statement"], rows, title="SQL statements of one tracked job (in-process)")
    totals = [[phase, len(statements)] for phase, statements in phases.items()]
    totals.append(["total", sum(len(s) for s in phases.values())])
    print_table(["phase", "statements"], totals)


def _short_sql(sql: str) -> str:
    sql = " ".join(sql.split())
    for keyword in (" WHERE ", " VALUES ", " SET "):
        head, sep, tail = sql.partition(keyword)
        if sep:
            return (head[:60] + sep + tail[:60]).replace("|", "/") + ("…" if len(tail) > 60 else "")
    return sql[:120].replace("|", "/")


# --- report ------------------------------------------------------------------------------------------


def summarise(results: dict[str, list[Drain]], other_enqueues: list[Drain]) -> dict[str, float]:
    rows = []
    rates: dict[str, float] = {}
    for variant, drains in results.items():
        rate = median([d.per_second for d in drains])
        rates[variant] = rate
        spans = [d.db_span_seconds for d in drains if d.db_span_seconds]
        rows.append([
            VARIANT_NAMES[variant],
            drains[0].n,
            len(drains),
            " / ".join(f"{d.per_second:,.0f}" for d in drains),
            round(rate),
            f"{median([d.drain_seconds for d in drains]):.2f}",
            f"{median(spans):.2f}" if spans else "—",
            f"{median([d.worker_cpu_ms for d in drains]):.2f}",
            round(median([d.publish_per_second for d in drains])),
            f"{median([d.publish_cpu_ms for d in drains]):.2f}",
        ])
    print_table(["variant", "N", "rounds", "jobs/s each round", "jobs/s (median)", "drain s (median)",
                 "DB first start→last finish s", "worker CPU ms/task", "publish/s from 1 process",
                 "publisher CPU ms/msg"], rows,
                title="Drain throughput (first message taken → last message acked)")

    ratio_rows = []
    for name, target in TARGETS.items():
        top, bottom = name.split("/")
        if top not in rates or bottom not in rates:
            continue
        ratio = rates[top] / rates[bottom]
        ratio_rows.append([name, f"{ratio:.2f}", f">= {target}", "met" if ratio >= target else "NOT met"])
    print_table(["ratio", "value", "target", ""], ratio_rows, title="Targets")

    enqueue_rows = []
    if "c" in results:
        enqueue_rows.append(["job_enqueue, one transaction per job (autocommit)",
                             round(median([d.publish_per_second for d in results["c"]])),
                             f"{median([d.publish_cpu_ms for d in results['c']]):.2f}"])
    for drain in other_enqueues:
        enqueue_rows.append([VARIANT_NAMES[drain.variant], round(drain.publish_per_second),
                             f"{drain.publish_cpu_ms:.2f}"])
    for variant in ("a", "b"):
        if variant not in results:
            continue
        enqueue_rows.append([f"(reference) bare apply_async, variant {variant}",
                             round(median([d.publish_per_second for d in results[variant]])),
                             f"{median([d.publish_cpu_ms for d in results[variant]]):.2f}"])
    print_table(["enqueue path (one process)", "jobs/s", "CPU ms/job"], enqueue_rows, title="Enqueue rate")
    for drain in other_enqueues:
        print(f"Drain of the {drain.n} jobs of {VARIANT_NAMES[drain.variant]}: "
              f"{drain.per_second:,.0f} jobs/s, worker CPU {drain.worker_cpu_ms:.2f} ms/task")
    work_rows = []
    for variant, drains in results.items():
        measured = [d for d in drains if d.db_work]
        if not measured:
            continue
        work_rows.append([VARIANT_NAMES[variant]] + [
            f"{median([d.db_work[key] for d in measured]):.2f}" for key in
            ("xact_commit", "tup_inserted", "tup_updated", "tup_fetched", "sessions")])
    print_table(["variant", "commits/task", "rows inserted/task", "rows updated/task", "rows fetched/task",
                 "new DB sessions/task"], work_rows,
                title="Database work per task during the drain (pg_stat_database deltas, worker side)")
    return rates


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    command = "python bench/jobs_throughput.py " + shlex.join(argv)
    env = bench_environment(database=args.database, redis_db=args.redis_db)
    require_services()
    claim_redis(args.redis_db)  # before anything is created: a refusal leaves nothing behind
    create_database(args.database)
    setup_django(env)
    worker: WorkerProcess | None = None
    try:
        with time_budget(args.budget):
            migrate()
            print_header("Jobs throughput: bare Celery vs django-db results vs tracked jobs", command)
            print(f"services: {service_versions()}")
            worker = WorkerProcess(env=env, concurrency=args.concurrency, loglevel=args.loglevel).start()
            print(f"worker: prefork -c {args.concurrency}, all queues, -l {args.loglevel}, prefetch 1, acks late")
            pause(worker)
            for variant in args.variants:  # untimed: children import code and open connections
                run_variant(worker, variant, args.warmup, measure_db=False)
            results: dict[str, list[Drain]] = {variant: [] for variant in args.variants}
            for round_number in range(1, args.rounds + 1):
                for variant in args.variants:
                    drain = run_variant(worker, variant, args.n)
                    results[variant].append(drain)
                    print(f"round {round_number} {VARIANT_NAMES[variant]}: {drain.per_second:,.0f} jobs/s "
                          f"(drain {drain.drain_seconds:.2f} s, published at {drain.publish_per_second:,.0f}/s)",
                          flush=True)
            other_enqueues = [run_variant(worker, v, args.n) for v in ("c1", "c2")] if "c" in args.variants else []
            worker.stop()
            worker = None
            print(f"load average at end: {load_average()}")
            summarise(results, other_enqueues)
            if not args.no_profile:
                print_profile(profile_tracked_job())
    except (BenchError, BenchTimeout) as exc:
        print(f"\nbenchmark stopped: {exc}", file=sys.stderr)
        if worker is not None:
            print(worker.log()[-3000:], file=sys.stderr)
        return 1
    finally:
        if worker is not None:
            worker.stop()
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
