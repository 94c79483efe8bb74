"""One source for queues and time limits: the job kind."""

from celery import current_app

from jobs.kinds import JobKind, all_kinds


def _routed_queue(name: str) -> str:
    options = current_app.amqp.router.route({}, name, (), {})
    return options["queue"].name


def test_a_message_sent_by_name_goes_to_its_kinds_queue():
    for kind in all_kinds():
        assert _routed_queue(kind.name) == kind.queue, kind.name
    # Routed to "invoices" by an old name pattern while its kind said "maintenance".
    assert _routed_queue("invoices.cleanup_exports") == "maintenance"


def test_plain_tasks_go_where_they_are_declared():
    assert _routed_queue("jobs.sweep") == "maintenance"
    assert _routed_queue("monitoring.beat_heartbeat") == "maintenance"


def test_the_default_time_limits_are_the_kinds_defaults(settings):
    settings.JOB_DEFAULT_SOFT_TIME_LIMIT, settings.JOB_DEFAULT_TIME_LIMIT = 111, 222
    kind = JobKind(name="tests.no_limits", func=lambda job: None)
    assert (kind.soft_time_limit, kind.time_limit) == (111, 222)
    assert JobKind(name="tests.own", func=lambda job: None, time_limit=5).time_limit == 5
