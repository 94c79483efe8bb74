from django.db import migrations

from core.roles import grant_role_permissions

# Written out here (not read from the live role table) so this migration always grants the same.
REVIEW_GRANTS = {
    "viewer": ["invoices.view_all", "invoices.view_invoicecorrection"],
    "operator": ["invoices.view_all", "invoices.view_invoicecorrection"],
    "ap_clerk": ["invoices.view_all", "invoices.view_invoicecorrection", "invoices.add_invoicecorrection",
                 "invoices.add_vendor"],
    "ap_approver": ["jobs.view_job", "jobs.trigger_job", "jobs.cancel_job", "jobs.retry_job",
                    "invoices.view_invoice", "invoices.view_all", "invoices.view_vendor",
                    "invoices.view_exportbatch", "invoices.view_invoicecorrection", "invoices.add_invoice",
                    "invoices.add_invoicecorrection", "invoices.add_vendor", "invoices.reprocess_invoice",
                    "invoices.approve_invoice", "invoices.export_invoice", "invoices.add_exportbatch",
                    "invoices.approve_above_threshold", "emailsync.view_mailbox", "emailsync.add_mailbox",
                    "emailsync.change_mailbox", "emailsync.delete_mailbox", "emailsync.sync_mailbox",
                    "emailsync.view_mailmessage", "monitoring.run_scan"],
}


def grant_review_permissions(apps, schema_editor):
    grant_role_permissions(apps, REVIEW_GRANTS)


def revoke_review_permissions(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role in ("viewer", "operator", "ap_clerk"):
        group = Group.objects.filter(name=role).first()
        if group is not None:
            group.permissions.remove(*Permission.objects.filter(
                content_type__app_label="invoices", codename__in=["view_all", "view_invoicecorrection",
                                                                   "add_invoicecorrection"]))
    Group.objects.filter(name="ap_approver").delete()


class Migration(migrations.Migration):
    dependencies = [("invoices", "0005_review_workspace"), ("emailsync", "0002_roles"),
                    ("monitoring", "0002_roles_and_default_rules")]

    operations = [migrations.RunPython(grant_review_permissions, revoke_review_permissions)]
