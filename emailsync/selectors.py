"""Reads of email sync: who sees which mailbox."""

from __future__ import annotations

from django.db.models import QuerySet

from emailsync.models import Mailbox


def mailboxes_visible_to(user) -> QuerySet[Mailbox]:
    """Mailboxes are personal: their owner sees them, and staff see all.

    Every door (admin, API, CLI, job triggers) asks this; `None` is a trusted system
    caller (a command): every mailbox.
    """
    mailboxes = Mailbox.objects.select_related("owner")
    if user is None or user.is_staff:
        return mailboxes
    return mailboxes.filter(owner=user)
