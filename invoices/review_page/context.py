"""Everything the review page shows, read in one place (the view stays thin).

The form's values come from `invoice_field_values` (current value, extracted
value, corrected or not); after a refused save they come from what the clerk
posted, so nothing typed is lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from django.utils.safestring import mark_safe

from invoices.corrections import HEADER, LINES, PARTIES, PAYMENT, TOTALS, FieldSpec
from invoices.models import Invoice, ValidationIssue, ValidationRuleSetting
from invoices.review_page.issues import issue_fields
from invoices.selectors import invoice_field_values

LOW_CONFIDENCE_RULE = "extraction.low_confidence"
DEFAULT_LOW_CONFIDENCE = 0.6
INPUT_TYPES = {"date": "date", "amount": "text", "decimal": "text"}


@dataclass
class FieldRow:
    """One input of the form."""

    path: str
    spec: FieldSpec
    value: str
    extracted: str | None = None
    corrected: bool = False
    confidence: float | None = None
    low_confidence: bool = False
    issues: list[ValidationIssue] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def input_type(self) -> str:
        return INPUT_TYPES.get(self.spec.kind, "text")

    @property
    def numeric(self) -> bool:
        return self.spec.kind in ("amount", "decimal")

    @property
    def worst(self) -> str:
        """The most severe issue or error on the field, for the highlight."""
        if self.errors or any(issue.severity == "error" for issue in self.issues):
            return "error"
        return "warning" if self.issues or self.low_confidence else ""


@dataclass
class Section:
    key: str
    title: str
    rows: list[FieldRow]
    issues: list[ValidationIssue] = field(default_factory=list)


def cells_html(cells: list[FieldRow]) -> str:
    """The <td> inputs of one line. Written here with html.escape, not in a template or with
    format_html: at 100 lines x 8 fields those were most of the page's server time."""
    return mark_safe("".join(_cell_html(cell) for cell in cells))  # noqa: S308  (every value is escaped)


def _cell_html(cell: FieldRow) -> str:
    attributes = ' class="rv-num" inputmode="decimal"' if cell.numeric else ""
    if cell.corrected:
        attributes += f' title="Corrected; extracted: {escape(cell.extracted or "(empty)")}" data-corrected'
    errors = "".join(f'<div class="rv-cell-error">{escape(error)}</div>' for error in cell.errors)
    return (
        f'<td class="{"rv-has-error" if cell.errors else ""}"><input name="{escape(cell.path)}" '
        f'value="{escape(cell.value)}" aria-label="{escape(cell.label)}" type="text"{attributes}>{errors}</td>'
    )


@dataclass
class LineRow:
    position: int
    cells: list[FieldRow]
    removed: bool = False

    @property
    def cells_html(self) -> str:
        return cells_html(self.cells)


@dataclass
class NewLine:
    index: int
    cells: list[FieldRow]

    @property
    def cells_html(self) -> str:
        return cells_html(self.cells)


@dataclass
class ReviewForm:
    sections: list[Section]
    line_specs: list[FieldSpec]
    lines: list[LineRow]
    new_lines: list[NewLine]
    line_issues: list[ValidationIssue]
    vendor_issues: list[ValidationIssue]
    general_issues: list[ValidationIssue]
    errors: list[str]
    confidence_threshold: float


def _text(value) -> str:
    return "" if value is None else str(value)


def low_confidence_threshold() -> float:
    """The threshold the low-confidence rule uses, as tuned in the admin."""
    setting = ValidationRuleSetting.objects.filter(code=LOW_CONFIDENCE_RULE).first()
    try:
        return (
            float((setting.parameters or {}).get("threshold", DEFAULT_LOW_CONFIDENCE))
            if setting
            else DEFAULT_LOW_CONFIDENCE
        )
    except (TypeError, ValueError):
        return DEFAULT_LOW_CONFIDENCE


def review_form(invoice: Invoice, *, posted=None, errors: dict[str, list[str]] | None = None) -> ReviewForm:
    """The right pane: sections of fields with their issues, the line table, and what could not be placed.

    `posted` (a QueryDict) replaces the stored values after a refused save; `errors`
    maps field paths (as InvalidCorrection reports them) to messages.
    """
    errors = dict(errors or {})
    values = invoice_field_values(invoice=invoice)
    confidence = invoice.confidence if isinstance(invoice.confidence, dict) else {}
    threshold = low_confidence_threshold()
    issues = list(invoice.issues.all())

    def row(path: str, spec: FieldSpec, confidence_key: str | None = None) -> FieldRow:
        known = values.get(path) or {}
        value = posted.get(path, "") if posted is not None else _text(known.get("value"))
        score = confidence.get(confidence_key) if confidence_key else None
        score = score if isinstance(score, int | float) and not isinstance(score, bool) else None
        return FieldRow(
            path=path,
            spec=spec,
            value=value,
            extracted=_text(known.get("extracted")),
            corrected=bool(known.get("corrected")),
            confidence=score,
            low_confidence=score is not None and score < threshold and value != "",
            errors=errors.pop(path, []),
        )

    sections = [
        Section(key, title, [row(spec.name, spec, spec.name) for spec in specs])
        for key, title, specs in [
            ("header", "Invoice", HEADER),
            ("parties", "Seller and buyer", PARTIES),
            ("totals", "Totals", TOTALS),
            ("payment", "Payment", PAYMENT),
        ]
    ]
    by_path = {r.path: r for section in sections for r in section.rows}
    line_issues, vendor_issues, general = [], [], []
    for issue in issues:
        # At the first field the issue names (the rule's subject: "BT-112 = BT-109 + BT-110" is
        # about BT-112), once: the same message at every field it mentions drowned the form.
        place = next(
            (
                name
                for name in issue_fields(issue.code, issue.message)
                if name in by_path or name in ("lines", "vendor")
            ),
            None,
        )
        if place == "lines":
            line_issues.append(issue)
        elif place == "vendor":
            vendor_issues.append(issue)
        elif place is not None:
            by_path[place].issues.append(issue)
        else:
            general.append(issue)

    removed = set(posted.getlist("remove")) if posted is not None else set()
    lines = [
        LineRow(
            position=line.position,
            removed=str(line.position) in removed,
            cells=[row(f"lines[{line.position}].{spec.name}", spec) for spec in LINES],
        )
        for line in invoice.lines.all()
    ]
    new_lines = []
    if posted is not None:
        for index in sorted({int(key.split(".")[0][4:]) for key in posted if _is_new_line_key(key)}):
            paths = [(f"new-{index}.{spec.name}", spec) for spec in LINES]
            cells = [
                FieldRow(path=path, spec=spec, value=posted.get(path, ""), errors=errors.pop(path, []))
                for path, spec in paths
            ]
            if any(cell.value for cell in cells):
                new_lines.append(NewLine(index=index, cells=cells))
    leftover = [
        f"{path}: {' '.join(messages)}" if path not in ("changes", "") else " ".join(messages)
        for path, messages in errors.items()
    ]
    return ReviewForm(
        sections=sections,
        line_specs=LINES,
        lines=lines,
        new_lines=new_lines,
        line_issues=line_issues,
        vendor_issues=vendor_issues,
        general_issues=general,
        errors=leftover,
        confidence_threshold=threshold,
    )


def _is_new_line_key(key: str) -> bool:
    head, _, _ = key.partition(".")
    return head.startswith("new-") and head[4:].isdigit()


def shown_value(value) -> str:
    """A correction's value for the history table: a line (added or removed) as its fields."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{name}: {field}" for name, field in value.items() if field not in (None, ""))
    return str(value)


@dataclass
class CorrectionRow:
    correction: object
    extracted: str
    previous: str
    new: str


def correction_rows(corrections) -> list[CorrectionRow]:
    """The correction history as the page shows it."""
    rows = []
    for c in corrections:
        new = shown_value(c.new_value)
        if not new:
            removed_line = c.new_value is None and c.field_path.startswith("lines[") and "." not in c.field_path
            new = "(line removed)" if removed_line else "(empty)"
        rows.append(CorrectionRow(c, shown_value(c.extracted_value), shown_value(c.previous_value), new))
    return rows
