"""Every validation rule, one small module per family, in the order they run and are listed."""

from __future__ import annotations

from invoices.validation.base import Rule
from invoices.validation.rules.currency import Iso4217Rule
from invoices.validation.rules.dates import DueBeforeIssueRule, IssueInFutureRule, IssueTooOldRule
from invoices.validation.rules.duplicates import DuplicateNumberRule, DuplicateSuspectRule
from invoices.validation.rules.en16931 import OfficialEn16931Rule
from invoices.validation.rules.fields import LowConfidenceRule, MissingFieldsRule, ScanRule
from invoices.validation.rules.identifiers import IbanRule, SellerVatIdRule
from invoices.validation.rules.totals import AmountDueRule, LinesSumRule, NetFromLinesRule, NetTaxGrossRule
from invoices.validation.rules.vat import BreakdownRateRule, BreakdownSumRule
from invoices.validation.rules.vendor import (
    ApprovalThresholdRule,
    BlockedVendorRule,
    PurchaseOrderRequiredRule,
    UnknownVendorRule,
)

ALL_RULES: tuple[Rule, ...] = (
    MissingFieldsRule(),
    LowConfidenceRule(),
    ScanRule(),
    LinesSumRule(),
    NetFromLinesRule(),
    NetTaxGrossRule(),
    AmountDueRule(),
    BreakdownSumRule(),
    BreakdownRateRule(),
    DueBeforeIssueRule(),
    IssueInFutureRule(),
    IssueTooOldRule(),
    Iso4217Rule(),
    SellerVatIdRule(),
    IbanRule(),
    OfficialEn16931Rule(),
    DuplicateNumberRule(),
    DuplicateSuspectRule(),
    UnknownVendorRule(),
    BlockedVendorRule(),
    PurchaseOrderRequiredRule(),
    ApprovalThresholdRule(),
)
