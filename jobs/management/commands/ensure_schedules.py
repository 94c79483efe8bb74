from django.core.management.base import BaseCommand

from jobs.schedules import default_schedules, schedules_ensure


class Command(BaseCommand):
    help = "Create the default periodic tasks that are missing. Never changes existing ones."

    def handle(self, *args, **options):
        created = schedules_ensure()
        for name in created:
            self.stdout.write(f"created: {name}")
        self.stdout.write(f"{len(created)} created, {len(default_schedules()) - len(created)} already present")
