from django.db import migrations


def grant_mailbox_permissions(apps, schema_editor):
    from jobs.roles import ROLE_PERMISSIONS, grant_role_permissions

    grant_role_permissions(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [("emailsync", "0001_initial"), ("jobs", "0002_roles")]

    operations = [migrations.RunPython(grant_mailbox_permissions, migrations.RunPython.noop)]
