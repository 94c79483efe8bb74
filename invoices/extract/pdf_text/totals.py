"""The document totals of a plain PDF invoice: net, VAT, gross, prepaid and amount due.

Labelled amounts become candidates; `resolve_totals` picks the combination that adds up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from itertools import product

from invoices.extract.pdf_text.values import (
    CONFIRMED,
    GUESS,
    Found,
    compile_pattern,
    find_amounts,
    label,
    lines_with_offsets,
)

TOTAL_FIELDS = ("total_net", "tax_total", "total_gross", "amount_due", "prepaid_amount")


@dataclass(frozen=True)
class _TotalLabel:
    field: str
    regex: re.Pattern[str]
    confidence: float
    # "rate": a VAT line ("USt. 19 % ... 16,61"), whose last amount is the tax of that rate.
    kind: str = "value"


def _total_label(field_name: str, pattern: str, confidence: float, kind: str = "value") -> _TotalLabel:
    return _TotalLabel(field_name, compile_pattern(label(pattern)), confidence, kind)


_TAX_WORD = (
    r"USt\.?+|MwSt\.?+|Umsatzsteuer|Mehrwertsteuer|Versicherungsteuer|Versicherungssteuer|VAT|TVA|Tax"
    r"|Sales\s+tax"
)
TOTAL_LABELS = (
    _total_label(
        "total_net",
        r"Rechnungssumme\s+netto|Summe\s+netto|Gesamt\s*netto|Netto\s*gesamt|Nettobetrag|Nettosumme"
        r"|Netto-?Summe|Gesamtsumme\s+netto|Warenwert\s+netto|Net\s+total|Total\s+net|Net\s+amount"
        r"|Total\s+(?:excl\.?|excluding|without|before)\s+(?:VAT|tax)|Amount\s+excl\.?\s+VAT"
        r"|Total\s+HT|Montant\s+HT|Total\s+hors\s+taxes?|Montant\s+hors\s+taxes?",
        0.85,
    ),
    _total_label("total_net", r"Netto|Subtotal|Sub-total|Zwischensumme|Sous-total", 0.6),
    _total_label(
        "tax_total",
        r"Summe\s+(?:USt\.?|MwSt\.?|Umsatzsteuer|Mehrwertsteuer)|(?:USt\.?|MwSt\.?|Umsatzsteuer)\s+gesamt"
        r"|Gesamt\s+(?:USt\.?|MwSt\.?)|VAT\s+total|Total\s+VAT|Tax\s+total|Total\s+tax(?:es)?"
        r"|Total\s+TVA|Montant\s+(?:de\s+la\s+)?TVA|Total\s+des\s+taxes",
        0.85,
    ),
    _total_label("tax_total", r"Steuerbetrag|MwSt\.?-?Betrag|USt\.?-?Betrag|VAT\s+amount|Tax\s+amount", 0.7),
    _total_label("tax_total", _TAX_WORD, 0.5, kind="rate"),
    _total_label(
        "total_gross",
        r"Rechnungssumme\s+brutto|Summe\s+brutto|Gesamt\s*brutto|Brutto\s*gesamt|Bruttobetrag|Bruttosumme"
        r"|Gesamtbetrag|Rechnungsbetrag|Grand\s+total|Invoice\s+total|Total\s+amount|Total\s+TTC"
        r"|Montant\s+TTC|Total\s+(?:incl\.?|including|with)\s+(?:VAT|tax)|Amount\s+incl\.?\s+VAT",
        0.85,
    ),
    _total_label("total_gross", r"Brutto|Gesamtsumme|Endbetrag|Rechnungssumme|Total", 0.6),
    _total_label(
        "amount_due",
        r"Zahlbetrag|Zu\s+zahlen(?:de[rns]?\s+(?:Betrag|Beitrag|Summe))?|Noch\s+zu\s+zahlen|Offener\s+Betrag"
        r"|Restbetrag|F[äa]lliger\s+Betrag|Amount\s+due|Balance\s+due|Amount\s+payable|Total\s+due"
        r"|Due\s+payable|Solde\s+[àa]\s+payer|Solde\s+d[ûu]|Net\s+[àa]\s+payer|Reste\s+[àa]\s+payer"
        r"|Montant\s+d[ûu]|Total\s+[àa]\s+payer|Montant\s+[àa]\s+payer",
        0.85,
    ),
    _total_label("amount_due", r"Residual|Balance|Solde", 0.6),
    _total_label(
        "prepaid_amount",
        r"Bereits\s+(?:bezahlt|gezahlt)|Anzahlung|Vorauszahlung|Already\s+paid|Amount\s+paid|Paid\s+to\s+date"
        r"|Prepaid(?:\s+amount)?|Acompte(?:\s+vers[ée])?|D[ée]j[àa]\s+(?:r[ée]gl[ée]|pay[ée])",
        0.85,
    ),
)
_INCLUDING = compile_pattern(r"(?<![\w-])(?:inkl\.?|inklusive|including|incl\.?|inclusive|y\s+compris)(?![\w-])")
_PERCENT = re.compile(r"\d\s?%")


@dataclass(frozen=True)
class _LabelHit:
    label: _TotalLabel
    start: int
    end: int


def _hide_wordy_parentheses(line: str) -> str:
    """Blank out '(excl. USt.)' or '(vente)' but keep '(19 %)' or '(35,13 €)', preserving columns."""
    return re.sub(r"\([^()\d]*\)", lambda m: " " * len(m.group()), line)


def _label_hits(line: str) -> list[_LabelHit]:
    """Label matches on a line, the longest winning where they overlap ('Net total' over 'Total')."""
    hits = [
        _LabelHit(total_label, m.start(), m.end())
        for total_label in TOTAL_LABELS
        for m in total_label.regex.finditer(line)
    ]
    kept: list[_LabelHit] = []
    for hit in sorted(hits, key=lambda h: (-(h.end - h.start), h.start)):
        if all(hit.end <= other.start or hit.start >= other.end for other in kept):
            kept.append(hit)
    return sorted(kept, key=lambda h: h.start)


def _column_value_below(lines: list[str], index: int, start: int, end: int) -> Decimal | None:
    """In a totals table with the labels as column headers, the last amount under a header."""
    value = None
    for line in lines[index + 1 : index + 9]:
        if not line.strip():
            continue
        under = [amount for amount, a_start, a_end in find_amounts(line) if a_start < end + 2 and a_end > start - 2]
        if not under:
            break
        value = under[-1]
    return value


def _last_amount_near(lines: list[str], index: int, step: int) -> Decimal | None:
    """The last amount on the nearest non-blank line above (step -1) or below (step +1), within two lines."""
    for other in range(index + step, index + 3 * step, step):
        if 0 <= other < len(lines) and lines[other].strip():
            amounts = find_amounts(lines[other])
            return amounts[-1][0] if amounts else None
    return None


def _add_sum_block(
    candidates: dict[str, list[Found[Decimal]]], lines: list[str], index: int, tax: Decimal, position: int
) -> None:
    """Net, tax and gross printed on three lines in a row, whatever their labels ("Gesamtbeitrag 50,00 /
    Versicherungsteuer 19 % 9,50 / Rechnungsbeitrag 59,50"): the amounts above and below a tax line are
    net and gross when they add up.
    """
    above, below = _last_amount_near(lines, index, -1), _last_amount_near(lines, index, 1)
    if above is not None and below is not None and above + tax == below and tax:
        candidates["total_net"].append(Found(above, 0.6, position))
        candidates["total_gross"].append(Found(below, 0.6, position))


def total_candidates(text: str) -> tuple[dict[str, list[Found[Decimal]]], bool]:
    """Candidate values for each total, and whether the text mentions a prepayment."""
    candidates: dict[str, list[Found[Decimal]]] = {name: [] for name in TOTAL_FIELDS}
    rate_lines: list[Decimal] = []
    lines = [_hide_wordy_parentheses(line) for line in text.split("\n")]
    offsets = list(lines_with_offsets(text))
    for index, line in enumerate(lines):
        hits = _label_hits(line)
        offset = offsets[index][0]
        # A totals table has its labels as column headers: at least two different totals on one line.
        header_fields = {hit.label.field for hit in hits if hit.label.kind == "value"} - {"prepaid_amount"}
        for number, hit in enumerate(hits):
            segment_end = hits[number + 1].start if number + 1 < len(hits) else len(line)
            amounts = find_amounts(line[hit.end : segment_end])
            target, confidence = hit.label.field, hit.label.confidence
            if hit.label.kind == "rate":
                if _INCLUDING.search(line[: hit.start]):
                    target, confidence = "total_gross", 0.6  # "Beitrag inklusive 19 % Versicherungsteuer 220,00"
                elif _PERCENT.search(line) and amounts:
                    rate_lines.append(amounts[-1][0])
            if amounts:
                value = amounts[-1][0] if hit.label.kind == "rate" else amounts[0][0]
                candidates[target].append(Found(value, confidence, offset + hit.start))
                if target == "tax_total":
                    _add_sum_block(candidates, lines, index, value, offset + hit.start)
            elif len(header_fields) >= 2 and hit.label.kind == "value":
                below = _column_value_below(lines, index, hit.start, hit.end)
                if below is not None:
                    candidates[target].append(Found(below, min(confidence, 0.7), offset + hit.start))
    if rate_lines:
        candidates["tax_total"].append(Found(sum(rate_lines, Decimal("0")), 0.6, len(text)))
    return candidates, bool(candidates["prepaid_amount"])


def _best(found: list[Found[Decimal]]) -> Found[Decimal] | None:
    # Equal confidence: the later one, since totals come at the end of an invoice.
    return max(found, key=lambda f: (f.confidence, f.position), default=None)


def find_totals(text: str) -> tuple[dict[str, Found[Decimal]], list[str]]:
    """Net, tax, gross, prepaid and due amounts, and warnings.

    Labelled amounts are candidates; the combination where net + tax = gross
    wins and is confirmed. A missing one of the three is computed from the
    other two (a guess). Amount due defaults to gross minus prepayments.
    """
    candidates, prepaid_mentioned = total_candidates(text)
    return resolve_totals(candidates, prepaid_mentioned=prepaid_mentioned)


def resolve_totals(
    candidates: dict[str, list[Found[Decimal]]], *, prepaid_mentioned: bool
) -> tuple[dict[str, Found[Decimal]], list[str]]:
    """Pick one value per total from candidates (see `find_totals`)."""
    warnings: list[str] = []
    chosen: dict[str, Found[Decimal]] = {}
    triples = [
        (n, t, g)
        for n, t, g in product(candidates["total_net"], candidates["tax_total"], candidates["total_gross"])
        if n.value + t.value == g.value
    ]
    if triples:
        n, t, g = max(triples, key=lambda c: (sum(f.confidence for f in c), max(f.position for f in c)))
        for name, found in (("total_net", n), ("tax_total", t), ("total_gross", g)):
            chosen[name] = Found(found.value, max(found.confidence, CONFIRMED), found.position)
    else:
        for name in ("total_net", "tax_total", "total_gross"):
            best = _best(candidates[name])
            if best is not None:
                chosen[name] = best
        net, tax, gross = (chosen.get(name) for name in ("total_net", "tax_total", "total_gross"))
        if net and tax and not gross:
            chosen["total_gross"] = Found(net.value + tax.value, GUESS)
        elif net and gross and not tax:
            chosen["tax_total"] = Found(gross.value - net.value, GUESS)
        elif tax and gross and not net:
            chosen["total_net"] = Found(gross.value - tax.value, GUESS)
        elif net and tax and gross:
            warnings.append("The totals read from the PDF do not add up (net + tax is not gross); check them.")
            for name in ("total_net", "tax_total", "total_gross"):
                chosen[name] = Found(chosen[name].value, min(chosen[name].confidence, GUESS), chosen[name].position)
    prepaid = _best(candidates["prepaid_amount"])
    if prepaid is not None:
        chosen["prepaid_amount"] = prepaid
    gross = chosen.get("total_gross")
    expected_due = gross.value - (prepaid.value if prepaid else 0) if gross else None
    due_candidates = candidates["amount_due"]
    agreeing = [f for f in due_candidates if f.value == expected_due]
    if agreeing:
        best_due = _best(agreeing)
        chosen["amount_due"] = Found(best_due.value, max(best_due.confidence, CONFIRMED), best_due.position)
    elif due_candidates:
        chosen["amount_due"] = _best(due_candidates)
    elif expected_due is not None and (prepaid is not None or not prepaid_mentioned):
        # No "amount due" printed: an invoice is due in full, less what it says was paid.
        chosen["amount_due"] = Found(expected_due, GUESS)
    return chosen, warnings
