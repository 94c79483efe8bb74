"""The audit trail: one row per operator action."""

from __future__ import annotations

from core.actors import Actor
from core.models import AuditEntry, model_label


def audit_record(
    *, actor: Actor, action: str, job=None, target=None, reason: str = "", details: dict | None = None
) -> AuditEntry:
    """Write who did `action` to `target` (and which job it concerns), from where and why.

    `actor.user` may be None for the system.
    """
    entry = audit_entry(actor=actor, action=action, job=job, target=target, reason=reason, details=details)
    entry.save()
    return entry


def audit_entry(
    *, actor: Actor, action: str, job=None, target=None, reason: str = "", details: dict | None = None
) -> AuditEntry:
    """The entry audit_record writes, unsaved (for a caller that inserts it together
    with the row it records, core.db.insert_together)."""
    user = actor.user if getattr(actor.user, "pk", None) else None
    entry = AuditEntry(
        actor=user,
        actor_label=getattr(user, "username", "") or "system",
        action=action,
        source=actor.source,
        job=job,
        reason=reason or "",
        details=details or {},
    )
    if target is not None:
        entry.target_type = model_label(target)
        entry.target_id = str(target.pk)
        entry.target_label = str(target)[:200]
    return entry
