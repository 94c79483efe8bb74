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
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BenchError,
    BenchTimeout,
    ServerProcess,
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
VARIANTS = ("a", "b", "c", "d", "p")
VARIANT_NAMES = {
    "a": "a: Celery, our config, ignore_result",
    "b": "b: Celery, our config + django-db result",
    "c": "c: tracked job (job_enqueue)",
    "d": "d: Celery defaults + acks_late, prefetch 1",
    "p": "p: Procrastinate, one row per job",
    "c1": "c': tracked, enqueued in one transaction",
    "c2": "c'': tracked, enqueued with job_enqueue_many",
}
TARGETS = {"c/p": 1.0, "a/d": 0.85}
OTHER_RATIOS = ("c/b", "c/a", "b/a", "c/d")


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
    parser.add_argument("--variants", default="a,b,c,d,p", help="which variants to run (default a,b,c,d,p)")
    parser.add_argument("--no-profile", action="store_true", help="skip the in-process SQL profile")
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the a/b/c worker only (repeatable), to measure what it costs",
    )
    parser.add_argument(
        "--py-spy",
        default="",
        metavar="VARIANTS",
        help="after the rounds, one more drain of each of these variants (e.g. a,c,d) with "
        "py-spy attached to the worker's processes; prints where their CPU goes",
    )
    args = parser.parse_args(argv)
    args.variants = [v for v in VARIANTS if v in args.variants.split(",")]
    args.py_spy = [v for v in VARIANTS if v in args.py_spy.split(",")]
    return args


# --- lanes: how each variant's messages are held back, released and counted -------------


class CeleryLane:
    """A Celery worker whose consumer of one queue is cancelled while a variant's
    messages are published, then added back; the drain is timed on the broker."""

    def __init__(self, worker: WorkerProcess, *, app, queue: str, lists: list[str], unacked: str):
        self.worker = worker
        self.app = app
        self.queue = queue
        self.lists = lists
        self.unacked = unacked

    def waiting_and_unacked(self) -> tuple[int, int]:
        """Messages waiting in the queue (all priorities) and messages delivered but not acked."""
        with broker().pipeline() as pipe:
            for name in self.lists:
                pipe.llen(name)
            pipe.hlen(self.unacked)
            *lengths, unacked = pipe.execute()
        return sum(lengths), unacked

    def control(self, command: str) -> None:
        method = getattr(self.app.control, command)
        replies = method(self.queue, destination=[self.worker.hostname], reply=True, timeout=5)
        if not replies:
            raise BenchError(f"The worker did not answer {command}({self.queue!r}).")

    def pause(self) -> None:
        """Stop the worker taking messages from the queue (what it holds, it finishes)."""
        self.control("cancel_consumer")

    def wait_published(self, n: int) -> None:
        wait_until(
            lambda: self.waiting_and_unacked()[0] >= n, timeout=30, interval=0.05, what=f"{n} messages in the queue"
        )

    def drain(self, n: int, *, timeout: float, profiler: Profiler | None = None) -> tuple[float, float]:
        """Let the worker consume again; seconds from the first message taken to the
        last acked, and the worker's CPU seconds over the same span."""
        cpu_before = self.worker.cpu_seconds()
        if profiler:
            profiler.follow(lambda: [self.worker.process.pid, *self.worker.pool_pids()])
        self.control("add_consumer")
        deadline = time.monotonic() + timeout
        while True:  # tight poll: the clock starts when the worker takes the first message
            waiting, unacked = self.waiting_and_unacked()
            if waiting < n or unacked:
                started = time.perf_counter()
                break
            if time.monotonic() > deadline:
                raise BenchError("The worker did not start consuming.")
            time.sleep(0.001)
        while True:
            waiting, unacked = self.waiting_and_unacked()
            if waiting == 0 and unacked == 0:
                finished = time.perf_counter()
                break
            if time.monotonic() > deadline:
                raise BenchError(f"Not drained within {timeout} s: {waiting} waiting, {unacked} unacked.")
            time.sleep(0.005)
        cpu = self.worker.cpu_seconds() - cpu_before
        if profiler:
            profiler.stop()
        self.pause()
        return finished - started, cpu


class ProcrastinateLane:
    """Procrastinate's worker is started after a variant's jobs are deferred and
    stopped once they are done; the drain is timed on procrastinate_jobs."""

    def __init__(self, env: dict[str, str], concurrency: int):
        self.env = env
        self.concurrency = concurrency

    def started(self, lo: int) -> bool:
        """Whether the worker took the first job (the lowest id, taken first): a primary key lookup."""
        from django.db import connection

        from bench.procrastinate_app import SCHEMA

        with connection.cursor() as cursor:
            cursor.execute(f"SELECT status <> 'todo' FROM {SCHEMA}.procrastinate_jobs WHERE id = %s", [lo])
            return cursor.fetchone()[0]

    def pending(self, lo: int, hi: int) -> bool:
        """Whether any job of the batch is still to do or running. Cheap on purpose (the
        first entry of Procrastinate's partial index on todo/doing jobs): polling must
        not load the database the worker is using."""
        from django.db import connection

        from bench.procrastinate_app import SCHEMA

        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {SCHEMA}.procrastinate_jobs "
                f"WHERE status IN ('todo', 'doing') "
                f"AND id BETWEEN %s AND %s)",
                [lo, hi],
            )
            return cursor.fetchone()[0]

    def drain(self, ids: list[int], *, timeout: float, profiler: Profiler | None = None) -> tuple[float, float]:
        lo, hi = min(ids), max(ids)
        command = [
            sys.executable,
            "-m",
            "procrastinate",
            "--app",
            "bench.procrastinate_app.app",
            "worker",
            "--concurrency",
            str(self.concurrency),
            "--queues",
            "bench",
            "--delete-jobs",
            "never",
        ]
        worker = ServerProcess(command, env=self.env).start()
        try:
            deadline = time.monotonic() + timeout
            while True:  # the clock starts when the worker takes the first job
                if self.started(lo):
                    started = time.perf_counter()
                    cpu_before = process_cpu_seconds(worker.process.pid)
                    break
                if worker.process.poll() is not None:
                    raise BenchError(f"The Procrastinate worker exited:\n{worker.log()}")
                if time.monotonic() > deadline:
                    raise BenchError("The Procrastinate worker did not start.")
                time.sleep(0.002)
            if profiler:
                profiler.follow(lambda: [worker.process.pid])
            while True:
                if not self.pending(lo, hi):
                    finished = time.perf_counter()
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"Not drained within {timeout} s.")
                time.sleep(0.005)
            cpu = process_cpu_seconds(worker.process.pid) - cpu_before
            if profiler:
                profiler.stop()
        finally:
            worker.stop()
        return finished - started, cpu


def process_cpu_seconds(pid: int) -> float:
    from bench.common import _proc_times

    times = _proc_times(pid)
    return times[0] + times[1]


def broker():
    from jobs.broker import broker_client

    return broker_client()


# --- profiling the worker with py-spy ---------------------------------------------------------


# py-spy sits beside the interpreter in a virtualenv (requirements-bench.txt)
PY_SPY = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}") or "py-spy"


class Profiler:
    """`py-spy record` (sampling, non-blocking) attached to a worker's main process
    and every pool process during one drain, re-attached to the pool processes
    that replace recycled ones; raw (collapsed) stacks are summed at the end.
    `--gil` samples only a thread holding the GIL, i.e. running Python, so time
    spent waiting for a socket or a pipe is not counted."""

    def __init__(self, directory: Path, label: str, rate: int = 200):
        self.directory = directory
        self.label = label
        self.rate = rate
        self.spies: dict[int, subprocess.Popen] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def follow(self, pids) -> None:
        self._stop.clear()
        self._attach(pids())
        self._thread = threading.Thread(target=self._watch, args=(pids,), daemon=True)
        self._thread.start()

    def _watch(self, pids) -> None:
        while not self._stop.wait(0.1):
            self._attach(pids())

    def _attach(self, pids: list[int]) -> None:
        for pid in pids:
            if pid in self.spies:
                continue
            output = self.directory / f"{self.label}-{pid}.txt"
            self.spies[pid] = subprocess.Popen(
                [
                    PY_SPY,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(self.rate),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--gil",
                    "--output",
                    str(output),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        for spy in self.spies.values():
            if spy.poll() is None:
                spy.send_signal(signal.SIGINT)
        for spy in self.spies.values():
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()

    def stacks(self) -> dict[str, int]:
        """Collapsed stack -> samples, over every process followed."""
        counts: dict[str, int] = {}
        for path in self.directory.glob(f"{self.label}-*.txt"):
            for line in path.read_text(errors="replace").splitlines():
                stack, _, number = line.rpartition(" ")
                if stack and number.isdigit():
                    counts[stack] = counts.get(stack, 0) + int(number)
        return counts


# Where a pool process spends its CPU, by what the issue asks about: a sample
# counts for a category when any frame of its stack matches.
PROFILE_CATEGORIES = {
    "logging (records, handlers, formatters)": ("logging/__init__.py",),
    "  of which the task-context filter": ("config/logging.py",),
    "task events (celery.events)": ("celery/events/",),
    "compression (gzip/zlib)": ("kombu/compression.py", "gzip.py", "zlib"),
    "Celery's task_prerun/postrun signals": ("celery/utils/dispatch/signal.py",),
    "Django DB (ORM + psycopg)": ("django/db/", "psycopg/"),
    "Redis client (kombu + redis-py)": ("kombu/transport/redis.py", "redis/"),
    "json (de)serialisation": ("json/", "kombu/serialization.py"),
    "run_tracked_job (jobs/tracked.py)": ("jobs/tracked.py",),
}


def _frame_name(frame: str) -> str:
    """'func (path/to/file.py:12)' -> 'func (file.py)' with the last two path parts."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    short = "/".join(path.split("/")[-2:])
    return f"{name} ({short})" if short else name


def summarise_profile(label: str, stacks: dict[str, int], *, top: int = 15) -> None:
    total = sum(stacks.values())
    if not total:
        print(f"\nprofile {label}: no samples (is py-spy installed and allowed to ptrace?)")
        return
    self_counts: dict[str, int] = {}
    for stack, count in stacks.items():
        leaf = _frame_name(stack.split(";")[-1])
        self_counts[leaf] = self_counts.get(leaf, 0) + count
    rows = [
        [name.replace("|", "/"), f"{count * 100 / total:.1f}"]
        for name, count in sorted(self_counts.items(), key=lambda item: -item[1])[:top]
    ]
    print_table(
        ["function (self time)", "% of samples"],
        rows,
        title=f"py-spy, {label}: top {top} functions by own time ({total} samples)",
    )
    rows = []
    for category, needles in PROFILE_CATEGORIES.items():
        count = sum(c for stack, c in stacks.items() if any(needle in stack for needle in needles))
        rows.append([category, f"{count * 100 / total:.1f}"])
    print_table(["where (inclusive)", "% of samples"], rows, title=f"py-spy, {label}: by category")


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


def defer_procrastinate(n: int) -> tuple[float, list[int]]:
    """n Procrastinate jobs, each deferred in its own transaction (as job_enqueue in autocommit)."""
    from bench.procrastinate_app import app, noop_procrastinate

    started = time.perf_counter()
    with app.open():
        ids = [noop_procrastinate.defer() for _ in range(n)]
    return time.perf_counter() - started, ids


def publish(variant: str, n: int) -> tuple[float, list]:
    from bench.celery_defaults import noop_defaults
    from bench.kinds import noop_bare, noop_result

    if variant == "a":
        return publish_bare(noop_bare, n)
    if variant == "b":
        return publish_bare(noop_result, n)
    if variant == "d":
        return publish_bare(noop_defaults, n)
    if variant == "p":
        return defer_procrastinate(n)
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

    if variant in ("a", "d"):
        return None
    if variant == "p":
        return procrastinate_span(ids)
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
    elif variant == "p":
        done = procrastinate_succeeded(ids)
    else:
        return
    if done != len(ids):
        raise BenchError(f"Variant {variant}: only {done} of {len(ids)} tasks succeeded.")


def procrastinate_span(ids: list[int]) -> float | None:
    from django.db import connection

    from bench.procrastinate_app import SCHEMA

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXTRACT(EPOCH FROM max(at) FILTER (WHERE type = 'succeeded') "
            f"- min(at) FILTER (WHERE type = 'started')) FROM {SCHEMA}.procrastinate_events "
            f"WHERE job_id BETWEEN %s AND %s",
            [min(ids), max(ids)],
        )
        span = cursor.fetchone()[0]
    return float(span) if span is not None else None


def procrastinate_succeeded(ids: list[int]) -> int:
    from django.db import connection

    from bench.procrastinate_app import SCHEMA

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {SCHEMA}.procrastinate_jobs WHERE id BETWEEN %s AND %s AND status = 'succeeded'",
            [min(ids), max(ids)],
        )
        return cursor.fetchone()[0]


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_variant(
    lanes: dict, variant: str, n: int, *, measure_db: bool = True, profiler: Profiler | None = None
) -> Drain:
    lane = lanes[variant]
    cpu_before = own_cpu_seconds()
    publish_seconds, ids = publish(variant, n)
    drain = Drain(
        variant=variant,
        n=n,
        publish_seconds=publish_seconds,
        publish_cpu_ms=(own_cpu_seconds() - cpu_before) * 1000 / n,
    )
    if isinstance(lane, CeleryLane):
        lane.wait_published(n)
    before = pg_counters() if measure_db else {}
    timeout = max(120.0, n / 20)
    if isinstance(lane, ProcrastinateLane):
        drain.drain_seconds, worker_cpu = lane.drain(ids, timeout=timeout, profiler=profiler)
    else:
        drain.drain_seconds, worker_cpu = lane.drain(n, timeout=timeout, profiler=profiler)
    drain.worker_cpu_ms = worker_cpu * 1000 / n
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
    capture(
        "worker: run_tracked_job (claim, body, finish + result row)", lambda: task.apply(args=[job_id], task_id=job_id)
    )
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
        rows.append(
            [
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
            ]
        )
    print_table(
        [
            "variant",
            "N",
            "rounds",
            "jobs/s each round",
            "jobs/s (median)",
            "drain s (median)",
            "DB first start→last finish s",
            "worker CPU ms/task",
            "publish/s from 1 process",
            "publisher CPU ms/msg",
        ],
        rows,
        title="Drain throughput (first message taken → last message acked)",
    )

    ratio_rows = []
    for name in (*TARGETS, *OTHER_RATIOS):
        top, bottom = name.split("/")
        if top not in rates or bottom not in rates:
            continue
        ratio = rates[top] / rates[bottom]
        target = TARGETS.get(name)
        ratio_rows.append(
            [
                name,
                f"{ratio:.2f}",
                f">= {target}" if target else "—",
                ("met" if ratio >= target else "NOT met") if target else "",
            ]
        )
    print_table(["ratio", "value", "target", ""], ratio_rows, title="Targets")

    enqueue_rows = []
    if "c" in results:
        enqueue_rows.append(
            [
                "job_enqueue, one transaction per job (autocommit)",
                round(median([d.publish_per_second for d in results["c"]])),
                f"{median([d.publish_cpu_ms for d in results['c']]):.2f}",
            ]
        )
    for drain in other_enqueues:
        enqueue_rows.append(
            [VARIANT_NAMES[drain.variant], round(drain.publish_per_second), f"{drain.publish_cpu_ms:.2f}"]
        )
    for variant in ("a", "b", "d", "p"):
        if variant not in results:
            continue
        enqueue_rows.append(
            [
                f"(reference) variant {variant}" + (", defer() per job" if variant == "p" else ", bare apply_async"),
                round(median([d.publish_per_second for d in results[variant]])),
                f"{median([d.publish_cpu_ms for d in results[variant]]):.2f}",
            ]
        )
    print_table(["enqueue path (one process)", "jobs/s", "CPU ms/job"], enqueue_rows, title="Enqueue rate")
    for drain in other_enqueues:
        print(
            f"Drain of the {drain.n} jobs of {VARIANT_NAMES[drain.variant]}: "
            f"{drain.per_second:,.0f} jobs/s, worker CPU {drain.worker_cpu_ms:.2f} ms/task"
        )
    work_rows = []
    for variant, drains in results.items():
        measured = [d for d in drains if d.db_work]
        if not measured:
            continue
        work_rows.append(
            [VARIANT_NAMES[variant]]
            + [
                f"{median([d.db_work[key] for d in measured]):.2f}"
                for key in ("xact_commit", "tup_inserted", "tup_updated", "tup_fetched", "sessions")
            ]
        )
    print_table(
        [
            "variant",
            "commits/task",
            "rows inserted/task",
            "rows updated/task",
            "rows fetched/task",
            "new DB sessions/task",
        ],
        work_rows,
        title="Database work per task during the drain (pg_stat_database deltas, worker side)",
    )
    return rates


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    command = "python bench/jobs_throughput.py " + shlex.join(argv)
    env = bench_environment(database=args.database, redis_db=args.redis_db)
    peer_env = {"BENCH_DEFAULTS_BROKER_URL": env["REDIS_URL"], "BENCH_PROCRASTINATE_DSN": env["DATABASE_URL"]}
    env.update(peer_env)
    require_services()
    claim_redis(args.redis_db)  # before anything is created: a refusal leaves nothing behind
    create_database(args.database)
    os.environ.update(peer_env)  # before bench.celery_defaults / bench.procrastinate_app are imported
    setup_django(env)
    workers: list[WorkerProcess] = []
    try:
        with time_budget(args.budget):
            migrate()
            print_header("Jobs throughput: our Celery config, tracked jobs, Celery defaults, Procrastinate", command)
            print(f"services: {service_versions()}")
            lanes = start_lanes(args, env, workers)
            for variant in args.variants:  # untimed: children import code and open connections
                run_variant(lanes, variant, args.warmup, measure_db=False)
            results: dict[str, list[Drain]] = {variant: [] for variant in args.variants}
            for round_number in range(1, args.rounds + 1):
                for variant in args.variants:
                    drain = run_variant(lanes, variant, args.n)
                    results[variant].append(drain)
                    print(
                        f"round {round_number} {VARIANT_NAMES[variant]}: {drain.per_second:,.0f} jobs/s "
                        f"(drain {drain.drain_seconds:.2f} s, worker CPU {drain.worker_cpu_ms:.2f} ms/task, "
                        f"published at {drain.publish_per_second:,.0f}/s)",
                        flush=True,
                    )
            other_enqueues = [run_variant(lanes, v, args.n) for v in ("c1", "c2")] if "c" in args.variants else []
            profiles = {}
            if args.py_spy:
                with tempfile.TemporaryDirectory(prefix="bench-py-spy-") as directory:
                    for variant in args.py_spy:
                        profiler = Profiler(Path(directory), variant)
                        drain = run_variant(lanes, variant, args.n, measure_db=False, profiler=profiler)
                        print(
                            f"profiled drain {VARIANT_NAMES[variant]}: {drain.per_second:,.0f} jobs/s "
                            f"(py-spy attached, not in the table)",
                            flush=True,
                        )
                        profiles[variant] = profiler.stacks()
            for worker in workers:
                worker.stop()
            workers.clear()
            print(f"load average at end: {load_average()}")
            summarise(results, other_enqueues)
            for variant, stacks in profiles.items():
                summarise_profile(VARIANT_NAMES[variant], stacks)
            if not args.no_profile and "c" in args.variants:
                print_profile(profile_tracked_job())
    except (BenchError, BenchTimeout) as exc:
        print(f"\nbenchmark stopped: {exc}", file=sys.stderr)
        for worker in workers:
            print(worker.log()[-3000:], file=sys.stderr)
        return 1
    finally:
        for worker in workers:
            worker.stop()
        flush_redis(args.redis_db)
        if not args.keep_db:
            drop_database(args.database)
    return 0


def start_lanes(args: argparse.Namespace, env: dict[str, str], workers: list[WorkerProcess]) -> dict:
    """Start the workers the chosen variants need, each with its consumer paused."""
    from celery import current_app

    from jobs.broker import UNACKED_HASH, priority_queue_names

    lanes: dict = {}
    if {"a", "b", "c"} & set(args.variants):
        extra = dict(item.split("=", 1) for item in args.worker_env)
        worker = WorkerProcess(env={**env, **extra}, concurrency=args.concurrency, loglevel=args.loglevel)
        workers.append(worker.start())
        print(
            f"worker a/b/c: our config, prefork -c {args.concurrency}, all queues, -l {args.loglevel}"
            + "".join(f", {name}={value}" for name, value in extra.items())
        )
        lane = CeleryLane(worker, app=current_app, queue=QUEUE, lists=priority_queue_names(QUEUE), unacked=UNACKED_HASH)
        lane.pause()
        lanes.update(dict.fromkeys(("a", "b", "c", "c1", "c2"), lane))
    if "d" in args.variants:
        from bench import celery_defaults

        worker = WorkerProcess(
            env=env,
            name="bench-defaults",
            queues=celery_defaults.QUEUE,
            concurrency=args.concurrency,
            loglevel="WARNING",
            app="bench.celery_defaults",
            control=celery_defaults.app,
            unset=("DJANGO_SETTINGS_MODULE",),
        )
        workers.append(worker.start())
        print(
            f"worker d: Celery defaults + acks_late + prefetch 1, no Django, prefork -c {args.concurrency}, -l WARNING"
        )
        lane = CeleryLane(
            worker,
            app=celery_defaults.app,
            queue=celery_defaults.QUEUE,
            lists=celery_defaults.queue_names(),
            unacked=celery_defaults.UNACKED_HASH,
        )
        lane.pause()
        lanes["d"] = lane
    if "p" in args.variants:
        from bench.procrastinate_app import create_schema

        create_schema()
        lanes["p"] = ProcrastinateLane(env, args.concurrency)
        print(
            f"worker p: procrastinate worker --concurrency {args.concurrency} (one process, asyncio), "
            f"started for each drain once its jobs are deferred"
        )
    return lanes


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as error:  # refused before anything was created (services, Redis dbs in use)
        print(f"benchmark not started: {error}", file=sys.stderr)
        sys.exit(2)
