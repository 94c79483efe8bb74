"""Security system checks (`manage.py check --deploy`)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from core.encryption import fernet


@register(Tags.security)
def encryption_key_valid(app_configs=None, **kwargs):
    """A key that is set but not a Fernet key fails `check` (and every start), not the first
    time a mailbox secret is saved or read."""
    if not settings.FIELD_ENCRYPTION_KEY:
        return []
    try:
        fernet()
    except ImproperlyConfigured:
        return [
            Error(
                "FIELD_ENCRYPTION_KEY is not a valid Fernet key (32 url-safe base64-encoded bytes).",
                hint="Generate one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`.",
                id="core.E010",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def encryption_key_configured(app_configs=None, **kwargs):
    if settings.FIELD_ENCRYPTION_KEY:
        return []
    return [
        Warning(
            "FIELD_ENCRYPTION_KEY is not set: stored secrets are encrypted with a key derived from SECRET_KEY, "
            "so rotating SECRET_KEY would make them unreadable.",
            hint="Generate one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`.",
            id="core.W010",
        )
    ]
