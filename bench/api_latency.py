"""Latency of the jobs API under load, against a real gunicorn server.

Usage (from the repository root; needs PostgreSQL and Redis):

    .venv/bin/python bench/api_latency.py [--clients 20] [--seconds 20] [--web-workers 3]

Starts, on a free 127.0.0.1 port, `gunicorn config.wsgi:application` (the
Procfile's command: sync workers, access log on) with DEBUG=0, SECRET_KEY set,
SECURE_SSL_REDIRECT=0 and ALLOWED_HOSTS=127.0.0.1, plus one Celery worker
(prefork, --concurrency) so the triggered jobs drain while the clients run.
Then, as a staff user in the "operator" role with a token:

  1. POST /api/v1/jobs/  {"kind": "jobs.sleep", "params": {"seconds": 0}}   (expects 202)
  2. GET  /api/v1/jobs/{id}/  over the ids created in step 1                 (expects 200)

each from --clients threads for --seconds seconds, after an untimed warm-up of
2 s. Every client is a thread with its own keep-alive `http.client`
connection (gunicorn's sync workers close it after each response, so in
practice each request opens a new TCP connection, as a real client of this
server would). Latency is measured per request in the client, from sending the
request to reading the whole body; a closed loop: each client sends its next
request when the last one is answered.

The throttles stay on (their cache reads and writes are part of the cost) but
are raised so they never refuse: API_THROTTLE_TRIGGER and API_THROTTLE_USER
are set to 1000000/second (a one-second window keeps DRF's per-user history
list short; with the default 2000/hour the benchmark would be throttled).

Own database apintake_bench_api, Redis db 9 (broker) and 10 (cache), shared with the
other jobs benchmarks: it refuses to start while another client uses them; all
dropped or emptied at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shlex
import socket
import sys
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
    migrate,
    percentile,
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
    """What the clients measured for one endpoint."""

    name: str
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=20, help="concurrent client threads (default 20)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per endpoint (default 20)")
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn worker processes (default 3)")
    parser.add_argument("--web-worker-class", default="sync", help="gunicorn worker class (default sync)")
    parser.add_argument("--web-threads", type=int, default=1, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker pool processes (default 2)")
    parser.add_argument("--database", default="apintake_bench_api")
    parser.add_argument("--redis-db", type=int, default=9, help="broker db; the cache uses the next one (default 9)")
    parser.add_argument("--budget", type=int, default=600, help="stop after this many seconds (default 600)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    return parser.parse_args(argv)


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


# --- clients -------------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP connection with the operator's token."""

    def __init__(self, port: int, token: str):
        self.connection = http.client.HTTPConnection(HOST, port, timeout=30)
        self.headers = {"Authorization": f"Token {token}", "Accept": "application/json",
                        "Content-Type": "application/json"}

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        try:
            self.connection.request(method, path, body=body, headers=self.headers)
            response = self.connection.getresponse()
            payload = response.read()
        except (http.client.HTTPException, OSError):
            self.connection.close()  # the next request reconnects
            raise
        return response.status, payload, (time.perf_counter() - started) * 1000

    def close(self) -> None:
        self.connection.close()


TRIGGER_BODY = json.dumps({"kind": "jobs.sleep", "params": {"seconds": 0}}).encode()


def run_phase(name: str, *, port: int, token: str, clients: int, seconds: float, method: str,
              paths: list[str] | None = None, expect: int) -> Phase:
    """`clients` threads send requests back to back for `seconds`; all numbers from the client side."""
    phase = Phase(name=name)
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client_loop(index: int) -> None:
        client = Client(port, token)
        latencies, statuses, errors, ids = [], {}, [], []
        start.wait()
        turn = index
        try:
            while time.perf_counter() < deadline[0]:
                path = paths[turn % len(paths)] if paths else "/api/v1/jobs/"
                turn += clients
                try:
                    status, payload, elapsed = client.request(method, path, TRIGGER_BODY if method == "POST" else None)
                except (http.client.HTTPException, OSError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
                if status != expect:
                    errors.append(f"HTTP {status}: {payload[:200]!r}")
                elif method == "POST":
                    ids.append(json.loads(payload)["id"])
        finally:
            client.close()
        with lock:
            phase.latencies_ms.extend(latencies)
            phase.errors.extend(errors)
            phase.job_ids.extend(ids)
            for status, count in statuses.items():
                phase.statuses[status] = phase.statuses.get(status, 0) + count

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join(seconds + 60)
    phase.seconds = time.perf_counter() - began
    return phase


# --- report ----------------------------------------------------------------------------------------


def report(phases: list[Phase], drained: dict[str, int]) -> None:
    rows = []
    for phase in phases:
        if not phase.latencies_ms:
            rows.append([phase.name, 0, len(phase.errors), "—", "—", "—", "—", "—", "—"])
            continue
        ms = phase.latencies_ms
        p99 = percentile(ms, 0.99)
        rows.append([
            phase.name, phase.requests, len(phase.errors), f"{phase.requests / phase.seconds:.0f}",
            f"{percentile(ms, 0.50):.1f}", f"{percentile(ms, 0.90):.1f}", f"{p99:.1f}", f"{max(ms):.1f}",
            "met" if p99 < TARGET_P99_MS else "NOT met",
        ])
    print_table(["endpoint", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
                 f"p99 < {TARGET_P99_MS:.0f} ms"], rows, title="API latency (client side)")
    for phase in phases:
        if phase.errors:
            print(f"{phase.name}: {len(phase.errors)} errors, e.g. {phase.errors[:3]}")
        print(f"{phase.name}: status codes {dict(sorted(phase.statuses.items()))}")
    print(f"jobs triggered: {sum(drained.values())}; status when the run ended: {drained}")


def job_status_counts() -> dict[str, int]:
    from django.db.models import Count

    from jobs.models import Job

    return dict(Job.objects.values_list("status").annotate(n=Count("pk")).order_by())


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    command = "python bench/api_latency.py " + shlex.join(argv)
    port = free_port()
    env = bench_environment(database=args.database, redis_db=args.redis_db, extra={
        "ALLOWED_HOSTS": HOST,
        "API_THROTTLE_TRIGGER": UNTHROTTLED,
        "API_THROTTLE_USER": UNTHROTTLED,
    })
    require_services()
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
            worker = WorkerProcess(env=env, concurrency=args.concurrency).start()
            server = ServerProcess([
                sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"{HOST}:{port}",
                "--workers", str(args.web_workers), "--worker-class", args.web_worker_class,
                "--threads", str(args.web_threads), "--timeout", "60", "--access-logfile", "-",
            ], env=env).start()
            wait_until(lambda: _answers(port, token), timeout=60, interval=0.2, what="gunicorn answering")
            print(f"server: gunicorn {args.web_workers} x {args.web_worker_class} (threads {args.web_threads}) "
                  f"on {HOST}:{port}; Celery worker prefork -c {args.concurrency}; {args.clients} clients, "
                  f"{args.seconds:.0f} s per endpoint", flush=True)
            common = {"port": port, "token": token, "clients": args.clients}
            run_phase("warm-up", seconds=2, method="POST", expect=202, **common)
            trigger = run_phase("POST /api/v1/jobs/", seconds=args.seconds, method="POST", expect=202, **common)
            if not trigger.job_ids:
                raise BenchError(f"No job was created: {trigger.errors[:3]}")
            paths = [f"/api/v1/jobs/{job_id}/" for job_id in trigger.job_ids]
            detail = run_phase("GET /api/v1/jobs/{id}/", seconds=args.seconds, method="GET", paths=paths,
                               expect=200, **common)
            print(f"load average at end: {load_average()}")
            report([trigger, detail], job_status_counts())
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
    client = Client(port, token)
    try:
        status, _, _ = client.request("GET", "/api/v1/jobs/kinds/")
    except OSError:
        return False
    finally:
        client.close()
    if status != 200:
        raise BenchError(f"gunicorn answered GET /api/v1/jobs/kinds/ with HTTP {status}")
    return True


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as error:  # refused before anything was created (services, Redis dbs in use)
        print(f"benchmark not started: {error}", file=sys.stderr)
        sys.exit(2)
