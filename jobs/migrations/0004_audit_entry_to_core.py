"""AuditEntry now belongs to core (core.0001 takes the table over as it is)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("jobs", "0003_job_lost_runs")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditEntry")],
            database_operations=[],
        ),
    ]
