"""What a validation rule is, what it reports, and the helpers rules share.

A rule is a small class with a stable `code`, a default severity, default
parameters and a `check(invoice, params)` that returns findings. The operator
switches each rule on or off and tunes its severity and parameters in the admin
(ValidationRuleSetting rows); `invoices.validation.validate` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from invoices.identity import seller_key_for
from invoices.models import Invoice, InvoiceLine, InvoiceType, Severity


@dataclass(frozen=True)
class Finding:
    """One problem a rule found on an invoice: stored as a ValidationIssue."""

    code: str
    severity: str
    message: str


class RuleParameterError(ValueError):
    """A rule's parameter, as tuned in the admin, cannot be used. The message says which and why."""


class Rule:
    """A validation rule. Subclasses set the class attributes and implement `check`.

    `check` receives a saved Invoice (its lines are readable through
    `invoice.lines.all()`) and the merged parameters (the admin's values over
    `default_parameters`). It may query the database. Findings it returns get
    the severity configured for the rule; build them with `self.finding(...)`.
    """

    code: str = ""
    default_severity: str = Severity.ERROR
    default_parameters: dict[str, object] = {}
    description: str = ""
    # Rules that query (other invoices, vendors) run in a savepoint, so that a failed
    # query cannot break the caller's transaction for the rules after them.
    uses_database: bool = False

    def check(self, invoice: Invoice, params: dict) -> list[Finding]:  # pragma: no cover - interface
        raise NotImplementedError

    def finding(self, message: str) -> Finding:
        """A finding of this rule (its severity is replaced by the configured one)."""
        return Finding(self.code, self.default_severity, message)

    def __repr__(self) -> str:
        return f"<Rule {self.code}>"


# --- parameters -----------------------------------------------------------------------------------


def decimal_parameter(params: dict, name: str) -> Decimal:
    """A non-negative decimal parameter ("0.01", 0.01 or 10000 are all accepted)."""
    value = params.get(name)
    try:
        if isinstance(value, bool) or value is None:
            raise InvalidOperation
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise RuleParameterError(f"the parameter '{name}' must be a number such as \"0.01\", not {value!r}") from None
    if not number.is_finite() or number < 0:
        raise RuleParameterError(f"the parameter '{name}' must be zero or a positive number, not {value!r}")
    return number


def integer_parameter(params: dict, name: str) -> int:
    """A non-negative whole-number parameter (a number of days, say)."""
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RuleParameterError(f"the parameter '{name}' must be a whole number, not {value!r}")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise RuleParameterError(f"the parameter '{name}' must be a whole number, not {value!r}") from None
    if number < 0:
        raise RuleParameterError(f"the parameter '{name}' must be zero or more, not {value!r}")
    return number


def names_parameter(params: dict, name: str, *, allowed: dict[str, str]) -> list[str]:
    """A list of field names, each one of `allowed` (field name -> label)."""
    value = params.get(name)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RuleParameterError(f"the parameter '{name}' must be a list of field names, not {value!r}")
    unknown = [item for item in value if item not in allowed]
    if unknown:
        raise RuleParameterError(
            f"the parameter '{name}' names unknown fields {', '.join(map(repr, unknown))}; known: {', '.join(allowed)}"
        )
    return value


# --- amounts ----------------------------------------------------------------------------------------


def is_credit_note(invoice: Invoice) -> bool:
    return invoice.type == InvoiceType.CREDIT_NOTE


def sums_agree(
    stated: Decimal,
    *,
    plus: list[Decimal],
    minus: tuple[Decimal, ...] | list[Decimal] = (),
    tolerance: Decimal,
    credit_note: bool,
) -> bool:
    """Does `stated` equal sum(plus) - sum(minus) within `tolerance`?

    Credit notes come with positive amounts (EN 16931) or negative ones (many ERPs),
    and sometimes mix the two between lines and totals; for a credit note the
    equation also holds when it holds for the magnitudes of the amounts.
    """
    zero = Decimal(0)
    if abs(stated - (sum(plus, zero) - sum(minus, zero))) <= tolerance:
        return True
    if not credit_note:
        return False
    magnitude = sum((abs(term) for term in plus), zero) - sum((abs(term) for term in minus), zero)
    return abs(abs(stated) - magnitude) <= tolerance


def invoice_lines(invoice: Invoice) -> list[InvoiceLine]:
    """The invoice's lines in position order (from the prefetch cache when there is one)."""
    return sorted(invoice.lines.all(), key=lambda line: line.position)


# --- identities ------------------------------------------------------------------------------------


def seller_key(invoice: Invoice) -> str:
    """Who sent it: the normalised VAT id, else the case-folded name; '' when neither is known."""
    return seller_key_for(invoice.seller_vat_id, invoice.seller_name)
