"""`manage.py check` flags the Celery settings that lose or duplicate tasks."""

import pytest
from celery import current_app
from django.core.checks import run_checks

from jobs.checks import celery_configuration


def ids():
    return {problem.id for problem in celery_configuration()}


def test_our_configuration_is_clean():
    assert ids() == set()
    assert not [m for m in run_checks() if m.level >= 30 and m.id.startswith("jobs.")]


@pytest.mark.parametrize(
    ("setting", "value", "problem"),
    [
        ("task_serializer", "pickle", "jobs.E001"),
        ("accept_content", ["json", "pickle"], "jobs.E001"),
        ("task_reject_on_worker_lost", False, "jobs.W001"),
        ("worker_prefetch_multiplier", 4, "jobs.W002"),
        ("result_extended", False, "jobs.W003"),
        ("timezone", "Europe/Berlin", "jobs.E003"),
    ],
)
def test_each_dangerous_setting_is_flagged(setting, value, problem):
    original = current_app.conf[setting]
    current_app.conf[setting] = value
    try:
        assert problem in ids()
    finally:
        current_app.conf[setting] = original


def test_short_visibility_timeout_is_flagged():
    options = current_app.conf.broker_transport_options
    original = options["visibility_timeout"]
    options["visibility_timeout"] = 600
    try:
        assert "jobs.E002" in ids()
    finally:
        options["visibility_timeout"] = original
