from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Business events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from events import tasks  # noqa: F401  (registers the job kinds)
