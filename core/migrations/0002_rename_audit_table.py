from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("core", "0001_audit_entry_from_jobs")]

    # Renames jobs_auditentry to core_auditentry; rows, indexes and keys stay.
    operations = [migrations.AlterModelTable(name="auditentry", table=None)]
