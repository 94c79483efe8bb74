"""Secrets stored in the database are encrypted with Fernet (AES-128-CBC + HMAC).

The key is FIELD_ENCRYPTION_KEY, or one derived from SECRET_KEY when that is
unset (`manage.py check --deploy` warns about the latter). Models keep the
ciphertext in a plain column and decrypt only when the secret is used, so a
changed key breaks the one operation that needs it, not every page that lists
the row.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "fernet:"


@lru_cache(maxsize=4)
def _fernet(key: str, secret_key: str) -> Fernet:
    if key:
        try:
            return Fernet(key.encode())
        except ValueError as exc:
            raise ImproperlyConfigured(
                "FIELD_ENCRYPTION_KEY is not a valid Fernet key (32 url-safe base64 bytes)."
            ) from exc
    derived = hashlib.sha256(b"apintake-field-encryption:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def fernet() -> Fernet:
    return _fernet(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return PREFIX + fernet().encrypt(plaintext.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored:
        return ""
    try:
        return fernet().decrypt(stored.removeprefix(PREFIX).encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted: FIELD_ENCRYPTION_KEY (or SECRET_KEY) "
            "changed since it was saved. Enter the secret again."
        ) from exc
