"""The one way a settings row is saved: checked like a form checks it, written, audited.

Each app's save service (an alert rule, a vendor, a schedule, ...) decides who may
save and which fields exist, then calls `audited_save`; the admin, the API and
the configuration restore all call that service, so a row is refused for the same
reasons and leaves the same audit entry whichever door it came through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, models, transaction

from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, Invalid

M = TypeVar("M", bound=models.Model)


def validation_message(exc: ValidationError) -> str:
    """One line for people: 'field: message; other: message' (model-wide errors without a name)."""
    if not hasattr(exc, "error_dict"):
        return " ".join(exc.messages)
    return "; ".join(
        " ".join(messages) if name == NON_FIELD_ERRORS else f"{name}: {' '.join(messages)}"
        for name, messages in exc.message_dict.items()
    )


def invalid_from(exc: ValidationError) -> Invalid:
    """A Django ValidationError as the project's Invalid, field errors kept."""
    field_errors = exc.message_dict if hasattr(exc, "error_dict") else None
    return Invalid(validation_message(exc), field_errors=field_errors)


def audited_save(
    instance: M,
    *,
    actor: Actor,
    action: str,
    fields: dict,
    allowed: Iterable[str],
    reason: str = "",
    details: dict | None = None,
    prepare: Callable[[M], None] | None = None,
) -> M:
    """Set `fields` on `instance`, run the model's own validation (field rules, `clean()`,
    unique constraints: what a ModelForm runs), save and audit `action` in one transaction.

    `prepare(instance)` runs after the model's checks and before the write, outside the
    transaction (it may look a host up): the app's own checks and derived fields.
    Raises Invalid, saving nothing, for a field not in `allowed` or a value the model refuses,
    and Conflict when a concurrent save took a unique value between the check and the write.
    """
    unknown = set(fields) - set(allowed)
    if unknown:
        raise Invalid(f"Unknown fields: {', '.join(sorted(unknown))}.")
    for name, value in fields.items():
        setattr(instance, name, value)
    try:
        instance.full_clean()
    except ValidationError as exc:
        raise invalid_from(exc) from None
    if prepare is not None:
        prepare(instance)
    try:
        with transaction.atomic():
            instance.save()
            audit_record(
                actor=actor,
                action=action,
                target=instance,
                reason=reason,
                details={"fields": sorted(fields), **(details or {})},
            )
    except IntegrityError:
        # full_clean saw no clash, so a concurrent save took the same unique value meanwhile.
        raise Conflict(
            f"Another {instance._meta.verbose_name} was saved with the same values meanwhile; try again."
        ) from None
    return instance
