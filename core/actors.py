"""Who acts, through which door, and whether they may."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import NotAllowed
from core.models import TriggerSource


@dataclass(frozen=True)
class Actor:
    """Who acts, and through which door (a TriggerSource)."""

    user: Any  # a user (possibly anonymous), or None for the system
    source: str

    @classmethod
    def system(cls) -> Actor:
        return cls(user=None, source=TriggerSource.SYSTEM)


def require_permission(user, perm: str, *, staff: bool = False) -> None:
    """Raise NotAllowed unless the user holds the permission (and is staff).

    `user=None` is a trusted system caller (sweeper, shell without --as).
    """
    if user is None:
        return
    if not user.is_authenticated or not user.has_perm(perm) or (staff and not user.is_staff):
        raise NotAllowed("You do not have permission to do that.")
