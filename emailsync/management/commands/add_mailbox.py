"""`manage.py add_mailbox --name N --host H --port P --security ssl|starttls|plain --username U --password-env VAR`"""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.actors import Actor
from core.errors import Invalid
from core.models import TriggerSource
from emailsync.models import Mailbox
from emailsync.services import mailbox_save


class Command(BaseCommand):
    help = (
        "Create or update a mailbox. The secret is read from the named environment variable (never from the "
        "command line, where other users could see it) and stored encrypted."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--host", required=True)
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--security", choices=Mailbox.Security.values, required=True)
        parser.add_argument("--username", required=True)
        parser.add_argument(
            "--password-env",
            required=True,
            metavar="VAR",
            help="Environment variable holding the password, app password or access token.",
        )
        parser.add_argument("--auth", choices=Mailbox.Auth.values, default=Mailbox.Auth.PASSWORD)
        parser.add_argument("--oauth-provider", choices=[v for v in Mailbox.OAuthProvider.values if v], default="")
        parser.add_argument("--refresh-token-env", metavar="VAR", help="Environment variable with a refresh token.")
        parser.add_argument("--folders", default="INBOX", help="Comma-separated folders (default INBOX).")
        parser.add_argument("--months", type=int, default=3, help="Look back this many months (default 3).")
        parser.add_argument("--owner", help="Username of the owner.")
        parser.add_argument("--disabled", action="store_true")

    def handle(self, *args, **options):
        secret = os.environ.get(options["password_env"])
        if not secret:
            raise CommandError(f"The environment variable {options['password_env']} is empty or not set.")
        refresh = os.environ.get(options["refresh_token_env"]) if options["refresh_token_env"] else None
        owner = None
        if options["owner"]:
            owner = get_user_model().objects.filter(username=options["owner"]).first()
            if owner is None:
                raise CommandError(f"No user {options['owner']!r}.")
        existing = Mailbox.objects.filter(name=options["name"]).first()
        fields = {
            "host": options["host"],
            "port": options["port"],
            "security": options["security"],
            "username": options["username"],
            "auth": options["auth"],
            "oauth_provider": options["oauth_provider"],
            "folders": [f.strip() for f in options["folders"].split(",") if f.strip()],
            "lookback_months": options["months"],
            "enabled": not options["disabled"],
        }
        if existing is None:
            fields["name"] = options["name"]
        try:
            mailbox = mailbox_save(
                actor=Actor(user=None, source=TriggerSource.COMMAND),
                mailbox=existing,
                secret=secret,
                refresh_token=refresh,
                owner=owner,
                **fields,
            )
        except Invalid as exc:  # the model's checks and the host policy (MailboxInvalid)
            raise CommandError(str(exc)) from exc
        if owner is not None and mailbox.owner_id != owner.pk:
            Mailbox.objects.filter(pk=mailbox.pk).update(owner=owner)
        self.stdout.write(f"{'updated' if existing else 'created'} mailbox {mailbox.pk} {mailbox.name}")
