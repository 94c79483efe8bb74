from django.db import migrations

from core.roles import grant_role_permissions, role_permissions


def grant_invoice_permissions(apps, schema_editor):
    grant_role_permissions(apps, role_permissions())


class Migration(migrations.Migration):
    dependencies = [("invoices", "0001_initial"), ("jobs", "0002_roles")]

    operations = [migrations.RunPython(grant_invoice_permissions, migrations.RunPython.noop)]
