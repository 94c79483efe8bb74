from django.apps import AppConfig


class InvoicesConfig(AppConfig):
    name = "invoices"

    def ready(self) -> None:
        from celery.signals import worker_process_init

        from invoices import checks, tasks  # noqa: F401  (registers the system checks and job kinds)

        worker_process_init.connect(_preload_official_rules, weak=False, dispatch_uid="invoices-preload-rules")


def _preload_official_rules(**kwargs) -> None:
    """In each pool process of a worker that consumes the `invoices` queue: compile
    the EN 16931 stylesheets before the first task, not during the first invoice."""
    import logging

    from celery import current_app

    if "invoices" not in current_app.amqp.queues.consume_from:
        return
    from invoices.validation.rules.en16931 import preload_official_rules

    try:
        preload_official_rules()
    except Exception:  # compiled again (and the error reported) on the first invoice; never kill the worker
        logging.getLogger(__name__).exception("Could not compile the EN 16931 stylesheets at worker start")
