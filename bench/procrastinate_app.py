"""Variant p of bench/jobs_throughput.py: Procrastinate, a job queue in which
PostgreSQL is the broker and every job is a row (procrastinate_jobs) that the
worker claims, runs and marks succeeded, with an event row per state change.

Bench-only (requirements-bench.txt). Its tables live in their own PostgreSQL
schema `procrastinate` of the benchmark database (search_path set on every
connection), created by `apply_schema()`. The worker is Procrastinate's own CLI:
`python -m procrastinate --app bench.procrastinate_app.app worker --concurrency 2`,
with BENCH_PROCRASTINATE_DSN pointing at the benchmark database.
"""

from __future__ import annotations

import os

import procrastinate

SCHEMA = "procrastinate"
QUEUE = "bench"


def conninfo() -> str:
    dsn = os.environ.get("BENCH_PROCRASTINATE_DSN", "postgres://postgres@127.0.0.1:5432/apintake_bench_throughput")
    return f"{dsn}?options=-csearch_path%3D{SCHEMA}"


app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo()))


@app.task(name="bench.noop_procrastinate", queue=QUEUE)
def noop_procrastinate() -> None:
    """A task that does nothing."""
    return None


def create_schema() -> None:
    """Create the schema and Procrastinate's tables, types and functions in it."""
    import psycopg

    with psycopg.connect(conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        conn.execute(app.schema_manager.get_schema())
