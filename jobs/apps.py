import importlib

from django.apps import AppConfig
from django.conf import settings

JOB_OPERATIONS = ["jobs.view_job", "jobs.trigger_job", "jobs.cancel_job", "jobs.retry_job"]


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"
    # What each role may do with jobs (core.roles assembles the groups).
    # terminate also needs is_staff (jobs.services.job_terminate).
    role_permissions = {
        "viewer": ["jobs.view_job"],
        "operator": [*JOB_OPERATIONS, "jobs.terminate_job"],
        "ap_clerk": JOB_OPERATIONS,
        "ap_approver": JOB_OPERATIONS,
    }

    def ready(self) -> None:
        # Job kinds register themselves when their tasks module is imported; the
        # web process needs them too (to validate and list kinds), not just workers.
        from jobs import checks, tasks  # noqa: F401

        for module in settings.JOB_EXTRA_MODULES:
            importlib.import_module(module)
