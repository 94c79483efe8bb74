from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        # Job kinds register themselves when their tasks module is imported; the
        # web process needs them too (to validate and list kinds), not just workers.
        import importlib

        from django.conf import settings

        from jobs import checks, tasks  # noqa: F401

        for module in settings.JOB_EXTRA_MODULES:
            importlib.import_module(module)
