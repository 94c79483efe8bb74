from django.apps import AppConfig

# view_all: invoices belong to the AP team, not to whoever uploaded them (docs/invoices.md).
INVOICE_READ = [
    "invoices.view_invoice",
    "invoices.view_all",
    "invoices.view_vendor",
    "invoices.view_exportbatch",
    "invoices.view_invoicecorrection",
]
INVOICE_WORK = [
    *INVOICE_READ,
    "invoices.add_invoice",
    "invoices.add_invoicecorrection",
    "invoices.add_vendor",
    "invoices.reprocess_invoice",
    "invoices.approve_invoice",
    "invoices.export_invoice",
    "invoices.add_exportbatch",
]


class InvoicesConfig(AppConfig):
    name = "invoices"
    # What each role may do with invoices (core.roles assembles the groups).
    role_permissions = {
        "viewer": INVOICE_READ,
        "operator": [*INVOICE_READ, "invoices.reprocess_invoice"],
        "ap_clerk": INVOICE_WORK,
        # A clerk who may also approve invoices above the approval threshold (four-eyes still applies).
        "ap_approver": [*INVOICE_WORK, "invoices.approve_above_threshold"],
    }

    def ready(self) -> None:
        from celery.signals import worker_process_init

        from events.services import review_digest_source_set
        from invoices import checks, tasks  # noqa: F401  (registers the system checks and job kinds)
        from invoices.review_digest import review_digest_message

        review_digest_source_set(review_digest_message)  # the digest events sends is our review queue

        worker_process_init.connect(_preload_official_rules, weak=False, dispatch_uid="invoices-preload-rules")


def _preload_official_rules(**kwargs) -> None:
    """In each pool process of a worker that consumes the `invoices` queue: compile
    the EN 16931 stylesheets before the first task, not during the first invoice."""
    import logging

    from celery import current_app

    if "invoices" not in current_app.amqp.queues.consume_from:
        return
    # Here, not at the top: Django imports apps.py before any model exists.
    from invoices.validation.rules.en16931 import preload_official_rules

    try:
        preload_official_rules()
    except Exception:  # compiled again (and the error reported) on the first invoice; never kill the worker
        logging.getLogger(__name__).exception("Could not compile the EN 16931 stylesheets at worker start")
