"""Which invoice fields a person may correct, how each value is checked, and how a
correction is applied to an invoice.

A field path names what changes: a header field (`total_gross`, `seller_vat_id`), a
line field (`lines[2].quantity`, 2 being the line's position, which never changes
once given), a new line (`lines[+]`, value: an object of line fields) or a removed
line (`lines[3]`, value: null). Values arrive as text or JSON (the API, the form, the
command line) and are stored JSON-native: amounts and quantities as decimal strings,
dates as ISO strings, codes upper case.

The services (invoices/services.py `invoice_correct`) validate every change first and
save nothing when one is wrong; `InvalidCorrection.errors` says which and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from iso4217 import Currency

from core.errors import Invalid
from invoices.models import Invoice, InvoiceLine, InvoiceType

ISO_4217_CODES = frozenset(currency.code for currency in Currency)
# ISO 3166-1 alpha-2 shape; whether the code exists is the rules' business (none checks it today).
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
LINE_PATH_RE = re.compile(r"^lines\[(?P<position>\d{1,6}|\+)\](?:\.(?P<field>[a-z_]+))?$")
MAX_LINES = 5000


class InvalidCorrection(Invalid, ValueError):
    """One or more corrections cannot be applied; `errors` maps each field path to messages (400)."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(
            "; ".join(f"{path}: {' '.join(messages)}" for path, messages in errors.items()), field_errors=errors
        )
        self.errors = errors


@dataclass(frozen=True)
class FieldSpec:
    """A correctable field: its label, the kind of value, and the model's limits."""

    name: str
    label: str
    kind: str  # text, amount, decimal, date, currency, country, choice, code
    max_length: int = 0
    decimal_places: int = 2
    choices: tuple[str, ...] = ()
    required: bool = False


def _text(name, label, max_length, **kw):
    return FieldSpec(name, label, "text", max_length=max_length, **kw)


def _amount(name, label, places=2):
    return FieldSpec(name, label, "amount" if places == 2 else "decimal", decimal_places=places)


HEADER = [
    _text("invoice_number", "Invoice number (BT-1)", 100),
    FieldSpec("type", "Type", "choice", choices=tuple(InvoiceType.values), required=True),
    FieldSpec("type_code", "Type code (BT-3)", "code", max_length=5),
    FieldSpec("issue_date", "Issue date (BT-2)", "date"),
    FieldSpec("due_date", "Due date (BT-9)", "date"),
    FieldSpec("currency", "Currency (BT-5)", "currency"),
    _text("buyer_reference", "Buyer reference (BT-10)", 200),
    _text("purchase_order_reference", "Purchase order (BT-13)", 200),
]
PARTIES = [
    _text("seller_name", "Seller name (BT-27)", 200),
    FieldSpec("seller_vat_id", "Seller VAT id (BT-31)", "code", max_length=40),
    FieldSpec("seller_country", "Seller country (BT-40)", "country"),
    _text("buyer_name", "Buyer name (BT-44)", 200),
    FieldSpec("buyer_vat_id", "Buyer VAT id (BT-48)", "code", max_length=40),
    FieldSpec("buyer_country", "Buyer country (BT-55)", "country"),
]
TOTALS = [
    _amount("line_total", "Sum of lines (BT-106)"),
    _amount("allowance_total", "Allowances (BT-107)"),
    _amount("charge_total", "Charges (BT-108)"),
    _amount("total_net", "Total without VAT (BT-109)"),
    _amount("tax_total", "VAT total (BT-110)"),
    _amount("total_gross", "Total with VAT (BT-112)"),
    _amount("prepaid_amount", "Paid amount (BT-113)"),
    _amount("rounding_amount", "Rounding (BT-114)"),
    _amount("amount_due", "Amount due (BT-115)"),
]
PAYMENT = [FieldSpec("payment_iban", "IBAN (BT-84)", "code", max_length=34)]
LINES = [
    _text("line_id", "Line id (BT-126)", 100),
    _text("name", "Item (BT-153)", 500),
    _amount("quantity", "Quantity (BT-129)", 4),
    FieldSpec("unit_code", "Unit (BT-130)", "code", max_length=10),
    _amount("net_price", "Net price (BT-146)", 6),
    _amount("line_amount", "Line amount (BT-131)"),
    FieldSpec("vat_category", "VAT category (BT-151)", "code", max_length=5),
    _amount("vat_rate", "VAT rate % (BT-152)", 3),
]

HEADER_FIELDS = [spec.name for spec in HEADER]
PARTY_FIELDS = [spec.name for spec in PARTIES]
TOTAL_FIELDS = [spec.name for spec in TOTALS]
PAYMENT_FIELDS = [spec.name for spec in PAYMENT]
LINE_FIELDS = [spec.name for spec in LINES]
FIELD_SPECS: dict[str, FieldSpec] = {spec.name: spec for spec in [*HEADER, *PARTIES, *TOTALS, *PAYMENT]}
LINE_SPECS: dict[str, FieldSpec] = {spec.name: spec for spec in LINES}
# The model's digits before the decimal point (max_digits - decimal_places).
_INTEGER_DIGITS = {2: 16, 3: 3, 4: 14, 6: 12}


@dataclass(frozen=True)
class Change:
    """One validated change: the path, what kind, and the clean value."""

    path: str
    action: str  # "set", "add_line", "remove_line"
    value: object
    field: str = ""
    position: int | None = None


def clean_value(spec: FieldSpec, raw: object) -> object:
    """The stored form of a value for a field, or ValueError with a message a person understands."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if spec.required:
            raise ValueError("This field cannot be empty.")
        return None if spec.kind in ("amount", "decimal", "date") else ""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise ValueError(f"Expected text, not {type(raw).__name__}.")
    text = str(raw).strip()
    if spec.kind in ("amount", "decimal"):
        return _clean_decimal(text, spec.decimal_places)
    if spec.kind == "date":
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                raise ValueError
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError(f"'{text[:40]}' is not a date; write it as YYYY-MM-DD, e.g. 2026-03-01.") from None
    if spec.kind == "currency":
        code = text.upper()
        if code not in ISO_4217_CODES:
            raise ValueError(f"'{text[:20]}' is not an ISO 4217 currency code such as EUR or USD.")
        return code
    if spec.kind == "country":
        code = text.upper()
        if not COUNTRY_RE.match(code):
            raise ValueError(f"'{text[:20]}' is not a two-letter ISO 3166 country code such as DE.")
        return code
    if spec.kind == "choice":
        if text not in spec.choices:
            raise ValueError(f"Choose one of {', '.join(spec.choices)}.")
        return text
    if spec.kind == "code":  # identifiers: no inner spaces, upper case (VAT ids, IBANs, codes)
        text = "".join(text.split()).upper()
        if spec.name == "payment_iban" and not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}", text):
            raise ValueError(f"'{text[:40]}' is not an IBAN: two letters, two check digits, then letters and digits.")
    if spec.max_length and len(text) > spec.max_length:
        raise ValueError(f"At most {spec.max_length} characters ({len(text)} given).")
    return text


def _clean_decimal(text: str, places: int) -> str:
    normalised = text.replace(" ", "").replace("\u00a0", "")
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", normalised):
        raise ValueError(f"'{text[:40]}' is not a number; write it with a dot, e.g. 1234.50.")
    try:
        number = Decimal(normalised)
    except InvalidOperation:  # pragma: no cover - the pattern above admits only valid literals
        raise ValueError(f"'{text[:40]}' is not a number.") from None
    if -number.as_tuple().exponent > places and number != number.quantize(Decimal(1).scaleb(-places)):
        raise ValueError(f"At most {places} decimal places.")
    number = number.quantize(Decimal(1).scaleb(-places))
    if len(str(abs(number.to_integral_value(rounding="ROUND_DOWN")))) > _INTEGER_DIGITS[places]:
        raise ValueError("The number is too large.")
    return str(number)


def parse_changes(invoice: Invoice, changes: dict) -> list[Change]:
    """Validate every change against the whitelist and the field types.

    Returns the changes in a stable order (header fields first, then lines); raises
    InvalidCorrection with every problem found (nothing is applied by this function).
    """
    if not isinstance(changes, dict) or not changes:
        raise InvalidCorrection({"changes": ["Send at least one field to correct."]})
    positions = set(invoice.lines.values_list("position", flat=True))
    errors: dict[str, list[str]] = {}
    parsed: list[Change] = []
    added = 0
    for path, raw in changes.items():
        path = str(path)
        try:
            if path in FIELD_SPECS:
                parsed.append(Change(path, "set", clean_value(FIELD_SPECS[path], raw), field=path))
                continue
            match = LINE_PATH_RE.match(path)
            if not match:
                raise ValueError(
                    "This field cannot be corrected. Correctable: "
                    f"{', '.join(FIELD_SPECS)}, lines[N].<{'|'.join(LINE_FIELDS)}>, lines[+], lines[N]."
                )
            position, field = match["position"], match["field"]
            if position == "+":
                if field:
                    raise ValueError("Add a line with `lines[+]` and an object of its fields.")
                if not isinstance(raw, dict):
                    raise ValueError('A new line is an object of line fields, e.g. {"name": ..., "line_amount": ...}.')
                if len(positions) + added >= MAX_LINES:
                    raise ValueError(f"An invoice has at most {MAX_LINES} lines.")
                parsed.append(Change(path, "add_line", _clean_line(raw)))
                added += 1
                continue
            number = int(position)
            if number not in positions:
                raise ValueError(f"The invoice has no line {number}.")
            if field is None:
                if raw is not None:
                    raise ValueError("To remove a line send null for `lines[N]`; to change it, `lines[N].<field>`.")
                parsed.append(Change(path, "remove_line", None, position=number))
            elif field not in LINE_SPECS:
                raise ValueError(f"A line has no correctable field '{field}'; correctable: {', '.join(LINE_FIELDS)}.")
            else:
                parsed.append(Change(path, "set", clean_value(LINE_SPECS[field], raw), field=field, position=number))
        except InvalidCorrection as exc:
            for key, messages in exc.errors.items():
                errors.setdefault(f"{path}.{key}", []).extend(messages)
        except ValueError as exc:
            errors.setdefault(path, []).append(str(exc))
    if errors:
        raise InvalidCorrection(errors)
    removed = {change.position for change in parsed if change.action == "remove_line"}
    clash = [change.path for change in parsed if change.action == "set" and change.position in removed]
    if clash:
        raise InvalidCorrection({path: ["This line is removed in the same correction."] for path in clash})
    return parsed


def _clean_line(raw: dict) -> dict:
    errors: dict[str, list[str]] = {}
    line: dict = {}
    for key, value in raw.items():
        spec = LINE_SPECS.get(str(key))
        if spec is None:
            errors.setdefault(str(key), []).append(f"Unknown line field; known: {', '.join(LINE_FIELDS)}.")
            continue
        try:
            line[spec.name] = clean_value(spec, value)
        except ValueError as exc:
            errors.setdefault(spec.name, []).append(str(exc))
    if errors:
        raise InvalidCorrection(errors)
    return {
        name: line.get(name, None if LINE_SPECS[name].kind in ("amount", "decimal") else "") for name in LINE_FIELDS
    }


# --- reading and writing values --------------------------------------------------------------------


def stored(value: object) -> object:
    """A model value in its stored (JSON-native) form."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def line_as_dict(line: InvoiceLine) -> dict:
    return {name: stored(getattr(line, name)) for name in LINE_FIELDS}


def field_values(invoice: Invoice, lines: list[InvoiceLine] | None = None) -> dict[str, object]:
    """Every correctable value of the invoice, flat by path (the shape of `Invoice.extracted_values`)."""
    values = {name: stored(getattr(invoice, name)) for name in FIELD_SPECS}
    for line in lines if lines is not None else invoice.lines.all():
        for name in LINE_FIELDS:
            values[f"lines[{line.position}].{name}"] = stored(getattr(line, name))
    return values


def current_value(invoice: Invoice, change: Change, lines: dict[int, InvoiceLine]) -> object:
    """The value a change replaces (a line as an object for add/remove)."""
    if change.action == "add_line":
        return None
    if change.action == "remove_line":
        return line_as_dict(lines[change.position])
    target = lines[change.position] if change.position is not None else invoice
    return stored(getattr(target, change.field))


def _model_value(spec: FieldSpec, value: object) -> object:
    if value is None:
        return None if spec.kind in ("amount", "decimal", "date") else ""
    if spec.kind in ("amount", "decimal"):
        return Decimal(str(value))
    if spec.kind == "date":
        return date.fromisoformat(str(value))
    return value


def apply_change(invoice: Invoice, change: Change, lines: dict[int, InvoiceLine]) -> int | None:
    """Apply one change to the invoice and its lines (saved by the caller for the header,
    here for lines). Returns the position of an added line."""
    if change.action == "set" and change.position is None:
        setattr(invoice, change.field, _model_value(FIELD_SPECS[change.field], change.value))
        return None
    if change.action == "set":
        line = lines[change.position]
        setattr(line, change.field, _model_value(LINE_SPECS[change.field], change.value))
        line.save()
        return None
    if change.action == "remove_line":
        lines.pop(change.position).delete()
        return None
    # A replayed addition keeps its position when it is free; a new one goes last.
    position = change.position if change.position is not None and change.position not in lines else max([0, *lines]) + 1
    line = InvoiceLine(
        invoice=invoice,
        position=position,
        **{name: _model_value(LINE_SPECS[name], value) for name, value in change.value.items()},
    )
    line.save()
    lines[position] = line
    return position


def change_from_row(path: str, new_value: object) -> Change:
    """The Change a stored correction row replays (after re-extraction)."""
    if path in FIELD_SPECS:
        return Change(path, "set", new_value, field=path)
    match = LINE_PATH_RE.match(path)
    if match is None or match["position"] == "+":
        raise ValueError(f"not a correction path: {path}")
    position = int(match["position"])
    if match["field"] is None:
        if new_value is None:
            return Change(path, "remove_line", None, position=position)
        return Change(path, "add_line", new_value, position=position)
    return Change(path, "set", new_value, field=match["field"], position=position)
