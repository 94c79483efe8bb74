"""Configuration doctor: `manage.py check` flags the Celery settings behind
most lost or duplicated tasks (docs/jobs.md, "Configuration doctor")."""

from __future__ import annotations

from celery import current_app
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from jobs.kinds import all_kinds

LONG_JOB_QUEUES = ("invoices", "email", "exports", "maintenance")


@register(Tags.compatibility)
def celery_configuration(app_configs=None, **kwargs):
    conf = current_app.conf
    problems: list[CheckMessage] = []
    serializers_in_use = {conf.task_serializer, conf.result_serializer, *conf.accept_content}
    if serializers_in_use - {"json", "application/json"}:
        problems.append(
            Error(
                f"Celery accepts or sends {sorted(serializers_in_use)}; only JSON is safe.",
                hint="Set CELERY_TASK_SERIALIZER, CELERY_RESULT_SERIALIZER='json' and CELERY_ACCEPT_CONTENT=['json']: "
                "pickle lets whoever can write to the broker run code on the workers.",
                id="jobs.E001",
            )
        )
    if conf.task_acks_late and not conf.task_reject_on_worker_lost:
        problems.append(
            Warning(
                "task_acks_late is on but task_reject_on_worker_lost is off: a task whose worker process is "
                "killed is acknowledged and lost.",
                hint="Set CELERY_TASK_REJECT_ON_WORKER_LOST = True.",
                id="jobs.W001",
            )
        )
    longest_limit = max([conf.task_time_limit or 0, *(kind.time_limit for kind in all_kinds())])
    longest_delay = settings.JOB_MAX_BROKER_COUNTDOWN
    visibility = (conf.broker_transport_options or {}).get("visibility_timeout", 3600)
    if visibility <= longest_limit + longest_delay:
        problems.append(
            Error(
                f"The broker visibility_timeout ({visibility} s) is not longer than the longest hard time limit "
                f"({longest_limit} s) plus the longest countdown kept in the broker ({longest_delay} s): Redis would "
                "deliver a still-running or still-delayed task a second time.",
                hint="Raise CELERY_VISIBILITY_TIMEOUT or lower the time limits / JOB_MAX_BROKER_COUNTDOWN.",
                id="jobs.E002",
            )
        )
    if (conf.worker_prefetch_multiplier or 1) > 1:
        problems.append(
            Warning(
                f"worker_prefetch_multiplier is {conf.worker_prefetch_multiplier}: workers on the long-job queues "
                f"({', '.join(LONG_JOB_QUEUES)}) hold messages that short jobs could run, and a killed worker "
                "takes them with it until the visibility timeout.",
                hint="Set CELERY_WORKER_PREFETCH_MULTIPLIER = 1.",
                id="jobs.W002",
            )
        )
    if not conf.result_extended:
        problems.append(
            Warning(
                "result_extended is off: task results have no task name, arguments or worker.",
                hint="Set CELERY_RESULT_EXTENDED = True.",
                id="jobs.W003",
            )
        )
    if str(conf.timezone or "UTC") != settings.TIME_ZONE:
        problems.append(
            Error(
                f"Celery's time zone ({conf.timezone}) differs from Django's ({settings.TIME_ZONE}): schedules "
                "would fire at the wrong hour.",
                hint="Leave CELERY_TIMEZONE = TIME_ZONE.",
                id="jobs.E003",
            )
        )
    transport = conf.broker_transport_options or {}
    if "socket_timeout" not in transport:
        problems.append(
            Warning(
                "The broker has no socket_timeout: a frozen Redis blocks every web request that publishes a job.",
                hint="Set socket_timeout in CELERY_BROKER_TRANSPORT_OPTIONS.",
                id="jobs.W004",
            )
        )
    if not conf.get("CELERY_DB_REUSE_MAX"):
        problems.append(
            Warning(
                "CELERY_DB_REUSE_MAX is not set on the Celery app: every task opens a new database connection.",
                hint="See config/celery.py.",
                id="jobs.W005",
            )
        )
    return problems
