"""Check digits of the seller's VAT id (BT-31) and of the IBAN to pay to (BT-84), with python-stdnum."""

from __future__ import annotations

import re

from stdnum import iban, numdb, vatin
from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.util import get_cc_module

from invoices.identity import normalise_vat_id
from invoices.models import Invoice
from invoices.validation.base import Finding, Rule

IBAN_SHAPE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")


def _vat_country(number: str, seller_country: str) -> tuple[str, str] | None:
    """(country code, number with that prefix) for a VAT id, or None when the country is unknown.

    VAT ids start with their country code ('DE…', 'EL…' for Greece, 'CHE…' for
    Switzerland); one without a prefix is read with the seller's country (BT-40).
    """
    prefix = number[:2]
    if prefix.isalpha():
        country = {"EL": "GR", "XI": "GB"}.get(prefix, prefix)
        return country, number
    if len(seller_country) == 2 and seller_country.isalpha():
        return seller_country.upper(), seller_country.upper() + number
    return None


def _has_vat_module(country: str) -> bool:
    try:
        return get_cc_module(country.lower(), "vat") is not None
    except ImportError:  # pragma: no cover - get_cc_module returns None for unknown countries
        return False


class SellerVatIdRule(Rule):
    code = "seller.vat_id_checksum"
    description = (
        "The seller VAT id (BT-31) is well formed and its check digits are right (python-stdnum, all "
        "EU countries and many others). A VAT id of a country python-stdnum does not know is not "
        "checked."
    )

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        number = normalise_vat_id(invoice.seller_vat_id)
        if not number:
            return []
        located = _vat_country(number, invoice.seller_country)
        if located is None or not _has_vat_module(located[0]):
            return []
        try:
            vatin.validate(located[1])
        except InvalidChecksum:
            return [self.finding(f"The seller VAT id {invoice.seller_vat_id} has wrong check digits.")]
        except ValidationError as exc:
            return [
                self.finding(
                    f"The seller VAT id {invoice.seller_vat_id} is not a valid {located[0]} VAT id: "
                    f"{_lower_first(exc.message)}"
                )
            ]
        return []


class IbanRule(Rule):
    code = "payment.iban_checksum"
    description = (
        "The IBAN to pay to (BT-84) has a known country, the right length and correct check digits. "
        "Account numbers that do not start with two letters (national account numbers) are not "
        "checked."
    )

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:
        account = "".join(invoice.payment_iban.split()).upper()
        if not account[:2].isalpha():
            return []
        if not IBAN_SHAPE.fullmatch(account):
            return [
                self.finding(
                    f"The payment account '{invoice.payment_iban}' is not an IBAN (a country code, "
                    "two check digits and up to 30 letters and digits)."
                )
            ]
        if not _is_iban_country(account[:2]):
            return [
                self.finding(
                    f"The IBAN {invoice.payment_iban} starts with {account[:2]}, "
                    "which is not a country that uses IBANs."
                )
            ]
        try:
            iban.validate(account)
        except InvalidChecksum:
            return [
                self.finding(f"The IBAN {invoice.payment_iban} has wrong check digits; a payment to it would fail.")
            ]
        except ValidationError as exc:
            return [
                self.finding(
                    f"The IBAN {invoice.payment_iban} is not valid for {account[:2]}: {_lower_first(exc.message)}"
                )
            ]
        return []


def _is_iban_country(country: str) -> bool:
    """Is this one of the countries in python-stdnum's IBAN registry?"""
    return bool(numdb.get("iban").info(country + "00")[0][1])


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
