"""The admin's "Run a job" form, built from a kind's parameter serializer."""

from __future__ import annotations

from django import forms
from rest_framework import serializers

from jobs.kinds import JobKind


def params_form_class(kind: JobKind) -> type[forms.Form]:
    """A Django form with one field per parameter of the kind."""
    fields: dict[str, forms.Field] = {
        name: _form_field(field) for name, field in kind.params().fields.items() if not field.read_only
    }
    fields["reason"] = forms.CharField(
        required=False, max_length=500, help_text="Why you start it (kept in the audit log)."
    )
    fields["run_at"] = forms.DateTimeField(
        required=False, label="Start at", help_text="Leave empty to start now (server time zone)."
    )
    return type(f"{kind.name.replace('.', '_')}_form", (forms.Form,), fields)


def form_params(kind: JobKind, cleaned: dict) -> dict:
    """The cleaned form values as job parameters (lists split, blanks left out)."""
    params = {}
    for name, field in kind.params().fields.items():
        if name in ("reason", "run_at"):
            continue
        value = cleaned.get(name)
        if value in (None, ""):
            continue
        if isinstance(field, serializers.ListField):
            value = [item.strip() for item in str(value).split(",") if item.strip()]
        params[name] = value
    return params


def _form_field(field: serializers.Field) -> forms.Field:
    common = {"required": field.required, "help_text": field.help_text or ""}
    if field.default is not serializers.empty:
        common["initial"] = field.default
    limits = {k: getattr(field, k) for k in ("min_value", "max_value") if getattr(field, k, None) is not None}
    if isinstance(field, serializers.BooleanField):
        return forms.BooleanField(required=False, help_text=common["help_text"], initial=common.get("initial"))
    if isinstance(field, serializers.IntegerField):
        return forms.IntegerField(**common, **limits)
    if isinstance(field, serializers.FloatField):
        return forms.FloatField(**common, **limits)
    if isinstance(field, serializers.DecimalField):
        return forms.DecimalField(**common, **limits)
    if isinstance(field, serializers.ChoiceField):
        return forms.ChoiceField(choices=list(field.choices.items()), **common)
    if isinstance(field, serializers.DateField):
        return forms.DateField(**common)
    if isinstance(field, serializers.ListField):
        common["help_text"] = (common["help_text"] + " (comma-separated)").strip()
        return forms.CharField(**common)
    return forms.CharField(**common)
