"""Who sent an invoice and which number it carries, as the duplicate rules compare them.

Kept on every invoice (`seller_key`, `number_key`) so the rules find earlier
invoices of the same seller through an index instead of normalising every row
in SQL.
"""

from __future__ import annotations

import re

from stdnum import iban, numdb, vatin
from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.util import get_cc_module


def normalise_vat_id(value: str) -> str:
    """A VAT id as compared: upper case, without spaces, dots and dashes ('de 136.695.976' -> 'DE136695976')."""
    return "".join(value.split()).replace(".", "").replace("-", "").upper()


def normalise_invoice_number(value: str) -> str:
    """An invoice number as compared: no whitespace, case-folded (' r 2024-01 ' == 'R2024-01')."""
    return "".join(value.split()).casefold()


def seller_key_for(vat_id: str, name: str) -> str:
    """The normalised VAT id, else the case-folded name; '' when neither is known."""
    vat_id = normalise_vat_id(vat_id)
    if vat_id:
        return f"vat:{vat_id}"
    name = " ".join(name.split()).casefold()
    return f"name:{name}" if name else ""


# -- well-formed identifiers (python-stdnum): one answer for the vendor master and the validation rules


def _vat_country(number: str, country: str) -> tuple[str, str] | None:
    """(country code, number with that prefix) for a VAT id, or None when the country is unknown.

    VAT ids start with their country code ('DE…', 'EL…' for Greece, 'CHE…' for
    Switzerland); one without a prefix is read with the given country.
    """
    prefix = number[:2]
    if prefix.isalpha():
        return {"EL": "GR", "XI": "GB"}.get(prefix, prefix), number
    if len(country) == 2 and country.isalpha():
        return country.upper(), country.upper() + number
    return None


def _has_vat_module(country: str) -> bool:
    try:
        return get_cc_module(country.lower(), "vat") is not None
    except ImportError:  # pragma: no cover - get_cc_module returns None for unknown countries
        return False


def vat_id_problem(value: str, *, country: str = "", what: str = "VAT id") -> str | None:
    """Why the VAT id `value` is wrong (a sentence naming it as `what`), or None when it is right,
    empty, or of a country python-stdnum does not know. `country` reads a number without prefix."""
    number = normalise_vat_id(value)
    located = _vat_country(number, country) if number else None
    if located is None or not _has_vat_module(located[0]):
        return None
    try:
        vatin.validate(located[1])
    except InvalidChecksum:
        return f"The {what} {value} has wrong check digits."
    except ValidationError as exc:
        return f"The {what} {value} is not a valid {located[0]} VAT id: {_lower_first(exc.message)}"
    return None


IBAN_SHAPE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")


def normalise_iban(value: str) -> str:
    """An IBAN as stored and compared: no spaces, upper case."""
    return "".join(value.split()).upper()


def iban_problem(value: str) -> str | None:
    """Why the account `value` is not a valid IBAN (a sentence), or None when it is one, is empty,
    or does not start with two letters (a national account number, not checked)."""
    account = normalise_iban(value)
    if not account[:2].isalpha():
        return None
    if not IBAN_SHAPE.fullmatch(account):
        return (
            f"The payment account '{value}' is not an IBAN (a country code, "
            "two check digits and up to 30 letters and digits)."
        )
    if not numdb.get("iban").info(account[:2] + "00")[0][1]:  # not in python-stdnum's IBAN registry
        return f"The IBAN {value} starts with {account[:2]}, which is not a country that uses IBANs."
    try:
        iban.validate(account)
    except InvalidChecksum:
        return f"The IBAN {value} has wrong check digits; a payment to it would fail."
    except ValidationError as exc:
        return f"The IBAN {value} is not valid for {account[:2]}: {_lower_first(exc.message)}"
    return None


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
