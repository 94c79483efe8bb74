"""Supplier invoices exported as CSV: one row per invoice line, one invoice per file.

The layout is documented for users in docs/formats.md ("## CSV"). Invoice-level
columns (number, dates, parties, totals) repeat on every row; line columns differ
per row. Headers are matched case-insensitively against a list of aliases in
English, German and French, so exports from common tools work unchanged.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from invoices.extract.base import ExtractedInvoice, ExtractedLine, Extractor, InvalidInvoice, VatBreakdown
from invoices.money import round_cents

# Confidence of a total we computed from the lines instead of reading it.
COMPUTED_CONFIDENCE = 0.9

# Canonical column -> header aliases. Aliases are compared after `normalize_header`.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "invoice_number": (
        "invoice number",
        "invoice no",
        "invoice id",
        "invoice",
        "invoice nr",
        "document number",
        "rechnungsnummer",
        "rechnungsnr",
        "rechnung nr",
        "rechnungs nr",
        "belegnummer",
        "beleg nr",
        "numero de facture",
        "numero facture",
        "no facture",
        "no de facture",
        "facture no",
    ),
    "issue_date": (
        "issue date",
        "invoice date",
        "date",
        "date of issue",
        "rechnungsdatum",
        "belegdatum",
        "datum",
        "date de facture",
        "date facture",
        "date d emission",
    ),
    "due_date": (
        "due date",
        "payment due",
        "payment due date",
        "due",
        "faelligkeitsdatum",
        "fälligkeitsdatum",
        "faellig am",
        "fällig am",
        "zahlungsziel",
        "date d echeance",
        "date echeance",
        "echeance",
        "échéance",
        "date d échéance",
    ),
    "type": ("type", "document type", "invoice type", "belegart", "dokumentart", "type de document"),
    "currency": ("currency", "currency code", "curr", "waehrung", "währung", "devise"),
    "seller_name": (
        "seller name",
        "seller",
        "supplier",
        "supplier name",
        "vendor",
        "vendor name",
        "lieferant",
        "verkaeufer",
        "verkäufer",
        "kreditor",
        "fournisseur",
        "vendeur",
    ),
    "seller_vat_id": (
        "seller vat id",
        "seller vat",
        "seller vat number",
        "supplier vat id",
        "vat id",
        "vat number",
        "vat no",
        "ust idnr",
        "ust id",
        "ustid",
        "ustidnr",
        "umsatzsteuer id",
        "numero tva",
        "no tva",
        "tva intracommunautaire",
    ),
    "buyer_name": (
        "buyer name",
        "buyer",
        "customer",
        "customer name",
        "kaeufer",
        "käufer",
        "kunde",
        "client",
        "acheteur",
    ),
    "payment_iban": ("payment iban", "iban", "seller iban", "supplier iban", "bank iban"),
    "purchase_order_reference": (
        "purchase order reference",
        "purchase order",
        "po",
        "po number",
        "po no",
        "order reference",
        "order number",
        "bestellnummer",
        "bestellung",
        "bestell nr",
        "bon de commande",
        "commande",
        "no commande",
    ),
    "line_id": ("line id", "line", "line no", "line number", "pos", "position", "ligne", "no ligne"),
    "line_name": (
        "line name",
        "description",
        "item",
        "item name",
        "product",
        "name",
        "artikel",
        "bezeichnung",
        "beschreibung",
        "artikelbezeichnung",
        "désignation",
        "libellé",
    ),
    "quantity": ("quantity", "qty", "menge", "anzahl", "quantite", "quantité"),
    "unit_code": ("unit code", "unit", "uom", "einheit", "unite", "unité"),
    "net_price": (
        "net price",
        "unit price",
        "price",
        "item price",
        "einzelpreis",
        "preis",
        "nettopreis",
        "prix unitaire",
        "prix unitaire ht",
        "prix",
    ),
    "line_amount": (
        "line amount",
        "line net amount",
        "line total",
        "amount",
        "net amount",
        "betrag",
        "gesamtpreis",
        "zeilenbetrag",
        "positionsbetrag",
        "montant",
        "montant ht",
    ),
    "vat_category": (
        "vat category",
        "vat category code",
        "tax category",
        "vat code",
        "steuerkategorie",
        "catégorie tva",
    ),
    "vat_rate": (
        "vat rate",
        "tax rate",
        "vat",
        "vat percent",
        "ust satz",
        "mwst satz",
        "steuersatz",
        "ust",
        "mwst",
        "taux tva",
        "tva",
        "taux de tva",
    ),
    "total_net": (
        "total net",
        "net total",
        "invoice total net",
        "total without vat",
        "total excl vat",
        "summe netto",
        "gesamt netto",
        "nettosumme",
        "total ht",
    ),
    "tax_total": (
        "tax total",
        "vat total",
        "total vat",
        "total tax",
        "vat amount",
        "tax amount",
        "summe ust",
        "summe mwst",
        "steuerbetrag",
        "ust betrag",
        "mwst betrag",
        "total tva",
        "montant tva",
    ),
    "total_gross": (
        "total gross",
        "gross total",
        "total with vat",
        "total incl vat",
        "invoice total",
        "total",
        "summe brutto",
        "gesamt brutto",
        "gesamtbetrag",
        "bruttobetrag",
        "rechnungsbetrag",
        "total ttc",
    ),
    "amount_due": (
        "amount due",
        "due amount",
        "payable amount",
        "amount payable",
        "balance due",
        "zahlbetrag",
        "offener betrag",
        "zu zahlen",
        "net a payer",
        "net à payer",
        "montant du",
        "montant dû",
    ),
}

INVOICE_LEVEL_COLUMNS = (
    "invoice_number",
    "issue_date",
    "due_date",
    "type",
    "currency",
    "seller_name",
    "seller_vat_id",
    "buyer_name",
    "payment_iban",
    "purchase_order_reference",
)
LINE_COLUMNS = ("line_id", "line_name", "quantity", "unit_code", "net_price", "line_amount", "vat_category", "vat_rate")
TOTAL_COLUMNS = ("total_net", "tax_total", "total_gross", "amount_due")
DECIMAL_COLUMNS = frozenset({"quantity", "net_price", "line_amount", "vat_rate", *TOTAL_COLUMNS})
DATE_COLUMNS = frozenset({"issue_date", "due_date"})
# A header needs one of these (besides the invoice number) to be taken for an invoice CSV.
AMOUNT_COLUMNS = frozenset({"net_price", "line_amount", *TOTAL_COLUMNS})

VAT_CATEGORIES = frozenset({"S", "Z", "E", "AE", "K", "G", "O", "L", "M", "B"})
CREDIT_NOTE_WORDS = frozenset({"credit_note", "credit note", "creditnote", "credit", "gutschrift", "avoir", "381"})
INVOICE_WORDS = frozenset({"invoice", "rechnung", "facture", "380", ""})
CURRENCY_SYMBOLS = {"€": "EUR", "£": "GBP", "$": "USD", "¥": "JPY"}
CANDIDATE_DELIMITERS = (";", ",", "\t", "|")


def normalize_header(header: str) -> str:
    """Fold a header for alias lookup: 'Invoice No.' / 'invoice_no' / 'INVOICE #' -> 'invoice no'.

    Case, accents, punctuation and underscores do not count: 'Échéance' matches 'echeance'.
    """
    text = header.replace("\ufeff", "").strip().casefold()
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = text.replace("#", " no ").replace("n°", " no ").replace("nº", " no ")
    text = re.sub(r"[^\w]+|_", " ", text)
    return " ".join(text.split())


def _build_alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for column, aliases in COLUMN_ALIASES.items():
        for alias in (column, *aliases):
            key = normalize_header(alias)
            if index.get(key, column) != column:
                raise RuntimeError(f"CSV header alias {alias!r} maps to both {index[key]} and {column}")
            index[key] = column
    return index


ALIAS_INDEX = _build_alias_index()


def canonical_column(header: str) -> str | None:
    """The canonical column a header names, or None when it is not one we know."""
    return ALIAS_INDEX.get(normalize_header(header))


# --- bytes to text -----------------------------------------------------------------------------


def decode_csv_bytes(content: bytes) -> tuple[str, list[str]]:
    """Decode CSV bytes: BOMs first (UTF-8, UTF-16, UTF-32), then UTF-8, then Windows-1252 / Latin-1.

    Returns the text and warnings for a person (a guessed legacy encoding). Raises
    InvalidInvoice for binary content.
    """
    warnings: list[str] = []
    boms = (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    )
    text: str | None = None
    for bom, encoding in boms:
        if content.startswith(bom):
            try:
                text = content.decode(encoding)
            except UnicodeDecodeError as exc:
                raise InvalidInvoice(
                    f"The CSV file starts with a {encoding.upper()} byte order mark but is not valid in that encoding."
                ) from exc
            break
    if text is None:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    if text is None:
        try:
            text = content.decode("cp1252")
            warnings.append(
                "The file is not UTF-8; it was read as Windows-1252 (cp1252). "
                "Check umlauts and accents, or export the CSV as UTF-8."
            )
        except UnicodeDecodeError:
            text = content.decode("latin-1")
            warnings.append(
                "The file is not UTF-8; it was read as Latin-1 (ISO 8859-1). "
                "Check umlauts and accents, or export the CSV as UTF-8."
            )
    if "\x00" in text:
        raise InvalidInvoice("The file is binary, not a CSV text file.")
    return text, warnings


# --- text to rows --------------------------------------------------------------------------------


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def _known_columns(header_line: str, delimiter: str) -> int:
    cells = next(csv.reader([header_line], delimiter=delimiter), [])
    return len({column for cell in cells if (column := canonical_column(cell))})


def sniff_delimiter(text: str) -> str:
    """Pick the delimiter (`;` `,` tab `|`) that splits the header into the most known columns.

    csv.Sniffer's guess goes first so it wins ties; the count of known headers is the
    fallback that also rejects a wrong guess (Sniffer is easily fooled by commas in
    decimal numbers).
    """
    header_line = _first_line(text)
    candidates: list[str] = []
    try:
        sniffed = csv.Sniffer().sniff(text[:8192], delimiters="".join(CANDIDATE_DELIMITERS)).delimiter
        candidates.append(sniffed)
    except csv.Error:
        pass
    candidates.extend(d for d in CANDIDATE_DELIMITERS if d not in candidates)
    best = max(candidates, key=lambda d: _known_columns(header_line, d))
    if _known_columns(header_line, best) == 0:
        # No known header with any delimiter: fall back to the most frequent one.
        best = max(CANDIDATE_DELIMITERS, key=header_line.count)
    return best


def _split_rows(text: str) -> tuple[list[str], list[tuple[int, list[str]]], str]:
    """Header cells, the data rows as (row number as a spreadsheet shows it, cells), and the delimiter."""
    lines = text.splitlines(keepends=True)
    delimiter = None
    # Excel writes "sep=;" as a first line to pin the delimiter.
    if lines and (hint := re.fullmatch(r"sep=(.)\s*", lines[0].strip("\ufeff"))):
        delimiter = hint.group(1)
        lines = lines[1:]
    body = "".join(lines)
    delimiter = delimiter or sniff_delimiter(body)
    try:
        records = list(csv.reader(io.StringIO(body, newline=""), delimiter=delimiter, quotechar='"'))
    except csv.Error as exc:
        raise InvalidInvoice(f"The CSV file cannot be read: {exc}.") from exc
    numbered = [(index + 1, row) for index, row in enumerate(records) if any(cell.strip() for cell in row)]
    if not numbered:
        raise InvalidInvoice("The CSV file is empty.")
    (_, header), rows = numbered[0], numbered[1:]
    return header, rows, delimiter


def _check_row_widths(header: list[str], rows: list[tuple[int, list[str]]], delimiter: str) -> None:
    """Extra cells mean misaligned columns; silently dropping them would shift amounts."""
    width = len(header)
    for number, row in rows:
        if len(row) > width and any(cell.strip() for cell in row[width:]):
            hint = " (a decimal comma in a comma-separated file must be quoted)" if delimiter == "," else ""
            raise InvalidInvoice(f"Row {number} has {len(row)} cells but the header has {width}{hint}.")


# --- cell values ------------------------------------------------------------------------------


_GROUPED_DOT = re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?")
_GROUPED_COMMA = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_GROUPED_SPACE = re.compile(r"\d{1,3}(?:['\u2019 \u00a0\u202f]\d{3})+(?:[.,]\d+)?")
_PLAIN = re.compile(r"\d+(?:[.,]\d+)?")


def decimal_comma_evidence(values: Iterable[str]) -> bool | None:
    """Does this file write decimals with a comma (True), a point (False), or cannot we tell (None)?

    Only unambiguous values count: "12,5" or "1.234,56" say comma, "12.5" or
    "1,234.56" say point; "1.234" says nothing.
    """
    comma = point = False
    for raw in values:
        value = raw.strip().lstrip("+-")
        if re.fullmatch(r"\d+(?:\.\d{3})*,\d+", value) and not re.fullmatch(r"\d{1,3},\d{3}", value):
            comma = True
        elif re.fullmatch(r"\d+(?:,\d{3})*\.\d+", value) and not re.fullmatch(r"\d{1,3}\.\d{3}", value):
            point = True
    if comma == point:
        return None
    return comma


def parse_decimal(raw: str, *, decimal_comma: bool | None = None) -> Decimal:
    """Read "1234.56", "1234,56", "1.234,56", "1,234.56", "1 234,56", "19%" or "€ 12.00".

    A single separator followed by exactly three digits ("1.234") is a thousands
    separator when the file uses the other character for decimals (`decimal_comma`),
    and a decimal separator otherwise. Raises ValueError for anything else.
    """
    value = raw.strip()
    for symbol in ("%", *CURRENCY_SYMBOLS):
        value = value.removeprefix(symbol).removesuffix(symbol).strip()
    sign = ""
    if value[:1] in "+-":
        sign, value = value[0], value[1:].strip()
    if _GROUPED_SPACE.fullmatch(value) and not _PLAIN.fullmatch(value):
        value = re.sub(r"['\u2019 \u00a0\u202f]", "", value)
    if _GROUPED_DOT.fullmatch(value) and ("," in value or value.count(".") > 1 or decimal_comma is True):
        number = value.replace(".", "").replace(",", ".")
    elif _GROUPED_COMMA.fullmatch(value) and ("." in value or value.count(",") > 1 or decimal_comma is False):
        number = value.replace(",", "")
    elif _PLAIN.fullmatch(value):
        number = value.replace(",", ".")
    else:
        raise ValueError(f"{raw.strip()!r} is not a number")
    try:
        return Decimal(sign + number)
    except InvalidOperation as exc:  # pragma: no cover - the patterns admit only valid literals
        raise ValueError(f"{raw.strip()!r} is not a number") from exc


def parse_date(raw: str) -> dt.date:
    """Read YYYY-MM-DD, YYYYMMDD, DD.MM.YYYY or DD/MM/YYYY.

    Slashes are always day/month/year (the European order): "03/04/2026" is 3 April.
    US-style month/day dates are not accepted, because "03/04" cannot be told apart.
    Raises ValueError with a message a person can act on.
    """
    value = raw.strip()
    patterns = (
        (r"(\d{4})-(\d{1,2})-(\d{1,2})", ("y", "m", "d")),
        (r"(\d{4})(\d{2})(\d{2})", ("y", "m", "d")),
        (r"(\d{1,2})\.(\d{1,2})\.(\d{4})", ("d", "m", "y")),
        (r"(\d{1,2})/(\d{1,2})/(\d{4})", ("d", "m", "y")),
    )
    for pattern, order in patterns:
        match = re.fullmatch(pattern, value)
        if match:
            parts = dict(zip(order, (int(group) for group in match.groups()), strict=True))
            try:
                return dt.date(parts["y"], parts["m"], parts["d"])
            except ValueError:
                hint = " (dates with slashes are read as DD/MM/YYYY)" if "/" in value else ""
                raise ValueError(f"{value!r} is not a valid date{hint}") from None
    raise ValueError(f"{value!r} is not a date (use YYYY-MM-DD, DD.MM.YYYY or DD/MM/YYYY)")


def parse_document_type(raw: str) -> str:
    """'invoice' or 'credit_note' from the type column (English, German, French words or 380/381)."""
    value = " ".join(raw.strip().casefold().replace("-", " ").split())
    if value in CREDIT_NOTE_WORDS or value.replace(" ", "_") in CREDIT_NOTE_WORDS:
        return "credit_note"
    if value in INVOICE_WORDS:
        return "invoice"
    raise ValueError(f"{raw.strip()!r} is not a document type (use 'invoice' or 'credit_note')")


def parse_currency(raw: str) -> str:
    """An ISO 4217 code ('EUR') or one of the symbols € £ $ ¥."""
    value = raw.strip()
    if value in CURRENCY_SYMBOLS:
        return CURRENCY_SYMBOLS[value]
    if re.fullmatch(r"[A-Za-z]{3}", value):
        return value.upper()
    raise ValueError(f"{value!r} is not a currency code (use a three-letter code such as EUR)")


# --- the extractor ----------------------------------------------------------------------------


@dataclass
class _Table:
    """The CSV with its header mapped: canonical column -> position, and header text as written."""

    positions: dict[str, int]
    headers: dict[str, str]
    rows: list[tuple[int, list[str]]]
    decimal_comma: bool | None

    def cell(self, row: list[str], column: str) -> str:
        position = self.positions.get(column)
        if position is None or position >= len(row):
            return ""
        return row[position].strip()

    def error(self, row_number: int, column: str, message: str) -> InvalidInvoice:
        return InvalidInvoice(f"Row {row_number}, column '{self.headers[column]}': {message}.")


def _map_header(header: list[str]) -> tuple[dict[str, int], dict[str, str]]:
    positions: dict[str, int] = {}
    headers: dict[str, str] = {}
    for position, cell in enumerate(header):
        column = canonical_column(cell)
        if column is None:
            continue
        if column in positions:
            raise InvalidInvoice(
                f"The CSV header has two columns for {column}: "
                f"'{headers[column]}' and '{cell.strip()}'. Remove one of them."
            )
        positions[column] = position
        headers[column] = cell.strip()
    return positions, headers


class CsvExtractor(Extractor):
    """CSV exports of supplier invoices (see docs/formats.md, "## CSV")."""

    format = "csv"

    def can_handle(self, content: bytes) -> bool:
        """True for text whose header row names an invoice number and at least one amount column."""
        head = content[:4096].lstrip()
        if not head or head.startswith((b"%PDF", b"PK\x03\x04", b"<")):
            return False
        try:
            text, _ = decode_csv_bytes(content)
            if text.lstrip("\ufeff \t\r\n").startswith("<"):
                return False
            header, _, _ = _split_rows(text)
            positions, _ = _map_header(header)
        except InvalidInvoice:
            return False
        return "invoice_number" in positions and bool(AMOUNT_COLUMNS & positions.keys())

    def extract(self, content: bytes) -> ExtractedInvoice:
        """Read the one invoice in this CSV. Raises InvalidInvoice naming the row and column of a bad cell."""
        text, warnings = decode_csv_bytes(content)
        header, rows, delimiter = _split_rows(text)
        positions, headers = _map_header(header)
        if "invoice_number" not in positions:
            raise InvalidInvoice(
                "The CSV has no invoice number column (a header such as "
                "'invoice_number', 'Invoice No' or 'Rechnungsnummer')."
            )
        if not rows:
            raise InvalidInvoice("The CSV has a header row but no invoice lines.")
        _check_row_widths(header, rows, delimiter)
        numeric_cells = (
            row[positions[c]] for _, row in rows for c in DECIMAL_COLUMNS & positions.keys() if positions[c] < len(row)
        )
        table = _Table(positions, headers, rows, decimal_comma_evidence(numeric_cells))

        invoice = ExtractedInvoice(format=self.format, warnings=warnings)
        invoice_values = self._invoice_level_values(table)
        self._fill_header(invoice, table, invoice_values)
        if any(column in positions for column in ("line_name", "quantity", "net_price", "line_amount")):
            # A row with every line column empty carries only invoice data: our own export writes an
            # invoice without lines that way, and it must import as an invoice without lines.
            line_rows = [(number, row) for number, row in rows if any(table.cell(row, c) for c in LINE_COLUMNS)]
            invoice.lines = [self._line(table, number, row, index) for index, (number, row) in enumerate(line_rows, 1)]
        invoice.line_total = sum((line.line_amount for line in invoice.lines), Decimal("0")) if invoice.lines else None
        invoice.vat_breakdown = self._vat_breakdown(invoice.lines)
        self._fill_totals(invoice, table, invoice_values)
        return invoice

    # Invoice-level columns repeat on each row: take the first non-blank value, and refuse
    # a file whose rows disagree (two invoices, or a broken export).
    def _invoice_level_values(self, table: _Table) -> dict[str, tuple[int, str]]:
        values: dict[str, tuple[int, str]] = {}
        for column in (*INVOICE_LEVEL_COLUMNS, *TOTAL_COLUMNS):
            if column not in table.positions:
                continue
            for number, row in table.rows:
                value = table.cell(row, column)
                if not value:
                    continue
                if column not in values:
                    values[column] = (number, value)
                    continue
                first_number, first_value = values[column]
                if value == first_value:
                    continue
                if column == "invoice_number":
                    raise InvalidInvoice(
                        f"This CSV holds more than one invoice: invoice number '{first_value}' in row "
                        f"{first_number} and '{value}' in row {number}. Export one invoice per file."
                    )
                raise table.error(
                    number,
                    column,
                    f"'{value}' differs from '{first_value}' in row {first_number}; "
                    "invoice-level columns must repeat the same value on every row",
                )
        if "invoice_number" not in values:
            raise InvalidInvoice(f"The column '{table.headers['invoice_number']}' is empty in every row.")
        return values

    def _fill_header(self, invoice: ExtractedInvoice, table: _Table, values: dict[str, tuple[int, str]]) -> None:
        for column in INVOICE_LEVEL_COLUMNS:
            if column not in values:
                continue
            number, raw = values[column]
            try:
                if column in DATE_COLUMNS:
                    setattr(invoice, column, parse_date(raw))
                elif column == "type":
                    invoice.type = parse_document_type(raw)
                    if raw.strip() in ("380", "381"):
                        invoice.type_code = raw.strip()
                elif column == "currency":
                    invoice.currency = parse_currency(raw)
                elif column in ("seller_vat_id", "payment_iban"):
                    setattr(invoice, column, re.sub(r"[\s.\-]", "", raw).upper())
                else:
                    setattr(invoice, column, raw)
            except ValueError as exc:
                raise table.error(number, column, str(exc)) from None
            invoice.confidence[column] = 1.0

    def _decimal(self, table: _Table, number: int, row: list[str], column: str) -> Decimal | None:
        raw = table.cell(row, column)
        if not raw:
            return None
        try:
            return parse_decimal(raw, decimal_comma=table.decimal_comma)
        except ValueError as exc:
            raise table.error(number, column, str(exc)) from None

    def _line(self, table: _Table, number: int, row: list[str], index: int) -> ExtractedLine:
        line = ExtractedLine(
            line_id=table.cell(row, "line_id") or str(index),
            name=table.cell(row, "line_name"),
            quantity=self._decimal(table, number, row, "quantity"),
            unit_code=table.cell(row, "unit_code"),
            net_price=self._decimal(table, number, row, "net_price"),
            line_amount=self._decimal(table, number, row, "line_amount"),
            vat_rate=self._decimal(table, number, row, "vat_rate"),
        )
        if line.line_amount is None:
            if line.quantity is None or line.net_price is None:
                raise InvalidInvoice(
                    f"Row {number}: the line has no amount; fill in the line amount, or both quantity and net price."
                )
            line.line_amount = round_cents(line.quantity * line.net_price)
        category = table.cell(row, "vat_category").upper()
        if category and category not in VAT_CATEGORIES:
            raise table.error(
                number,
                "vat_category",
                f"'{category}' is not a VAT category code (one of {', '.join(sorted(VAT_CATEGORIES))})",
            )
        # EN 16931 needs a category; a positive rate can only be the standard one.
        line.vat_category = category or ("S" if line.vat_rate is not None and line.vat_rate > 0 else "")
        return line

    @staticmethod
    def _vat_breakdown(lines: list[ExtractedLine]) -> list[VatBreakdown]:
        groups: dict[tuple[str, Decimal], Decimal] = {}
        for line in lines:
            if line.vat_rate is None or line.line_amount is None:
                return []
            key = (line.vat_category, line.vat_rate)
            groups[key] = groups.get(key, Decimal("0")) + line.line_amount
        # VAT is computed per rate on the summed base and rounded once (EN 16931 BR-CO-17).
        return [
            VatBreakdown(category=category, rate=rate, taxable_amount=base, tax_amount=round_cents(base * rate / 100))
            for (category, rate), base in groups.items()
        ]

    def _fill_totals(self, invoice: ExtractedInvoice, table: _Table, values: dict[str, tuple[int, str]]) -> None:
        for column in TOTAL_COLUMNS:
            if column in values:
                number, raw = values[column]
                try:
                    setattr(invoice, column, parse_decimal(raw, decimal_comma=table.decimal_comma))
                except ValueError as exc:
                    raise table.error(number, column, str(exc)) from None
                invoice.confidence[column] = 1.0
        computed: list[str] = []
        if invoice.total_net is None and invoice.line_total is not None:
            invoice.total_net = invoice.line_total
            computed.append("total_net")
        if invoice.tax_total is None and invoice.vat_breakdown:
            invoice.tax_total = sum((group.tax_amount for group in invoice.vat_breakdown), Decimal("0"))
            computed.append("tax_total")
        if invoice.total_gross is None and invoice.total_net is not None and invoice.tax_total is not None:
            invoice.total_gross = invoice.total_net + invoice.tax_total
            computed.append("total_gross")
        if invoice.amount_due is None and invoice.total_gross is not None:
            invoice.amount_due = invoice.total_gross
            computed.append("amount_due")
        for column in computed:
            invoice.confidence[column] = COMPUTED_CONFIDENCE
        if computed:
            invoice.warnings.append(
                f"The file has no {', '.join(computed)}; computed from the lines and their VAT rates."
            )
        missing = [column for column in TOTAL_COLUMNS if getattr(invoice, column) is None]
        if missing:
            invoice.warnings.append(
                f"Missing {', '.join(missing)}: the file gives neither these totals "
                "nor a VAT rate on every line to compute them from."
            )
