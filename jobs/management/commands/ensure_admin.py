import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create a superuser if there is none. Prints 'created' or 'exists'."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="admin@localhost")
        parser.add_argument("--password-env", required=True, help="Environment variable holding the password.")

    def handle(self, *args, username, email, password_env, **options):
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            self.stdout.write("exists")
            return
        password = os.environ.get(password_env)
        if not password:
            raise CommandError(f"The environment variable {password_env} is empty.")
        user_model.objects.create_superuser(username=username, email=email, password=password)
        self.stdout.write("created")
