"""Latency of the jobs API under load, against a real gunicorn server.

Usage (from the repository root; needs PostgreSQL, Redis and wrk, which
scripts/setup-system.sh installs):

    .venv/bin/python bench/api_latency.py [--clients 20] [--seconds 20] [--rounds 3] [--web-workers 4]

Starts, on a free 127.0.0.1 port, `gunicorn config.wsgi:application` (the
Procfile's command: sync workers, access log on) with DEBUG=0, SECRET_KEY set,
SECURE_SSL_REDIRECT=0 and ALLOWED_HOSTS=127.0.0.1. Then, as a staff user in the
"operator" role with a token, wrk (a C load generator, so the client takes
little of the 2 cores) runs --clients connections in a closed loop (each sends
its next request when the last one is answered) for --seconds per endpoint:

  1. POST /api/v1/jobs/  {"kind": "jobs.sleep", "params": {"seconds": 0}}   (expects 202)
  2. GET  /api/v1/jobs/{id}/  over the ids created in step 1                 (expects 200)
  3. GET  /bench/trivial/  a DRF view with the same authentication, permission and
     throttles that does nothing else: the framework's floor on this machine. It is
     in a bench-only URLconf (bench/api_urls.py, through bench/api_settings.py).

in --rounds rounds (each endpoint --seconds / --rounds per round, the three in turn,
so a change in the machine's load from other work falls on all three alike), twice:
first with no Celery worker running (the API alone: the triggered jobs
wait in the queue), then with one Celery worker (prefork, --concurrency)
draining the jobs on the same 2 cores while the clients run. Latency is wrk's,
per request, from writing the request to reading the whole response (gunicorn's
sync workers close the connection after each response; wrk reconnects). An
endpoint's percentiles are over all its rounds (each round's distribution, as 1,000
quantiles from wrk, weighted by its request count); the POST / trivial p99 ratio is
given over all rounds and per round (POST and trivial measured a few seconds apart).
Beside latency, the CPU time the gunicorn workers and the PostgreSQL backends of the
benchmark database spent per answered request (from /proc; Redis and wrk not
counted; with the Celery worker running, its own database sessions count too): on a
machine shared with other work, a cost that moves far less than latency. Any
answer other than 2xx counts as an error and is printed; the number of Job rows
is checked against the number of 202 answers.

The throttles stay on (their cache reads and writes are part of the cost) but
are raised so they never refuse: API_THROTTLE_TRIGGER and API_THROTTLE_USER
are set to 1000000/second (with the default 2000/hour the benchmark would be
throttled).

Own database apintake_bench_api, Redis db 9 (broker) and 10 (cache), shared with the
other jobs benchmarks: it refuses to start while another client uses them; all
dropped or emptied at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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
    migrate,
    print_header,
    print_table,
    require_services,
    service_versions,
    setup_django,
    time_budget,
    wait_until,
)

HOST = "127.0.0.1"
TARGET_P99_MS = 50.0
UNTHROTTLED = "1000000/second"


@dataclass
class Phase:
    """What wrk measured for one endpoint (latencies in ms)."""

    name: str
    setup: str
    requests: int
    seconds: float
    errors: dict[str, int]
    p50: float
    p90: float
    p99: float
    max: float
    quantiles: list[float]  # 1,000 quantiles of the latency (ms), each 1/1000 of the requests
    round_p99s: list[float]
    web_cpu: float = 0.0  # CPU seconds of the gunicorn workers over the phase
    db_cpu: float = 0.0  # CPU seconds of the PostgreSQL backends serving the benchmark database

    @property
    def cpu_ms_per_request(self) -> tuple[float, float]:
        """(gunicorn, PostgreSQL) CPU ms per answered request: a cost the machine's other
        load changes far less than latency."""
        return (1000 * self.web_cpu / self.requests, 1000 * self.db_cpu / self.requests) if self.requests else (0, 0)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=20, help="concurrent client threads (default 20)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per endpoint (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds the seconds are split into (default 3)")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn worker processes (default 4)")
    parser.add_argument("--web-worker-class", default="sync", help="gunicorn worker class (default sync)")
    parser.add_argument("--web-threads", type=int, default=1, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker pool processes (default 2)")
    parser.add_argument("--database", default="apintake_bench_api")
    parser.add_argument("--redis-db", type=int, default=9, help="broker db; the cache uses the next one (default 9)")
    parser.add_argument("--budget", type=int, default=600, help="stop after this many seconds (default 600)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    return parser.parse_args(argv)


CPU_METER: dict[str, object] = {}  # "server": the gunicorn master pid, "database": the benchmark database


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + system) so far of each process still there."""
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


def _cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two readings; a process started meanwhile counts in full,
    one that ended meanwhile is missed (connections live CONN_MAX_AGE, so rarely)."""
    return sum(now - before.get(pid, 0.0) for pid, now in after.items())


def _web_pids() -> list[int]:
    master = CPU_METER.get("server")
    if master is None:
        return []
    found = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


def _db_pids() -> list[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [CPU_METER.get("database")],
        )
        return [pid for (pid,) in cursor.fetchall()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def create_operator_token() -> str:
    """A staff user in the operator role (may trigger jobs.sleep), and its API token."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_user(username="bench-operator", password=None, is_staff=True)
    user.groups.add(Group.objects.get(name="operator"))
    return Token.objects.create(user=user).key


# --- load ---------------------------------------------------------------------------------------

WRK_COMMON = """
wrk.headers["Authorization"] = "Token " .. os.getenv("BENCH_TOKEN")
wrk.headers["Accept"] = "application/json"
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "status": %d, "connect": %d, '
    .. '"read": %d, "write": %d, "timeout": %d, "p50": %d, "p90": %d, "p99": %d, "max": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  local q = {}
  for i = 1, 1000 do q[i] = latency:percentile((i - 0.5) / 10) end
  io.write("QUANTILES " .. table.concat(q, " ") .. "\\n")
end
"""

WRK_POST = (
    WRK_COMMON
    + """
wrk.method = "POST"
wrk.body = '{"kind": "jobs.sleep", "params": {"seconds": 0}}'
"""
)

WRK_GET = (
    WRK_COMMON
    + """
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local turn = math.random(#paths)
request = function()
  turn = turn % #paths + 1
  return wrk.format("GET", paths[turn])
end
"""
)


def run_wrk(
    name: str,
    setup: str,
    *,
    port: int,
    token: str,
    clients: int,
    seconds: float,
    script: str,
    path: str = "/api/v1/jobs/",
    extra_env: dict[str, str] | None = None,
) -> Phase:
    """`clients` connections send requests back to back for `seconds`; wrk's figures."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    web_before, db_before = _cpu_seconds(_web_pids()), _cpu_seconds(_db_pids())
    try:
        completed = subprocess.run(
            [
                "wrk",
                "-t",
                str(min(2, clients)),
                "-c",
                str(clients),
                "-d",
                f"{seconds:.0f}s",
                "--timeout",
                "10s",
                "-s",
                handle.name,
                f"http://{HOST}:{port}{path}",
            ],
            env={**os.environ, "BENCH_TOKEN": token, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    finally:
        os.unlink(handle.name)
    time.sleep(1)  # wrk leaves up to `clients` requests in flight: let the server finish them
    web_cpu = _cpu_spent(web_before, _cpu_seconds(_web_pids()))
    db_cpu = _cpu_spent(db_before, _cpu_seconds(_db_pids()))
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    quantiles = [line for line in completed.stdout.splitlines() if line.startswith("QUANTILES ")]
    if completed.returncode != 0 or not lines or not quantiles:
        raise BenchError(f"wrk failed ({completed.returncode}): {completed.stderr[-500:]} {completed.stdout[-500:]}")
    data = json.loads(lines[-1][len("RESULT ") :])
    return Phase(
        name=name,
        setup=setup,
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors={key: data[key] for key in ("status", "connect", "read", "write", "timeout") if data[key]},
        p50=data["p50"] / 1000,
        p90=data["p90"] / 1000,
        p99=data["p99"] / 1000,
        max=data["max"] / 1000,
        quantiles=[int(value) / 1000 for value in quantiles[-1].split()[1:]],
        round_p99s=[data["p99"] / 1000],
        web_cpu=web_cpu,
        db_cpu=db_cpu,
    )


def merged(rounds: list[Phase]) -> Phase:
    """One endpoint's rounds as one phase: counts added, percentiles over all requests
    (each round's quantiles weighted by its number of requests)."""
    first = rounds[0]
    weighted = sorted((value, phase.requests / len(phase.quantiles)) for phase in rounds for value in phase.quantiles)
    total = sum(weight for _, weight in weighted)

    def percentile(p: float) -> float:
        seen = 0.0
        for value, weight in weighted:
            seen += weight
            if seen >= total * p / 100:
                return value
        return weighted[-1][0]

    errors: dict[str, int] = {}
    for phase in rounds:
        for key, count in phase.errors.items():
            errors[key] = errors.get(key, 0) + count
    return Phase(
        name=first.name,
        setup=first.setup,
        requests=sum(phase.requests for phase in rounds),
        seconds=sum(phase.seconds for phase in rounds),
        errors=errors,
        p50=percentile(50),
        p90=percentile(90),
        p99=percentile(99),
        max=max(phase.max for phase in rounds),
        quantiles=[value for value, _ in weighted],
        round_p99s=[p for phase in rounds for p in phase.round_p99s],
        web_cpu=sum(phase.web_cpu for phase in rounds),
        db_cpu=sum(phase.db_cpu for phase in rounds),
    )


def run_rounds(setup: str, *, rounds: int, port: int, token: str, clients: int, seconds: float) -> list[Phase]:
    """`rounds` rounds of the three endpoints in turn, `seconds` / `rounds` each; merged per endpoint."""
    by_round = [
        run_both(setup, port=port, token=token, clients=clients, seconds=seconds / rounds) for _ in range(rounds)
    ]
    return [merged([phases[i] for phases in by_round]) for i in range(len(by_round[0]))]


def run_both(setup: str, *, port: int, token: str, clients: int, seconds: float) -> list[Phase]:
    """POST for `seconds`, then GET over the jobs the POSTs created, then the trivial view."""
    from jobs.models import Job

    before = Job.objects.count()
    trigger = run_wrk(
        "POST /api/v1/jobs/", setup, port=port, token=token, clients=clients, seconds=seconds, script=WRK_POST
    )
    created = Job.objects.count() - before
    # wrk stops at the deadline with up to `clients` requests in flight: those may still create a job.
    if not trigger.requests <= created <= trigger.requests + clients:
        raise BenchError(f"{trigger.requests} POSTs answered but {created} jobs created")
    ids = Job.objects.order_by("-created_at").values_list("pk", flat=True)[:created]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as paths:
        paths.write("".join(f"/api/v1/jobs/{job_id}/\n" for job_id in ids))
    try:
        detail = run_wrk(
            "GET /api/v1/jobs/{id}/",
            setup,
            port=port,
            token=token,
            clients=clients,
            seconds=seconds,
            script=WRK_GET,
            extra_env={"BENCH_PATHS": paths.name},
        )
    finally:
        os.unlink(paths.name)
    trivial = run_wrk(
        "GET /bench/trivial/ (same auth)",
        setup,
        port=port,
        token=token,
        clients=clients,
        seconds=seconds,
        script=WRK_COMMON,
        path="/bench/trivial/",
    )
    return [trigger, detail, trivial]


# --- report ----------------------------------------------------------------------------------------


def report(phases: list[Phase]) -> None:
    rows = [
        [
            phase.name,
            phase.setup,
            phase.requests,
            phase.error_count,
            f"{phase.per_second:.0f}",
            f"{phase.p50:.1f}",
            f"{phase.p90:.1f}",
            f"{phase.p99:.1f}",
            f"{phase.max:.1f}",
            f"{phase.cpu_ms_per_request[0]:.2f}",
            f"{phase.cpu_ms_per_request[1]:.2f}",
            "met" if phase.p99 < TARGET_P99_MS else "NOT met",
        ]
        for phase in phases
    ]
    print_table(
        [
            "endpoint",
            "setup",
            "requests",
            "errors",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "web CPU ms/req",
            "PG CPU ms/req",
            f"p99 < {TARGET_P99_MS:.0f} ms",
        ],
        rows,
        title="API latency (wrk, client side)",
    )
    for phase in phases:
        if phase.errors:
            print(f"{phase.name} ({phase.setup}): errors {phase.errors}")
    for setup in dict.fromkeys(phase.setup for phase in phases):
        by_name = {phase.name.split(" ")[1]: phase for phase in phases if phase.setup == setup}
        post, trivial = by_name.get("/api/v1/jobs/"), by_name.get("/bench/trivial/")
        if post and trivial:
            ratio = post.p99 / trivial.p99
            per_round = " / ".join(f"{a / b:.2f}" for a, b in zip(post.round_p99s, trivial.round_p99s, strict=True))
            print(
                f"{setup}: POST p99 / trivial view p99 = {ratio:.2f} over all rounds, per round {per_round} "
                f"(target <= 2: {'met' if ratio <= 2 else 'NOT met'}); "
                f"CPU per request (web + PostgreSQL) POST / trivial = "
                f"{sum(post.cpu_ms_per_request) / sum(trivial.cpu_ms_per_request):.2f}"
            )


def job_status_counts() -> dict[str, int]:
    from django.db.models import Count

    from jobs.models import Job

    return dict(Job.objects.values_list("status").annotate(n=Count("pk")).order_by())


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    command = "python bench/api_latency.py " + shlex.join(argv)
    port = free_port()
    env = bench_environment(
        database=args.database,
        redis_db=args.redis_db,
        extra={
            "ALLOWED_HOSTS": HOST,
            "API_THROTTLE_TRIGGER": UNTHROTTLED,
            "API_THROTTLE_USER": UNTHROTTLED,
        },
    )
    require_services()
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed: run scripts/setup-system.sh (apt-get install wrk).")
    claim_redis(args.redis_db)  # before anything is created: a refusal leaves nothing behind
    create_database(args.database)
    setup_django(env)
    worker: WorkerProcess | None = None
    server: ServerProcess | None = None
    try:
        with time_budget(args.budget):
            migrate()
            token = create_operator_token()
            print_header("Jobs API latency (gunicorn, real worker)", command)
            print(f"services: {service_versions()}")
            server_env = {**env, "DJANGO_SETTINGS_MODULE": "bench.api_settings"}  # + the trivial view
            server = ServerProcess(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "config.wsgi:application",
                    "--bind",
                    f"{HOST}:{port}",
                    "--workers",
                    str(args.web_workers),
                    "--worker-class",
                    args.web_worker_class,
                    "--threads",
                    str(args.web_threads),
                    "--timeout",
                    "60",
                    "--access-logfile",
                    "-",
                ],
                env=server_env,
            ).start()
            CPU_METER.update(server=server.process.pid, database=args.database)
            wait_until(lambda: _answers(port, token), timeout=60, interval=0.2, what="gunicorn answering")
            print(
                f"server: gunicorn {args.web_workers} x {args.web_worker_class} (threads {args.web_threads}) "
                f"on {HOST}:{port}; wrk -t 2 -c {args.clients}, {args.seconds:.0f} s per endpoint "
                f"in {args.rounds} rounds",
                flush=True,
            )
            common = {"port": port, "token": token, "clients": args.clients}
            run_wrk("warm-up", "", seconds=3, script=WRK_POST, **common)
            phases = run_rounds("API alone", rounds=args.rounds, seconds=args.seconds, **common)
            worker = WorkerProcess(env=env, concurrency=args.concurrency).start()
            setup = f"+ Celery worker -c {args.concurrency}"
            phases += run_rounds(setup, rounds=args.rounds, seconds=args.seconds, **common)
            print(f"load average at end: {load_average()}")
            report(phases)
            print(f"jobs by status at the end: {job_status_counts()}")
    except (BenchError, BenchTimeout) as exc:
        print(f"\nbenchmark stopped: {exc}", file=sys.stderr)
        if server is not None:
            print(server.log()[-3000:], file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
        if worker is not None:
            worker.stop()
        flush_redis(args.redis_db)
        if not args.keep_db:
            drop_database(args.database)
    return 0


def _answers(port: int, token: str) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", "/api/v1/jobs/kinds/", headers={"Authorization": f"Token {token}"})
        status = connection.getresponse().status
    except OSError:
        return False
    finally:
        connection.close()
    if status != 200:
        raise BenchError(f"gunicorn answered GET /api/v1/jobs/kinds/ with HTTP {status}")
    return True


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as error:  # refused before anything was created (services, Redis dbs in use)
        print(f"benchmark not started: {error}", file=sys.stderr)
        sys.exit(2)
