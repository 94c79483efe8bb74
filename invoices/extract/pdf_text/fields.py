"""Heuristics for the header fields of a plain PDF invoice: number, dates, currency, seller, document type.

Each `find_*` function takes the text of the invoice and returns a `Found` (value and
confidence) or None.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterator

from invoices.extract.pdf_text.values import (
    CONFIRMED,
    GUESS,
    Found,
    compile_pattern,
    find_dates,
    first_date_after,
    label,
    lines_with_offsets,
)

# --- invoice number -------------------------------------------------------------------------------

_INVOICE_NUMBER_VALUE = r"(?P<number>[A-Z0-9](?:[A-Z0-9]|[-/_.](?=[A-Z0-9])){1,39})"
_INVOICE_NUMBER_LABELS = compile_pattern(
    label(
        r"Rechnungsnummer|Rechnungs-?Nr\.?|Rechnung\s+Nr\.?|Rechnungs-Nummer|Re\.-?Nr\.?|Rechnung\s*#"
        r"|Belegnummer|Beleg-?Nr\.?|Beleg\s+Nr\.?|Gutschriftsnummer|Gutschrift\s+Nr\.?"
        r"|Invoice\s+(?:number|no\.?|nr\.?|#|id)|Invoice\s*#|Inv\.\s*No\.?|Credit\s+note\s+(?:number|no\.?)"
        r"|Num[ée]ro\s+de\s+facture|N[°o]\s*(?:de\s+)?facture|Facture\s+n[°o]\.?|N[°o]\s*d['\u2019]avoir|Avoir\s+n[°o]"
    )
    + r"[ \t]*[:.#]?[ \t]*"
    + _INVOICE_NUMBER_VALUE
)
# "Rechnung R0005532486", "Invoice FA-2017-0008", "Avoir AV-2017-0005" as a document title.
_TITLE_NUMBER = compile_pattern(
    r"^\s*(?:Rechnung|Invoice|Facture|Avoir|Gutschrift|Credit\s+note|Rechnungskorrektur)"
    r"[ \t]+(?:Nr\.?[ \t]*|No\.?[ \t]*|#[ \t]*)?" + _INVOICE_NUMBER_VALUE + r"(?![\w/.-])"
)


def _is_invoice_number(token: str) -> bool:
    return (
        any(ch.isdigit() for ch in token) and not find_dates(token) and not re.fullmatch(r"\d{1,2}|\d+[.,]\d{2}", token)
    )


def find_invoice_number(text: str) -> Found[str] | None:
    """The invoice number after a label ('Rechnungsnummer', 'Invoice No', 'N° de facture'), or in the title."""
    for regex, confidence in ((_INVOICE_NUMBER_LABELS, CONFIRMED), (_TITLE_NUMBER, 0.7)):
        for match in regex.finditer(text):
            token = match.group("number")
            if _is_invoice_number(token):
                return Found(token, confidence, match.start())
    return None


# --- dates ----------------------------------------------------------------------------------------

_ISSUE_DATE_LABELS = compile_pattern(
    label(
        r"Rechnungsdatum|Rechnungs-Datum|Datum\s+der\s+Rechnung|Belegdatum|Beleg-Datum|Ausstellungsdatum"
        r"|Ausgestellt\s+am|Gutschriftsdatum"
        r"|Invoice\s+date|Date\s+of\s+invoice|Issue\s+date|Date\s+of\s+issue|Issued\s+(?:on|at)|Billing\s+date"
        r"|Credit\s+note\s+date|Date\s+de\s+(?:la\s+)?facture|Date\s+facture|Date\s+d['\u2019][ée]mission|[ÉE]mise?\s+le"
    )
)
_GENERIC_DATE_LABEL = compile_pattern(r"^\s*(?:Datum|Date)\s*:?")
# Lines whose dates are not the issue date (delivery, order, period, due).
_OTHER_DATE_CONTEXT = compile_pattern(
    r"Liefer|Leistung|Bestell|Auftrag|f[äa]llig|Zeitraum|bis|due|delivery|order|period|[ée]ch[ée]ance|livraison"
    r"|commande|Stand"
)


def find_issue_date(text: str, *, slash_order: str = "dmy") -> Found[dt.date] | None:
    """The invoice date: after an issue-date label; else after the invoice number; else the first date."""
    labelled = first_date_after(text, _ISSUE_DATE_LABELS, slash_order)
    if labelled:
        return Found(labelled[0], CONFIRMED, labelled[1])
    generic = first_date_after(text, _GENERIC_DATE_LABEL, slash_order)
    if generic:
        return Found(generic[0], 0.7, generic[1])
    number = find_invoice_number(text)
    if number is not None:
        line_end = text.find("\n", number.position)
        line = text[number.position : line_end if line_end >= 0 else len(text)]
        dates = find_dates(line, slash_order=slash_order)
        if dates:
            return Found(dates[0][0], 0.7, number.position + dates[0][1])
    for offset, line in lines_with_offsets(text):
        dates = find_dates(line, slash_order=slash_order)
        if dates and not _OTHER_DATE_CONTEXT.search(line):
            return Found(dates[0][0], 0.4, offset + dates[0][1])
    return None


_DUE_DATE_LABELS = compile_pattern(
    label(
        r"F[äa]lligkeitsdatum|F[äa]lligkeitstag|F[äa]lligkeit|F[äa]llig\s+am|Zahlungsziel|Zahlbar\s+bis|Zahlungstermin"
        r"|Due\s+date|Payment\s+due(?:\s+date)?|Due\s+on|Pay\s+by|Payable\s+by|Please\s+pay\s+by|remit\s+(?:until|by)"
        r"|Date\s+d['\u2019][ée]ch[ée]ance|[ÉE]ch[ée]ance|[AÀ]\s+payer\s+avant\s+le|Payable\s+avant\s+le"
    )
)
# "Zahlbar innerhalb 30 Tagen netto bis 04.04.2013", "Bitte überweisen Sie bis zum 09.12.2017".
_PAYMENT_UNTIL = compile_pattern(
    r"(?:zahlbar|[üu]berweisen|Zahlung|netto)\b[^\n]{0,40}?\bbis(?:\s+zum|\s+sp[äa]testens)?"
)


def find_due_date(text: str, *, slash_order: str = "dmy") -> Found[dt.date] | None:
    """The payment due date after a due-date label, or in a 'payable until' sentence."""
    labelled = first_date_after(text, _DUE_DATE_LABELS, slash_order)
    if labelled:
        return Found(labelled[0], 0.85, labelled[1])
    sentence = first_date_after(text, _PAYMENT_UNTIL, slash_order)
    if sentence:
        return Found(sentence[0], 0.6, sentence[1])
    return None


# --- currency -------------------------------------------------------------------------------------

ISO_CURRENCIES = (
    "EUR",
    "USD",
    "GBP",
    "CHF",
    "SEK",
    "NOK",
    "DKK",
    "PLN",
    "CZK",
    "HUF",
    "RON",
    "BGN",
    "ISK",
    "TRY",
    "JPY",
    "CNY",
    "CAD",
    "AUD",
    "NZD",
    "SGD",
    "HKD",
    "INR",
    "ZAR",
    "MXN",
    "BRL",
)
_CURRENCY_SYMBOLS = {"€": "EUR", "£": "GBP", "$": "USD", "¥": "JPY"}
_CURRENCY_LABEL = compile_pattern(
    label(r"W[äa]hrung|Currency|Devise|(?:Alle\s+)?Betr[äa]ge\s+in|Amounts\s+in|Montants\s+en")
    + rf"\s*:?\s*(?P<code>{'|'.join(ISO_CURRENCIES)})\b"
)
_CURRENCY_CODE = re.compile(rf"(?<![A-Za-z])(?:{'|'.join(ISO_CURRENCIES)})(?![A-Za-z])")


def find_currency(text: str) -> Found[str] | None:
    """The invoice currency: a 'Currency: EUR' label, else the code or symbol used most often."""
    labelled = _CURRENCY_LABEL.search(text)
    if labelled:
        return Found(labelled.group("code").upper(), 0.95, labelled.start())
    seen: Counter[str] = Counter(match.group() for match in _CURRENCY_CODE.finditer(text))
    for symbol, code in _CURRENCY_SYMBOLS.items():
        seen[code] += text.count(symbol)
    seen = Counter({code: count for code, count in seen.items() if count})
    if not seen:
        return None
    code, _ = seen.most_common(1)[0]
    # A lone "$" may be any dollar; several currencies on one invoice need a look.
    sure = len(seen) == 1 and not (code == "USD" and "USD" not in text)
    return Found(code, 0.85 if sure else GUESS)


# --- seller name ----------------------------------------------------------------------------------

_LEGAL_FORM_ANY_CASE = (
    r"GmbH(?:\s*&\s*Co\.?\s*KG(?:aA)?)?|gGmbH|mbH|e\.\s?K\.|e\.\s?V\.|a\.\s?G\.|GbR|OHG|KGaA|UG(?:\s*\(haftungsbeschränkt\))?"
    r"|S\.?A\.?R\.?L\.?|SASU|EURL|Ltd\.?|Limited|LLC|L\.L\.C\.|Inc\.?|Corp\.?|Corporation|PLC|LLP"
    r"|S\.r\.l\.|S\.p\.A\.|B\.V\.|N\.V\.|Sp\.\s?z\s?o\.o\.|s\.r\.o\.|Oyj|ApS"
)
_LEGAL_FORM_UPPER = r"AG|KG|SA|SAS|SE|AS|ASA|AB|BV|NV|Oy|SpA|Srl|SNC|A/S|Kft\.?"
_COMPANY_CELL = re.compile(
    rf"(?P<name>[^\W_][\w&.,'\u2019+ -]{{0,70}}?\s(?:(?i:{_LEGAL_FORM_ANY_CASE})|(?:{_LEGAL_FORM_UPPER})))\.?"
)
_NOT_A_SELLER = compile_pattern(r"\b(?:bank|banque|sparkasse|volksbank|raiffeisen|kasse|post|finanzamt)\w*")
_CELL_SEPARATORS = re.compile(r"\s{2,}|\s*[•●|·]\s*|\s+[-\u2013]\s+|,\s+")
_SELLER_LABEL_LINE = compile_pattern(
    r"^\s*(?:Rechnungsersteller|Rechnungssteller|Lieferant|Verk[äa]ufer|Leistungserbringer|Auftragnehmer"
    r"|Seller|Supplier|Vendor|Sold\s+by|Issuer|Fournisseur|Vendeur|[ÉE]metteur|Prestataire)(?![\w-])"
    # The label alone on its line, or followed by a colon: "Lieferant GmbH" is a name, not a label.
    r"\s*(?::\s*(?P<rest>.*)|$)"
)
_BUYER_LABEL_LINE = compile_pattern(
    r"^\s*(?:Rechnungsempf[äa]nger|K[äa]ufer|Kunde|Rechnungsadresse|Lieferadresse|Lieferanschrift|Warenempf[äa]nger"
    r"|Bill\s+to|Billing\s+address|Ship\s+to|Delivery\s+address|Customer|Sold\s+to|Client|Adresse\s+de\s+livraison"
    r"|Adresse\s+de\s+facturation|Destinataire|Factur[ée]\s+[àa]|Livr[ée]\s+[àa])\b"
)
_DOCUMENT_TITLE = compile_pattern(
    r"^\s*(?:Rechnung|Invoice|Facture|Avoir|Gutschrift|Credit\s+note|Seite|Page)(?![\w-])"
)
_NOT_A_NAME_LINE = compile_pattern(r"^\s*(?:GLN|ILN|USt|VAT|TVA|Tel|Fax|Lief-?Nr|Kunden|Steuer|Page|Seite)\b|\d")


def _non_empty_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip()]


def _company_cells(line: str) -> Iterator[str]:
    for cell in _CELL_SEPARATORS.split(line.strip()):
        cell = cell.rsplit(":", 1)[-1].strip()
        match = _COMPANY_CELL.fullmatch(cell)
        if match and not _NOT_A_SELLER.search(cell):
            yield " ".join(match.group("name").split())


def _buyer_block_lines(lines: list[str]) -> set[int]:
    """Indexes of lines that belong to an address block introduced by a buyer label."""
    inside: set[int] = set()
    for index, line in enumerate(lines):
        if _BUYER_LABEL_LINE.match(line):
            inside.update(range(index, index + 5))
    return inside


def _labelled_seller(lines: list[str]) -> Found[str] | None:
    for index, line in enumerate(lines):
        match = _SELLER_LABEL_LINE.match(line)
        if not match:
            continue
        candidates = [match.group("rest") or "", *lines[index + 1 : index + 4]]
        for candidate in candidates:
            name = " ".join(candidate.split())
            if name and re.search(r"[^\W\d_]{2}", name) and not _NOT_A_NAME_LINE.search(name):
                return Found(name, 0.85)
    return None


def _letterhead_name(lines: list[str], index: int, name: str) -> str:
    """A company name at the top of the page may wrap: 'MVM Musterhafter' / 'Versicherungsverein ... a.G.'."""
    if index == 1 and lines[1].strip() == name:
        first = lines[0].strip()
        if (
            re.fullmatch(r"[^\W\d_][^\W\d_ .&'-]*(?: [^\W\d_][^\W\d_.&'-]*){0,4}", first)
            and not _SELLER_LABEL_LINE.match(first)
            and not _BUYER_LABEL_LINE.match(first)
        ):
            return f"{first} {name}"
    return name


def find_seller_name(text: str) -> Found[str] | None:
    """The seller's name: under a seller label ('Lieferant', 'Seller', 'Fournisseur'), else the company
    name (a name ending in a legal form such as GmbH, SARL, Ltd) that the letterhead and footer repeat,
    outside the buyer's address block; else the first line of the page as a guess.
    """
    lines = _non_empty_lines(text)
    if not lines:
        return None
    buyer_lines = _buyer_block_lines(lines)
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    at_page_edge: set[str] = set()
    display: dict[str, str] = {}
    for index, line in enumerate(lines):
        if index in buyer_lines:
            continue
        for name in _company_cells(line):
            name = _letterhead_name(lines, index, name)
            key = name.casefold()
            display.setdefault(key, name)
            counts[key] += 1
            first_seen.setdefault(key, index)
            if index < 5 or index >= len(lines) - 10:
                at_page_edge.add(key)
    labelled = _labelled_seller(lines)
    if labelled is not None:
        confirmed = labelled.value.casefold() in counts
        return Found(labelled.value, CONFIRMED if confirmed else labelled.confidence)
    if counts:

        def score(key: str) -> tuple[float, int]:
            return GUESS + 0.15 * (counts[key] > 1) + 0.1 * (key in at_page_edge), -first_seen[key]

        best = max(counts, key=score)
        return Found(display[best], min(score(best)[0], 0.75), first_seen[best])
    first = " ".join(lines[0].split())
    if (
        re.fullmatch(r"[^\W\d_][^\d:]{1,58}", first)
        and not _BUYER_LABEL_LINE.match(first)
        and not _DOCUMENT_TITLE.match(first)
    ):
        return Found(first, 0.3)
    return None


# --- document type --------------------------------------------------------------------------------

_CREDIT_NOTE_TITLE = compile_pattern(
    r"^\s*(?:Gutschrift|Credit\s+note|Credit\s+memo|Avoir|Note\s+de\s+cr[ée]dit|Facture\s+d['\u2019]avoir)\b"
)


def detect_document_type(text: str) -> str:
    """'credit_note' when a line starts with a credit-note title (Gutschrift, Credit note, Avoir), else 'invoice'."""
    return "credit_note" if _CREDIT_NOTE_TITLE.search(text) else "invoice"
