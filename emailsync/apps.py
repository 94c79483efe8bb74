from django.apps import AppConfig


class EmailsyncConfig(AppConfig):
    name = "emailsync"
    verbose_name = "Email sync"

    def ready(self) -> None:
        from emailsync import tasks  # noqa: F401  (registers the job kinds)
