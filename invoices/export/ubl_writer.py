"""Invoices as UBL 2.1 documents (EN 16931 syntax binding), one XML file per invoice, zipped for a batch.

An invoice becomes an `Invoice` document, a credit note a `CreditNote` document.
The elements follow the order the UBL 2.1 schema prescribes. Only what we store
is written; what UBL or EN 16931 require and we lack is derived, never guessed:
the VAT breakdown is computed from the lines when the source had none (as EN
16931 defines it), a quantity without a unit gets C62 ("one"), and an invoice
whose lines were not read gets lines that state its net amounts per VAT rate,
named "Not itemised in the source".
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from lxml import etree

from invoices.export.values import number_text, ordered, sorted_lines
from invoices.extract.common import CREDIT_NOTE_TYPE_CODES
from invoices.models import Invoice, InvoiceLine, InvoiceType
from invoices.money import money_text, round_cents, stored_amount

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
EN16931_CUSTOMIZATION = "urn:cen.eu:en16931:2017"
DEFAULT_UNIT = "C62"  # UN/ECE Recommendation 20: "one" (unit)
# UNTDID 4461: 58 = SEPA credit transfer, 30 = credit transfer, 1 = instrument not defined.
SEPA_CREDIT_TRANSFER, CREDIT_TRANSFER, NOT_DEFINED = "58", "30", "1"
# Characters XML 1.0 cannot carry; a supplier's text may contain them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class UblExportError(ValueError):
    """An invoice lacks what a UBL document must state. The message names the invoice and the fields."""


@dataclass(frozen=True)
class _VatRow:
    category: str
    rate: Decimal | None
    taxable_amount: Decimal | None
    tax_amount: Decimal
    exemption_reason: str = ""
    exemption_reason_code: str = ""


def ubl_invoice_xml(invoice: Invoice) -> bytes:
    """One invoice as a UBL 2.1 Invoice (or CreditNote) document, UTF-8 bytes.

    Raises UblExportError when the number, issue date, currency or an amount due
    is missing, since no UBL document can be written without them.
    """
    _require(invoice)
    credit_note = invoice.type == InvoiceType.CREDIT_NOTE
    namespace = CREDIT_NOTE_NS if credit_note else INVOICE_NS
    root = etree.Element(
        f"{{{namespace}}}{'CreditNote' if credit_note else 'Invoice'}", nsmap={None: namespace, "cac": CAC, "cbc": CBC}
    )
    writer = _Writer(invoice.currency)
    writer.text(root, "CustomizationID", EN16931_CUSTOMIZATION)  # BT-24
    writer.text(root, "ID", invoice.invoice_number)  # BT-1
    writer.text(root, "IssueDate", invoice.issue_date.isoformat())  # BT-2
    if invoice.due_date and not credit_note:
        writer.text(root, "DueDate", invoice.due_date.isoformat())  # BT-9 (a CreditNote has it on PaymentMeans)
    writer.text(root, "CreditNoteTypeCode" if credit_note else "InvoiceTypeCode", _type_code(invoice))  # BT-3
    writer.text(root, "DocumentCurrencyCode", invoice.currency)  # BT-5
    writer.text(root, "BuyerReference", invoice.buyer_reference)  # BT-10
    if invoice.purchase_order_reference:
        writer.text(writer.group(root, "OrderReference"), "ID", invoice.purchase_order_reference)  # BT-13
    _party(
        writer,
        root,
        "AccountingSupplierParty",
        name=invoice.seller_name,
        vat_id=invoice.seller_vat_id,
        country=invoice.seller_country,
    )  # BG-4
    _party(
        writer,
        root,
        "AccountingCustomerParty",
        name=invoice.buyer_name,
        vat_id=invoice.buyer_vat_id,
        country=invoice.buyer_country,
    )  # BG-7
    _payment_means(writer, root, invoice, credit_note=credit_note)  # BG-16
    lines = sorted_lines(invoice)
    rows = vat_rows(invoice, lines)
    lines = lines or summary_lines(invoice, rows)
    _document_allowances_and_charges(writer, root, invoice, rows)  # BG-20, BG-21
    _tax_total(writer, root, invoice, rows)  # BT-110, BG-23
    _monetary_total(writer, root, invoice, lines)  # BG-22
    for position, line in enumerate(lines, start=1):
        _line(writer, root, line, position, credit_note=credit_note)  # BG-25
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def write_ubl_zip(invoices: Iterable[Invoice]) -> bytes:
    """A zip of UBL documents, one `<invoice number>.xml` per invoice (ordered by id; prefetch `lines`).

    Member names keep letters, digits, dot, dash and underscore only, so no name can
    reach outside the folder it is unpacked into; a name taken twice gets the
    invoice id appended. The same invoices always give the same bytes.
    """
    buffer = io.BytesIO()
    taken: set[str] = set()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for invoice in ordered(invoices):
            name = member_name(invoice, taken)
            taken.add(name.casefold())
            info = zipfile.ZipInfo(name, date_time=_zip_timestamp(invoice.issue_date))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, ubl_invoice_xml(invoice))
    return buffer.getvalue()


def member_name(invoice: Invoice, taken: set[str]) -> str:
    """'<number>.xml' made safe for any file system; '-<id>' added when the name is already taken."""
    stem = _UNSAFE_NAME.sub("_", invoice.invoice_number).strip("._-")[:100] or f"invoice-{invoice.pk}"
    if f"{stem}.xml".casefold() in taken:
        stem = f"{stem}-{invoice.pk}"
    return f"{stem}.xml"


def _zip_timestamp(issue_date: dt.date | None) -> tuple[int, int, int, int, int, int]:
    # The issue date, not the time of export: the same invoice gives the same bytes. Zip starts at 1980.
    day = max(issue_date or dt.date(1980, 1, 1), dt.date(1980, 1, 1))
    return (day.year, day.month, day.day, 0, 0, 0)


# --- document parts -------------------------------------------------------------------------------------------


class _Writer:
    """Adds cac/cbc elements; every amount gets the document currency as currencyID."""

    def __init__(self, currency: str) -> None:
        self.currency = currency

    def group(self, parent: etree._Element, tag: str) -> etree._Element:
        return etree.SubElement(parent, f"{{{CAC}}}{tag}")

    def text(self, parent: etree._Element, tag: str, value: str, **attributes: str) -> etree._Element | None:
        if not value:
            return None
        element = etree.SubElement(parent, f"{{{CBC}}}{tag}", **attributes)
        element.text = _NOT_XML.sub("", value)
        return element

    def amount(self, parent: etree._Element, tag: str, value: Decimal | None) -> None:
        if value is not None:
            self.text(parent, tag, money_text(value), currencyID=self.currency)


def _require(invoice: Invoice) -> None:
    missing = [
        label
        for label, present in (
            ("invoice number (BT-1)", bool(invoice.invoice_number.strip())),
            ("issue date (BT-2)", invoice.issue_date is not None),
            ("currency (BT-5)", bool(invoice.currency.strip())),
            (
                "amount due (BT-115) or total with VAT (BT-112)",
                invoice.amount_due is not None or invoice.total_gross is not None,
            ),
        )
        if not present
    ]
    if missing:
        raise UblExportError(
            f"Invoice {invoice.pk} ({invoice.original_filename}) cannot be written as UBL: "
            f"the {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing."
        )


def _type_code(invoice: Invoice) -> str:
    """BT-3 as received when it fits the document kind, else 380 (invoice) or 381 (credit note)."""
    credit_note = invoice.type == InvoiceType.CREDIT_NOTE
    code = invoice.type_code.strip()
    if code.isdigit() and (code in CREDIT_NOTE_TYPE_CODES) == credit_note:
        return code
    return "381" if credit_note else "380"


def _party(writer: _Writer, root: etree._Element, role: str, *, name: str, vat_id: str, country: str) -> None:
    party = writer.group(writer.group(root, role), "Party")
    if country:
        address = writer.group(party, "PostalAddress")
        writer.text(writer.group(address, "Country"), "IdentificationCode", country)  # BT-40 / BT-55
    if vat_id:
        tax_scheme = writer.group(party, "PartyTaxScheme")
        writer.text(tax_scheme, "CompanyID", vat_id)  # BT-31 / BT-48
        writer.text(writer.group(tax_scheme, "TaxScheme"), "ID", "VAT")
    if name:
        writer.text(writer.group(party, "PartyLegalEntity"), "RegistrationName", name)  # BT-27 / BT-44


def _payment_means(writer: _Writer, root: etree._Element, invoice: Invoice, *, credit_note: bool) -> None:
    due_here = credit_note and invoice.due_date is not None
    if not invoice.payment_iban and not due_here:
        return
    means = writer.group(root, "PaymentMeans")
    if not invoice.payment_iban:
        code = NOT_DEFINED  # a transfer code would promise an account (BR-61)
    elif invoice.currency == "EUR" and invoice.payment_iban[:2].isalpha():
        code = SEPA_CREDIT_TRANSFER
    else:
        code = CREDIT_TRANSFER
    writer.text(means, "PaymentMeansCode", code)  # BT-81
    if due_here:
        writer.text(means, "PaymentDueDate", invoice.due_date.isoformat())  # BT-9
    if invoice.payment_iban:
        account = writer.group(means, "PayeeFinancialAccount")
        writer.text(account, "ID", "".join(invoice.payment_iban.split()))  # BT-84


def vat_rows(invoice: Invoice, lines: list[InvoiceLine]) -> list[_VatRow]:
    """The stored VAT breakdown; when there is none, one row per VAT category and rate of the lines.

    Computed rows follow EN 16931: the rate applied to the sum of the lines of that
    category and rate, rounded half up to cents once per row.
    """
    stored = [row for row in invoice.vat_breakdown or [] if isinstance(row, dict)]
    if stored:
        rows = []
        for row in stored:
            tax = stored_amount(row.get("tax_amount"))
            if tax is None:
                continue
            rows.append(
                _VatRow(
                    category=str(row.get("category") or ""),
                    rate=stored_amount(row.get("rate")),
                    taxable_amount=stored_amount(row.get("taxable_amount")),
                    tax_amount=tax,
                    exemption_reason=str(row.get("exemption_reason") or ""),
                    exemption_reason_code=str(row.get("exemption_reason_code") or ""),
                )
            )
        return rows
    groups: dict[tuple[str, Decimal], Decimal] = {}
    for line in lines:
        if line.vat_rate is None or line.line_amount is None:
            return []  # a line without a rate: the breakdown cannot be computed
        key = (line.vat_category, line.vat_rate)
        groups[key] = groups.get(key, Decimal(0)) + line.line_amount
    return [
        _VatRow(category=category, rate=rate, taxable_amount=base, tax_amount=round_cents(base * rate / 100))
        for (category, rate), base in groups.items()
    ]


def summary_lines(invoice: Invoice, rows: list[_VatRow]) -> list[InvoiceLine]:
    """Lines standing in for an invoice whose lines were not read (PDF text, Factur-X MINIMUM / BASIC WL).

    UBL requires at least one line. Each VAT rate's taxable amount becomes one line
    named as not itemised; with document allowances or charges (which the taxable
    amounts include) or without a breakdown, one line carries the sum of lines
    (BT-106), else the net total adjusted by them. Unsaved rows, never stored.
    """
    adjusted = bool(invoice.allowance_total) or bool(invoice.charge_total)
    if rows and not adjusted and all(row.taxable_amount is not None for row in rows):
        return [
            _summary_line(position, row.taxable_amount, row.category, row.rate)
            for position, row in enumerate(rows, start=1)
        ]
    amount = invoice.line_total
    if amount is None and invoice.total_net is not None:
        amount = invoice.total_net + (invoice.allowance_total or 0) - (invoice.charge_total or 0)
    if amount is None:
        raise UblExportError(
            f"Invoice {invoice.pk} ({invoice.original_filename}) cannot be written as UBL: it "
            "has no lines and no total without VAT (BT-109) to state as a line."
        )
    only = rows[0] if len(rows) == 1 else None
    return [_summary_line(1, amount, only.category if only else "", only.rate if only else None)]


def _summary_line(position: int, amount: Decimal, category: str, rate: Decimal | None) -> InvoiceLine:
    at_rate = f" at {number_text(rate)} % VAT" if rate is not None else ""
    # EN 16931 forbids a negative price (BR-27): a negative amount is a quantity of -1.
    return InvoiceLine(
        position=position,
        line_id=str(position),
        name=f"Not itemised in the source: net amount{at_rate}",
        quantity=Decimal(1) if amount >= 0 else Decimal(-1),
        unit_code=DEFAULT_UNIT,
        net_price=abs(amount),
        line_amount=amount,
        vat_category=category,
        vat_rate=rate,
    )


def _document_allowances_and_charges(
    writer: _Writer, root: etree._Element, invoice: Invoice, rows: list[_VatRow]
) -> None:
    """BT-107 and BT-108 restated as one allowance and one charge group, as EN 16931 requires them backed.

    We keep the sums, not each allowance; the VAT category is known only when the
    invoice has a single VAT rate.
    """
    only = rows[0] if len(rows) == 1 else None
    for is_charge, amount in ((False, invoice.allowance_total), (True, invoice.charge_total)):
        if not amount:
            continue
        group = writer.group(root, "AllowanceCharge")
        writer.text(group, "ChargeIndicator", "true" if is_charge else "false")
        writer.text(
            group,
            "AllowanceChargeReason",
            "Document level charges (total)" if is_charge else "Document level allowances (total)",
        )
        writer.amount(group, "Amount", amount)  # BT-99 / BT-92
        if only is not None:
            category = writer.group(group, "TaxCategory")
            _tax_category(writer, category, only.category, only.rate)  # BT-102/103, BT-95/96
            writer.text(writer.group(category, "TaxScheme"), "ID", "VAT")


def _tax_total(writer: _Writer, root: etree._Element, invoice: Invoice, rows: list[_VatRow]) -> None:
    tax_total = invoice.tax_total
    if tax_total is None:
        tax_total = sum((row.tax_amount for row in rows), Decimal(0))
    total = writer.group(root, "TaxTotal")
    writer.amount(total, "TaxAmount", tax_total)  # BT-110
    for row in rows:
        subtotal = writer.group(total, "TaxSubtotal")
        writer.amount(subtotal, "TaxableAmount", row.taxable_amount)  # BT-116
        writer.amount(subtotal, "TaxAmount", row.tax_amount)  # BT-117
        category = writer.group(subtotal, "TaxCategory")
        _tax_category(writer, category, row.category, row.rate)  # BT-118, BT-119
        writer.text(category, "TaxExemptionReasonCode", row.exemption_reason_code)  # BT-121
        writer.text(category, "TaxExemptionReason", row.exemption_reason)  # BT-120
        writer.text(writer.group(category, "TaxScheme"), "ID", "VAT")


def _tax_category(writer: _Writer, element: etree._Element, category: str, rate: Decimal | None) -> None:
    # ZUGFeRD 1.0 BASIC states rates without categories; a positive rate can only be standard rated.
    code = category.strip() or ("S" if rate is not None and rate > 0 else "")
    writer.text(element, "ID", code)
    if rate is not None and code != "O":  # "not subject to VAT" has no rate at all (BR-O-05 to BR-O-07)
        writer.text(element, "Percent", number_text(rate))


def _monetary_total(writer: _Writer, root: etree._Element, invoice: Invoice, lines: list[InvoiceLine]) -> None:
    line_total = invoice.line_total
    if line_total is None and lines and all(line.line_amount is not None for line in lines):
        line_total = sum((line.line_amount for line in lines), Decimal(0))
    total = writer.group(root, "LegalMonetaryTotal")
    writer.amount(total, "LineExtensionAmount", line_total)  # BT-106
    writer.amount(total, "TaxExclusiveAmount", invoice.total_net)  # BT-109
    writer.amount(total, "TaxInclusiveAmount", invoice.total_gross)  # BT-112
    writer.amount(total, "AllowanceTotalAmount", invoice.allowance_total)  # BT-107
    writer.amount(total, "ChargeTotalAmount", invoice.charge_total)  # BT-108
    writer.amount(total, "PrepaidAmount", invoice.prepaid_amount)  # BT-113
    writer.amount(total, "PayableRoundingAmount", invoice.rounding_amount)  # BT-114
    due = invoice.amount_due if invoice.amount_due is not None else invoice.total_gross
    writer.amount(total, "PayableAmount", due)  # BT-115


def _line(writer: _Writer, root: etree._Element, line: InvoiceLine, position: int, *, credit_note: bool) -> None:
    element = writer.group(root, "CreditNoteLine" if credit_note else "InvoiceLine")
    writer.text(element, "ID", line.line_id or str(position))  # BT-126
    quantity, price = line.quantity, line.net_price
    if price is not None and price < 0 and quantity is not None:
        quantity, price = -quantity, -price  # EN 16931 forbids negative prices (BR-27), not negative quantities
    if quantity is not None:
        writer.text(
            element,
            "CreditedQuantity" if credit_note else "InvoicedQuantity",
            number_text(quantity),
            unitCode=line.unit_code or DEFAULT_UNIT,
        )  # BT-129, BT-130
    amount = line.line_amount
    if amount is None and line.quantity is not None and line.net_price is not None:
        amount = round_cents(line.quantity * line.net_price)
    if amount is None:
        raise UblExportError(
            f"Invoice {line.invoice_id}, line {line.line_id or position}: no net amount "
            "(BT-131) and no quantity and price to compute it from."
        )
    writer.amount(element, "LineExtensionAmount", amount)  # BT-131
    item = writer.group(element, "Item")
    writer.text(item, "Name", line.name)  # BT-153
    if line.vat_category or line.vat_rate is not None:
        category = writer.group(item, "ClassifiedTaxCategory")
        _tax_category(writer, category, line.vat_category, line.vat_rate)  # BT-151, BT-152
        writer.text(writer.group(category, "TaxScheme"), "ID", "VAT")
    if price is not None:
        writer.text(
            writer.group(element, "Price"), "PriceAmount", number_text(price), currencyID=writer.currency
        )  # BT-146
