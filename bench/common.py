"""What every jobs benchmark needs: its own database and Redis databases, real
worker processes, a time limit, clean-up, and a table of figures.

A benchmark never touches the databases the tests or a developer use: it
creates `apintake_bench_*` in PostgreSQL (dropped at the end) and uses a Redis
database number of its own for the broker, plus the next one for the cache
(config/settings.py derives the cache as broker db + 1).
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
REDIS_SERVER = os.environ.get("BENCH_REDIS_SERVER", "redis://127.0.0.1:6379")
# The test suite, a developer's stack and other helpers use these: never flush them.
RESERVED_REDIS_DBS = frozenset({0, 1, 14, 15})
ALL_QUEUES = "default,invoices,email,exports,maintenance"


class BenchTimeout(Exception):
    """The benchmark ran past its time budget (--budget)."""


class BenchError(Exception):
    """A benchmark cannot go on (a service is missing, a worker did not start)."""


# --- environment ---------------------------------------------------------------


def bench_environment(*, database: str, redis_db: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment variables (read by config/settings.py) that point a process
    at the benchmark's own database and Redis databases."""
    check_redis_db(redis_db)
    env = {
        "DATABASE_URL": f"{PG_SERVER}/{database}",
        "REDIS_URL": f"{REDIS_SERVER}/{redis_db}",
        "SECRET_KEY": "bench-only-secret-key-not-for-production",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "JOB_EXTRA_MODULES": "bench.kinds",
        "CACHE_KEY_PREFIX": "apintake-bench",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra or {})
    return env


def check_redis_db(redis_db: int) -> None:
    """Refuse Redis databases that belong to someone else (broker db and its cache db)."""
    if not 0 <= redis_db <= 14 or {redis_db, redis_db + 1} & RESERVED_REDIS_DBS:
        raise BenchError(
            f"Redis db {redis_db} (cache {redis_db + 1}) is not free for benchmarks; "
            f"{sorted(RESERVED_REDIS_DBS)} are reserved. Pick another with --redis-db."
        )


def setup_django(env: dict[str, str]) -> None:
    """Point this process at the benchmark's databases and start Django."""
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()


# --- PostgreSQL and Redis -------------------------------------------------------------


def _admin_connection():
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5)


def database_exists(name: str) -> bool:
    with _admin_connection() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def create_database(name: str) -> None:
    """Create an empty database (dropping a leftover of an earlier, interrupted run)."""
    _require_bench_name(name)
    from psycopg import sql

    with _admin_connection() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(name: str) -> None:
    _require_bench_name(name)
    from psycopg import sql

    with contextlib.suppress(Exception):
        from django.db import connections

        connections.close_all()
    with _admin_connection() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _require_bench_name(name: str) -> None:
    # A typo in --database must never drop a real database.
    if not name.startswith("apintake_bench"):
        raise BenchError(f"Benchmark databases must be named apintake_bench*, not {name!r}.")


def migrate() -> None:
    """Apply every migration to the benchmark database (in this process)."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def claim_redis(redis_db: int) -> None:
    """Refuse to start on Redis databases someone else is using (another benchmark,
    a test run): flushing them would drop their queued messages. The check looks
    at connected clients and at keys already there."""
    import redis

    check_redis_db(redis_db)
    ours = {redis_db, redis_db + 1}
    server = redis.Redis.from_url(REDIS_SERVER, socket_timeout=5)
    users = [client for client in server.client_list() if int(client.get("db", -1)) in ours]
    if users:
        raise BenchError(
            f"Redis db {redis_db}/{redis_db + 1} has {len(users)} connected client(s) "
            f"(another run?); pick free databases with --redis-db."
        )
    for db in sorted(ours):
        keys = redis.Redis.from_url(f"{REDIS_SERVER}/{db}", socket_timeout=5).dbsize()
        if keys:
            raise BenchError(
                f"Redis db {db} holds {keys} keys that are not this benchmark's; pick free "
                f"databases with --redis-db (or empty it: redis-cli -n {db} flushdb)."
            )


def flush_redis(redis_db: int) -> None:
    """Empty the benchmark's broker database and its cache database."""
    import redis

    check_redis_db(redis_db)
    for db in (redis_db, redis_db + 1):
        redis.Redis.from_url(f"{REDIS_SERVER}/{db}", socket_timeout=5).flushdb()


def require_services() -> None:
    """Fail early, with a message, when PostgreSQL or Redis is not there."""
    import redis

    try:
        with _admin_connection():
            pass
    except Exception as exc:
        raise BenchError(f"PostgreSQL at {PG_SERVER} does not answer: {exc}") from exc
    try:
        redis.Redis.from_url(REDIS_SERVER, socket_connect_timeout=2).ping()
    except Exception as exc:
        raise BenchError(f"Redis at {REDIS_SERVER} does not answer: {exc}") from exc


# --- worker processes --------------------------------------------------------------------


class WorkerProcess:
    """`celery worker` as a child process with the benchmark's environment.

    Same command line as the Procfile's worker (prefork, all queues); the Celery
    settings (acks late, prefetch 1, max tasks per child, ...) come from
    config/settings.py unchanged.
    """

    def __init__(
        self,
        *,
        env: dict[str, str],
        name: str = "bench",
        queues: str = ALL_QUEUES,
        concurrency: int = 2,
        pool: str = "prefork",
        loglevel: str = "INFO",
        app: str = "config",
        control=None,
        unset: Sequence[str] = (),
    ):
        self.hostname = f"{name}-{os.getpid()}-{time.monotonic_ns()}@localhost"
        self.env = env
        self.app = app
        self.control_app = control  # the Celery app that pings it (default: the current one)
        self.unset = tuple(unset)  # variables of this process's environment the worker must not see
        self.queues = queues
        self.concurrency = concurrency
        self.pool = pool
        self.loglevel = loglevel
        self.process: subprocess.Popen | None = None
        handle, path = tempfile.mkstemp(prefix="bench-worker-", suffix=".log")
        os.close(handle)
        self.log_path = Path(path)

    def start(self, *, timeout: float = 60.0) -> WorkerProcess:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            self.app,
            "worker",
            "-n",
            self.hostname,
            "-Q",
            self.queues,
            "-c",
            str(self.concurrency),
            "-P",
            self.pool,
            "-l",
            self.loglevel,
            "--without-mingle",
            "--without-gossip",
        ]
        env = {key: value for key, value in {**os.environ, **self.env}.items() if key not in self.unset}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        from celery import current_app

        app = self.control_app or current_app
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"Celery worker exited with {self.process.returncode}:\n{self.log()}")
            if app.control.ping(destination=[self.hostname], timeout=0.5):
                return
        raise BenchError(f"Celery worker did not answer within {timeout} s:\n{self.log()}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the main process, its live pool
        processes and the pool processes it has reaped (recycled children)."""
        if not self.process or self.process.poll() is not None:
            return 0.0
        main = _proc_times(self.process.pid)
        total = main[0] + main[1] + main[2] + main[3]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(FileNotFoundError):
            for pid in children.read_text().split():
                child = _proc_times(int(pid))
                total += child[0] + child[1]
        return total

    def pool_pids(self) -> list[int]:
        """Process ids of the live pool processes (prefork children)."""
        if not self.process or self.process.poll() is not None:
            return []
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except FileNotFoundError:
            return []

    def stop(self, timeout: float = 20.0) -> None:
        """Warm shutdown (SIGTERM to the process group), SIGKILL if it hangs."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        with contextlib.suppress(FileNotFoundError):
            self.log_path.unlink()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except FileNotFoundError:
            return ""


def _proc_times(pid: int) -> tuple[float, float, float, float]:
    """utime, stime, cutime, cstime of a process in seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return (0.0, 0.0, 0.0, 0.0)
    ticks = os.sysconf("SC_CLK_TCK")
    # fields[0] is the state (field 3 of stat); utime..cstime are fields 14-17.
    return tuple(int(value) / ticks for value in fields[11:15])


class ServerProcess:
    """Any long-running child process (gunicorn) in its own process group."""

    def __init__(self, command: Sequence[str], *, env: dict[str, str]):
        self.command = list(command)
        self.env = env
        self.process: subprocess.Popen | None = None
        handle, path = tempfile.mkstemp(prefix="bench-server-", suffix=".log")
        os.close(handle)
        self.log_path = Path(path)

    def start(self) -> ServerProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def stop(self, timeout: float = 20.0) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        with contextlib.suppress(FileNotFoundError):
            self.log_path.unlink()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except FileNotFoundError:
            return ""


# --- time budget ------------------------------------------------------------------------


@contextlib.contextmanager
def time_budget(seconds: int) -> Iterator[None]:
    """Raise BenchTimeout in the main thread once `seconds` have passed, and turn
    SIGTERM into SystemExit, so `finally` clean-up runs in both cases."""

    def on_alarm(signum, frame):
        raise BenchTimeout(f"the benchmark ran past its budget of {seconds} s")

    def on_term(signum, frame):
        raise SystemExit(143)

    previous_alarm = signal.signal(signal.SIGALRM, on_alarm)
    previous_term = signal.signal(signal.SIGTERM, on_term)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous_alarm)
        signal.signal(signal.SIGTERM, previous_term)


def wait_until(predicate, *, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll until predicate() is truthy; BenchError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise BenchError(f"{what} did not happen within {timeout} s")


# --- figures --------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, title: str = "") -> None:
    """A plain Markdown table, so it can be pasted into docs/benchmarks.md as is."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    if title:
        print(f"\n{title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    sys.stdout.flush()


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def machine_description() -> str:
    """Cores, CPU model, memory and the versions that matter for the figures."""
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gb = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        memory_gb = f"{kb / 1024 / 1024:.0f} GB"
    return f"{os.cpu_count()} cores ({cpu}), {memory_gb} RAM, Python {platform.python_version()}"


def service_versions() -> str:
    """PostgreSQL and Redis server versions (needs Django set up)."""
    import redis
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    redis_version = redis.Redis.from_url(REDIS_SERVER).info("server").get("redis_version", "?")
    return f"PostgreSQL {pg}, Redis {redis_version}"


def print_header(title: str, command: str) -> None:
    print(f"# {title}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"machine: {machine_description()}")
    print(f"command: {command}")
    print(f"load average at start: {load_average()}")
    sys.stdout.flush()


def load_average() -> str:
    """The 1/5/15-minute load: other work on the machine skews every figure."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
