"""AuditEntry moves from jobs to core without touching its rows.

The model is created here in the migration state only, on the table jobs has
been writing to (jobs.0003 removes it from jobs' state, also without touching
the database); 0002 then renames the table. The content type (and with it the
admin permissions granted to groups) is carried over to the new app label.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def move_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="core", model="auditentry").exists():
        ContentType.objects.filter(app_label="jobs", model="auditentry").update(app_label="core")


def restore_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="jobs", model="auditentry").exists():
        ContentType.objects.filter(app_label="core", model="auditentry").update(app_label="jobs")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("jobs", "0004_audit_entry_to_core"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEntry",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("actor_label", models.CharField(blank=True, default="", max_length=150)),
                        ("action", models.CharField(max_length=60)),
                        ("source", models.CharField(choices=[("schedule", "Schedule"), ("admin", "Admin"),
                                                             ("api", "API"), ("command", "Command"),
                                                             ("system", "System")], max_length=10)),
                        ("target_type", models.CharField(blank=True, default="", max_length=100)),
                        ("target_id", models.CharField(blank=True, default="", max_length=64)),
                        ("target_label", models.CharField(blank=True, default="", max_length=200)),
                        ("reason", models.TextField(blank=True, default="")),
                        ("details", models.JSONField(blank=True, default=dict)),
                        ("actor", models.ForeignKey(blank=True, null=True,
                                                    on_delete=django.db.models.deletion.SET_NULL, related_name="+",
                                                    to=settings.AUTH_USER_MODEL)),
                        ("job", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                                  related_name="audit_entries", to="jobs.job")),
                    ],
                    options={
                        "verbose_name_plural": "audit entries",
                        "ordering": ["-created_at"],
                        "db_table": "jobs_auditentry",
                        "indexes": [
                            models.Index(fields=["-created_at"], name="audit_created"),
                            models.Index(fields=["target_type", "target_id", "-created_at"], name="audit_target"),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_type, restore_content_type),
    ]
