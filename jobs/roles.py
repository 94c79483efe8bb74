"""Roles are Django groups; this says which permissions each one holds.

Migrations call `grant_role_permissions` so a fresh database has the groups,
and later apps add their own permissions to the same roles.
"""

from __future__ import annotations

JOB_OPERATIONS = ["jobs.view_job", "jobs.trigger_job", "jobs.cancel_job", "jobs.retry_job"]
# view_all: invoices belong to the AP team, not to whoever uploaded them (docs/invoices.md).
INVOICE_READ = ["invoices.view_invoice", "invoices.view_all", "invoices.view_vendor", "invoices.view_exportbatch",
                "invoices.view_invoicecorrection"]
INVOICE_WORK = [*INVOICE_READ, "invoices.add_invoice", "invoices.add_invoicecorrection", "invoices.add_vendor",
                "invoices.reprocess_invoice", "invoices.approve_invoice", "invoices.export_invoice",
                "invoices.add_exportbatch"]
MAILBOX_WORK = ["emailsync.view_mailbox", "emailsync.add_mailbox", "emailsync.change_mailbox",
                "emailsync.delete_mailbox", "emailsync.sync_mailbox", "emailsync.view_mailmessage"]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    "viewer": ["jobs.view_job", *INVOICE_READ, "emailsync.view_mailbox"],
    # terminate also needs is_staff (jobs.services.job_terminate)
    "operator": [*JOB_OPERATIONS, "jobs.terminate_job", *INVOICE_READ, "invoices.reprocess_invoice",
                 "monitoring.run_scan"],
    "ap_clerk": [*JOB_OPERATIONS, *INVOICE_WORK, *MAILBOX_WORK, "monitoring.run_scan"],
    # A clerk who may also approve invoices above the approval threshold (four-eyes still applies).
    "ap_approver": [*JOB_OPERATIONS, *INVOICE_WORK, *MAILBOX_WORK, "monitoring.run_scan",
                    "invoices.approve_above_threshold"],
}


def grant_role_permissions(apps, role_permissions: dict[str, list[str]]) -> None:
    """Create the groups and give them the listed permissions (idempotent).

    Permissions are created on post_migrate, which has not run yet inside a
    migration on a fresh database, so create them first. Permissions of apps
    not migrated yet are skipped; each app's roles migration calls this again.
    """
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in role_permissions.items():
        group, _ = Group.objects.get_or_create(name=role)
        for dotted in perms:
            app_label, codename = dotted.split(".")
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is not None:
                group.permissions.add(permission)


def ensure_roles() -> None:
    """Create the role groups with the live app registry (after a flush, in tests)."""
    from django.apps import apps

    grant_role_permissions(apps, ROLE_PERMISSIONS)
