"""The seller's VAT id and the payment IBAN, validated with python-stdnum."""

from __future__ import annotations

import re
from collections.abc import Callable

from stdnum import iban as stdnum_iban
from stdnum.ch import vat as ch_vat
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.gb import vat as gb_vat

from invoices.extract.pdf_text.values import Found, compile_pattern

# --- VAT id ---------------------------------------------------------------------------------------

_VAT_CANDIDATE = re.compile(
    r"(?<![A-Za-z0-9])(?P<vat>(?:CHE|AT|BE|BG|CY|CZ|DE|DK|EE|EL|GR|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO"
    r"|SE|SI|SK|XI|GB)[ .-]?[0-9A-Z](?:[ .-]?[0-9A-Z]){6,15})"
)
_VAT_LABEL = compile_pattern(
    r"(?:USt\.?-?\s?Id(?:ent)?\.?-?\s?Nr|USt-?ID|UStIdNr|Umsatzsteuer-?\s?(?:Identifikationsnummer|ID|Id\.?-?Nr)"
    r"|MwSt\.?-?\s?Nr|VAT(?:\s*(?:Reg(?:istration)?\.?\s*)?(?:ID|No|Number|Nr))?|TVA(?:\s+intracommunautaire)?"
    r"|UID(?:-?Nr)?|P\.?\s?IVA|Partita\s+IVA|NIF|CIF|BTW(?:-?nummer)?|Tax\s+ID|Steuer-?ID)\b"
)
_BUYER_WORDS = compile_pattern(
    r"\b(?:kunde\w*|ihre?|your|votre|vos|client|customer|buyer|k[äa]ufer|acheteur|empf[äa]nger|destinataire"
    r"|recipient|bill(?:ed)?\s+to)\b"
)
_CUSTOMER_NUMBER_LINE = compile_pattern(
    r"Kunden-?\s?n(?:umme)?r|Kunden-Nr|Customer\s+(?:no|number|id)|N[°o]\s*client|Num[ée]ro\s+client"
)
_SELLER_CONTEXT = compile_pattern(
    r"IBAN|BIC|HRB|HRA|Registergericht|Amtsgericht|Handelsreg|Gesch[äa]ftsf[üu]hr|SIRET|SIREN|RCS|capital"
    r"|Company\s+(?:no|number)|Steuer-?nr|Bankverbindung|Registered"
)


def _vat_status(compact: str) -> str | None:
    """'valid', 'checksum' (right shape, wrong check digits) or None (not a VAT id)."""
    module = ch_vat if compact.startswith("CHE") else gb_vat if compact.startswith("GB") else eu_vat
    try:
        module.validate(compact)
    except InvalidChecksum:
        return "checksum"
    except ValidationError:
        return None
    return "valid"


def _longest_valid(
    text: str, start: int, raw: str, status_of: Callable[[str], str | None]
) -> tuple[str, str, int] | None:
    """The longest prefix of `raw` ending on a word boundary that `status_of` accepts: (compact, status, end)."""
    fallback = None
    for end in range(len(raw), 0, -1):
        after = start + end
        if not raw[end - 1].isalnum() or (after < len(text) and text[after].isalnum()):
            continue
        compact = re.sub(r"[ .-]", "", raw[:end]).upper()
        status = status_of(compact)
        if status == "valid":
            return compact, status, end
        if status == "checksum" and fallback is None:
            fallback = (compact, status, end)
    return fallback


def _line_around(text: str, position: int) -> tuple[str, str, str]:
    """The text before `position` on its line, the rest of the line, and the previous non-blank line."""
    line_start = text.rfind("\n", 0, position) + 1
    line_end = text.find("\n", position)
    line_end = len(text) if line_end < 0 else line_end
    previous_lines = [line for line in text[:line_start].split("\n") if line.strip()]
    return text[line_start:position], text[position:line_end], previous_lines[-1] if previous_lines else ""


def _near_lines(text: str, position: int, radius: int = 2) -> str:
    lines = text.split("\n")
    index = text.count("\n", 0, position)
    return "\n".join(lines[max(0, index - radius) : index + radius + 1])


def find_seller_vat_id(text: str) -> tuple[Found[str] | None, list[str]]:
    """The seller's VAT id, and warnings.

    Candidates are EU (and GB, CH) VAT numbers checked with python-stdnum. One
    labelled as the customer's ('N° TVA client', 'Ihre USt-IdNr', or in the block
    under 'Kundennummer') is skipped. A labelled number with wrong check digits is
    returned with low confidence and a warning, since a person reads it there too.
    """
    ranked: list[tuple[float, int, str, str]] = []
    iban_spans = [(m.start(), m.end()) for m in _IBAN_CANDIDATE.finditer(text)]
    for match in _VAT_CANDIDATE.finditer(text):
        start = match.start()
        if any(s <= start < e for s, e in iban_spans):
            continue
        best = _longest_valid(text, start, match.group("vat"), _vat_status)
        if best is None:
            continue
        compact, status, _ = best
        before, _, previous = _line_around(text, start)
        # The label is in the same cell; cells are separated by wide gaps, labels from values by narrower ones.
        before = re.split(r"\s{4,}", before.rstrip())[-1][-45:]
        labelled = bool(_VAT_LABEL.search(before))
        if _BUYER_WORDS.search(before):
            continue
        if labelled and not _VAT_LABEL.sub("", before).strip(" :.#-") and _CUSTOMER_NUMBER_LINE.search(previous):
            continue  # the customer's VAT id printed under the customer number
        seller_context = bool(_SELLER_CONTEXT.search(_near_lines(text, start)))
        if status == "valid":
            score = 0.6 + 0.2 * labelled + 0.1 * seller_context
        elif labelled:
            score = 0.4 + 0.1 * seller_context
        else:
            continue
        ranked.append((score, -start, compact, status))
    return _best(ranked, "seller VAT id")


def _best(ranked: list[tuple[float, int, str, str]], what: str) -> tuple[Found[str] | None, list[str]]:
    """The best-scored candidate (the first in the text on a tie), warned about when its check digits are wrong."""
    if not ranked:
        return None, []
    score, negative_start, compact, status = max(ranked)
    found = Found(compact, round(score, 2), -negative_start)
    if status == "valid":
        return found, []
    return found, [f"The {what} {compact} has wrong check digits; please check it against the invoice."]


# --- IBAN -----------------------------------------------------------------------------------------

_IBAN_CANDIDATE = re.compile(r"(?<![A-Za-z0-9])(?P<iban>[A-Z]{2}\d{2}(?: ?[A-Z0-9]){10,32})")
_IBAN_LABEL = compile_pattern(r"IBAN(?:-?Nr\.?)?\s*[:.]?\s*$")
_DEBIT_CONTEXT = compile_pattern(
    r"Ihrem\s+Konto|Ihr\s+Konto|your\s+account|votre\s+compte|abgebucht|eingezogen|Lastschrift|direct\s+debit"
    r"|pr[ée]l[èe]vement|debited"
)


def _iban_status(compact: str) -> str | None:
    try:
        stdnum_iban.validate(compact)
    except InvalidChecksum:
        return "checksum"
    except ValidationError:
        return None
    return "valid"


def find_payment_iban(text: str) -> tuple[Found[str] | None, list[str]]:
    """The IBAN to pay to, and warnings. Checked with python-stdnum; the customer's account in a
    direct-debit notice ('von Ihrem Konto mit IBAN ...') is used only when there is no other.
    """
    ranked: list[tuple[float, int, str, str]] = []
    for match in _IBAN_CANDIDATE.finditer(text):
        start = match.start()
        best = _longest_valid(text, start, match.group("iban"), _iban_status)
        if best is None:
            continue
        compact, status, _ = best
        labelled = bool(_IBAN_LABEL.search(text[max(0, start - 30) : start]))
        before, _, previous = _line_around(text, start)
        debit = bool(_DEBIT_CONTEXT.search(before) or _DEBIT_CONTEXT.search(previous))
        if status == "valid":
            score = 0.7 + 0.2 * labelled
        elif labelled:
            score = 0.3
        else:
            continue
        if debit:
            score = min(score, 0.3)
        ranked.append((score, -start, compact, status))
    return _best(ranked, "IBAN")
