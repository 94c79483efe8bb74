"""Job kinds used only by the test suite (loaded through JOB_EXTRA_MODULES,
so real worker processes know them too)."""

from __future__ import annotations

import os
import time

import redis
from django.conf import settings
from rest_framework import serializers

from jobs.registry import job_kind


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


class FlakyParams(serializers.Serializer):
    key = serializers.CharField()
    fail_times = serializers.IntegerField(min_value=0)


@job_kind(
    "tests.flaky",
    queue="default",
    params=FlakyParams,
    max_attempts=5,
    backoff_base=0.5,
    backoff_max=5,
    user_triggerable=False,
)
def flaky(job, *, key: str, fail_times: int) -> dict:
    """Fails with a transient error `fail_times` times, then succeeds."""
    calls = _redis().incr(f"tests:flaky:{key}")
    _redis().rpush(f"tests:flaky:{key}:times", time.time())
    if calls <= fail_times:
        raise ConnectionError(f"simulated network error {calls}")
    return {"calls": calls}


class BadInputParams(serializers.Serializer):
    key = serializers.CharField()


@job_kind("tests.bad_input", queue="default", params=BadInputParams, max_attempts=5, user_triggerable=False)
def bad_input(job, *, key: str) -> None:
    """Fails at once: bad input is not retried."""
    _redis().incr(f"tests:bad:{key}")
    raise ValueError("The invoice total is not a number: 'abc'")


class RecordParams(serializers.Serializer):
    key = serializers.CharField()
    seconds = serializers.FloatField(min_value=0)
    steps = serializers.IntegerField(min_value=1)


@job_kind(
    "tests.record",
    queue="default",
    params=RecordParams,
    max_attempts=3,
    user_triggerable=False,
    unique_key="record:{key}",
)
def record(job, *, key: str, seconds: float, steps: int) -> dict:
    """Sleeps with progress, writing start/end marks (pid, time) to Redis so a
    test can prove two executions never overlapped."""
    r = _redis()
    r.rpush(f"tests:record:{key}", f"start {os.getpid()} {time.time()}")
    for step in range(1, steps + 1):
        time.sleep(seconds / steps)
        job.progress(step, steps)
    r.rpush(f"tests:record:{key}", f"end {os.getpid()} {time.time()}")
    return {"pid": os.getpid()}


class FragileParams(serializers.Serializer):
    key = serializers.CharField()


@job_kind(
    "tests.fragile", queue="default", params=FragileParams, max_attempts=5, max_lost_runs=1, user_triggerable=False
)
def fragile(job, *, key: str) -> dict:
    """A kind whose poison-pill limit is one lost run (JobKind.max_lost_runs)."""
    return {"key": key}
