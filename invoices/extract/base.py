"""The shape every extractor returns, and the one error type they raise.

Fields follow the EN 16931 semantic model; the BT-/BG- numbers are noted next
to each. Amounts are Decimal, never float. An extractor never returns a
half-filled object silently: what it could not read is None, and what it
guessed carries a confidence below 1.0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal


class InvalidInvoice(Exception):
    """The file is not an invoice we can read. The message is shown to users as is."""


@dataclass
class ExtractedLine:
    """One invoice line (BG-25)."""

    line_id: str = ""  # BT-126
    name: str = ""  # BT-153
    quantity: Decimal | None = None  # BT-129
    unit_code: str = ""  # BT-130
    net_price: Decimal | None = None  # BT-146
    line_amount: Decimal | None = None  # BT-131
    vat_category: str = ""  # BT-151
    vat_rate: Decimal | None = None  # BT-152


@dataclass
class VatBreakdown:
    """One VAT breakdown row (BG-23)."""

    category: str = ""  # BT-118
    rate: Decimal | None = None  # BT-119
    taxable_amount: Decimal | None = None  # BT-116
    tax_amount: Decimal | None = None  # BT-117
    exemption_reason: str = ""  # BT-120
    exemption_reason_code: str = ""  # BT-121 (VATEX code list)


@dataclass
class ExtractedInvoice:
    """What an extractor read from one file."""

    format: str  # ubl | cii | facturx | zugferd1 | csv | pdf-text | image (no OCR ran); pdf-ocr is set after OCR
    invoice_number: str = ""  # BT-1
    issue_date: dt.date | None = None  # BT-2
    type_code: str = ""  # BT-3 as written (380, 381, ...)
    type: str = "invoice"  # "invoice" or "credit_note", derived from BT-3 / document root
    currency: str = ""  # BT-5
    due_date: dt.date | None = None  # BT-9
    buyer_reference: str = ""  # BT-10
    purchase_order_reference: str = ""  # BT-13
    seller_name: str = ""  # BT-27
    seller_vat_id: str = ""  # BT-31
    seller_tax_registration_id: str = ""  # BT-32
    seller_country: str = ""  # BT-40
    buyer_country: str = ""  # BT-55
    buyer_name: str = ""  # BT-44
    buyer_vat_id: str = ""  # BT-48
    payment_iban: str = ""  # BT-84
    line_total: Decimal | None = None  # BT-106 sum of line net amounts
    allowance_total: Decimal | None = None  # BT-107
    charge_total: Decimal | None = None  # BT-108
    total_net: Decimal | None = None  # BT-109
    tax_total: Decimal | None = None  # BT-110
    total_gross: Decimal | None = None  # BT-112
    prepaid_amount: Decimal | None = None  # BT-113
    rounding_amount: Decimal | None = None  # BT-114
    amount_due: Decimal | None = None  # BT-115
    vat_breakdown: list[VatBreakdown] = field(default_factory=list)
    lines: list[ExtractedLine] = field(default_factory=list)
    # Per-field confidence in [0, 1]; structured formats give 1.0 for what they read.
    confidence: dict[str, float] = field(default_factory=dict)
    # Things a person should know that do not stop extraction.
    warnings: list[str] = field(default_factory=list)
    # The structured XML the data came from (embedded XML for PDFs), if any.
    xml: bytes | None = None
    # Profile or customization id (Factur-X profile, CustomizationID), if stated.
    profile: str = ""


class Extractor:
    """One file format. Subclasses implement `can_handle` and `extract`."""

    format: str = ""

    def can_handle(self, content: bytes) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def extract(self, content: bytes) -> ExtractedInvoice:  # pragma: no cover - interface
        raise NotImplementedError

    def detected_format(self, content: bytes) -> str:
        """The format `extract` will report for content this extractor handles.

        Usually `format`; a container format (a PDF with embedded XML) may refine it.
        """
        return self.format
