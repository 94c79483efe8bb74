"""The shape every operator command shares: `manage.py NAME [--as USER] ACTION ...`."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from core.actors import Actor
from core.errors import ApplicationError
from core.models import TriggerSource


class OperatorCommand(BaseCommand):
    """Runs `do_<action>(**options)` as the user named by `--as` (or as the system),
    and turns a service's refusal into a CommandError with the same message the API
    and the admin show."""

    user = None
    actor: Actor

    def add_arguments(self, parser):
        parser.add_argument("--as", dest="as_user", help="Act as this user (their visibility and permissions).")
        self.add_actions(parser.add_subparsers(dest="action", required=True))

    def add_actions(self, actions) -> None:
        """Add one sub-parser per action: `actions.add_parser("name", ...)`, handled by `do_name`."""
        raise NotImplementedError(f"{type(self).__name__} names no actions")

    def handle(self, *args, action, as_user=None, **options):
        self.user = command_user(as_user)
        self.actor = Actor(user=self.user, source=TriggerSource.COMMAND)
        try:
            return getattr(self, "do_" + action.replace("-", "_"))(**options)
        except PermissionDenied as exc:
            raise CommandError(f"Permission denied: {exc}") from exc
        except ApplicationError as exc:
            raise CommandError(str(exc)) from exc


def command_user(username: str | None):
    """The user a command acts as; None (whoever has the shell is trusted like the system)."""
    if not username:
        return None
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"No user {username!r}.") from None
