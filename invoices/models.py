"""Vendors, invoices, their lines and findings, validation rule settings, exports."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from invoices.identity import (
    iban_problem,
    normalise_iban,
    normalise_invoice_number,
    normalise_vat_id,
    seller_key_for,
    vat_id_problem,
)

# The fields seller_key and number_key are made from.
KEY_SOURCES = frozenset({"seller_vat_id", "seller_name", "invoice_number"})

MONEY = {"max_digits": 18, "decimal_places": 2, "null": True, "blank": True}


class Vendor(models.Model):
    """The vendor master: who may send us invoices, and their approval limit."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        BLOCKED = "blocked", "Blocked"

    name = models.CharField(max_length=200)
    vat_id = models.CharField(max_length=40, blank=True, default="", help_text="Normalised: no spaces, upper case.")
    iban = models.CharField(max_length=40, blank=True, default="")
    country = models.CharField(max_length=2, blank=True, default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    approval_limit = models.DecimalField(
        max_digits=18,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Invoices above this gross amount need approval.",
    )
    requires_purchase_order = models.BooleanField(default=False)
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["vat_id"], condition=~Q(vat_id=""), name="vendor_unique_vat_id"),
        ]
        indexes = [models.Index(fields=["name"], name="vendor_name")]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        """The VAT id and IBAN as compared (normalised), and well formed: the same checks the
        validation rules make of an invoice's seller (invoices.identity)."""
        super().clean()
        self.vat_id, self.iban, self.country = (
            normalise_vat_id(self.vat_id),
            normalise_iban(self.iban),
            self.country.upper(),
        )
        errors = {}
        vat_problem = vat_id_problem(self.vat_id, country=self.country)
        if vat_problem:
            errors["vat_id"] = vat_problem
        account_problem = iban_problem(self.iban)
        if account_problem:
            errors["iban"] = account_problem
        if errors:
            raise ValidationError(errors)


class InvoiceStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    EXTRACTED = "extracted", "Extracted"
    VALIDATED = "validated", "Validated"
    NEEDS_REVIEW = "needs_review", "Needs review"
    FAILED = "failed", "Failed"
    DUPLICATE = "duplicate", "Duplicate file"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPORTED = "exported", "Exported"


EXPORTABLE_STATUSES = (InvoiceStatus.VALIDATED, InvoiceStatus.APPROVED)


class InvoiceSource(models.TextChoices):
    UPLOAD = "upload", "Upload"
    EMAIL = "email", "Email"
    FOLDER = "folder", "Drop folder"
    COMMAND = "command", "Command"
    ADMIN = "admin", "Admin"


class OcrStatus(models.TextChoices):
    NOT_NEEDED = "", "Not needed"
    DONE = "done", "Read by OCR"
    UNAVAILABLE = "unavailable", "OCR not installed"
    DISABLED = "disabled", "OCR switched off"


class InvoiceType(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"


class Invoice(models.Model):
    """One file a supplier sent, and what we read from it (EN 16931 terms)."""

    status = models.CharField(max_length=12, choices=InvoiceStatus.choices, default=InvoiceStatus.RECEIVED)
    source = models.CharField(max_length=10, choices=InvoiceSource.choices)
    source_ref = models.CharField(
        max_length=300, blank=True, default="", help_text="Where it came from: a path, a message id."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="invoices"
    )
    original = models.FileField(max_length=300, upload_to="originals/")
    original_filename = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates"
    )
    error = models.TextField(blank=True, default="")
    # OCR of a scan or photo (invoices/ocr/): the searchable PDF is a derived file; the original is untouched.
    searchable_pdf = models.FileField(
        max_length=300,
        upload_to="derived/",
        blank=True,
        default="",
        help_text="The original with a text layer added by OCR, when it was a scan.",
    )
    ocr_status = models.CharField(max_length=12, choices=OcrStatus.choices, blank=True, default="")
    ocr_pages = models.PositiveIntegerField(default=0, help_text="Pages read by OCR.")
    ocr_confidence = models.FloatField(null=True, blank=True, help_text="Mean OCR word confidence, 0 to 1.")

    format = models.CharField(max_length=12, blank=True, default="")
    profile = models.CharField(max_length=200, blank=True, default="")
    invoice_number = models.CharField(max_length=100, blank=True, default="")  # BT-1
    type = models.CharField(max_length=12, choices=InvoiceType.choices, default=InvoiceType.INVOICE)
    type_code = models.CharField(max_length=5, blank=True, default="")  # BT-3
    issue_date = models.DateField(null=True, blank=True)  # BT-2
    due_date = models.DateField(null=True, blank=True)  # BT-9
    currency = models.CharField(max_length=3, blank=True, default="")  # BT-5
    buyer_reference = models.CharField(max_length=200, blank=True, default="")  # BT-10
    purchase_order_reference = models.CharField(max_length=200, blank=True, default="")  # BT-13
    seller_name = models.CharField(max_length=200, blank=True, default="")  # BT-27
    seller_vat_id = models.CharField(max_length=40, blank=True, default="")  # BT-31
    seller_country = models.CharField(max_length=2, blank=True, default="")  # BT-40
    buyer_name = models.CharField(max_length=200, blank=True, default="")  # BT-44
    buyer_vat_id = models.CharField(max_length=40, blank=True, default="")  # BT-48
    buyer_country = models.CharField(max_length=2, blank=True, default="")  # BT-55
    payment_iban = models.CharField(max_length=40, blank=True, default="")  # BT-84
    line_total = models.DecimalField(**MONEY)  # BT-106
    allowance_total = models.DecimalField(**MONEY)  # BT-107
    charge_total = models.DecimalField(**MONEY)  # BT-108
    total_net = models.DecimalField(**MONEY)  # BT-109
    tax_total = models.DecimalField(**MONEY)  # BT-110
    total_gross = models.DecimalField(**MONEY)  # BT-112
    prepaid_amount = models.DecimalField(**MONEY)  # BT-113
    rounding_amount = models.DecimalField(**MONEY)  # BT-114
    amount_due = models.DecimalField(**MONEY)  # BT-115
    vat_breakdown = models.JSONField(default=list, blank=True)  # BG-23, amounts as strings
    confidence = models.JSONField(default=dict, blank=True)
    extraction_warnings = models.JSONField(default=list, blank=True)
    vendor = models.ForeignKey(Vendor, null=True, blank=True, on_delete=models.SET_NULL, related_name="invoices")
    # A person linked the vendor (review desk): re-validation keeps it instead of matching again.
    vendor_confirmed = models.BooleanField(default=False)
    # What extraction read, flat by field path ({"total_gross": "12.00", "lines[2].quantity": "3"}),
    # so the extracted value stays readable after corrections (invoices/corrections.py).
    extracted_values = models.JSONField(default=dict, blank=True, editable=False)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_invoices",
        help_text="Who works on it in the review queue.",
    )
    # Kept with the findings so lists can show it without counting per row.
    issue_count = models.PositiveIntegerField(default=0)
    # Seller and number as the duplicate rules compare them (invoices/identity.py), set by save().
    seller_key = models.CharField(max_length=250, blank=True, default="", editable=False)
    number_key = models.CharField(max_length=100, blank=True, default="", editable=False)

    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True, default="")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    extracted_at = models.DateTimeField(null=True, blank=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    exported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One original per content; later copies are `duplicate` rows pointing at it.
            models.UniqueConstraint(
                fields=["sha256"], condition=Q(duplicate_of__isnull=True), name="invoice_one_original_per_content"
            ),
        ]
        indexes = [
            models.Index(fields=["-created_at"], name="invoice_created"),
            models.Index(fields=["status", "-created_at"], name="invoice_status"),
            models.Index(fields=["owner", "-created_at"], name="invoice_owner"),
            models.Index(fields=["sha256"], name="invoice_sha256"),
            models.Index(fields=["seller_key", "number_key"], name="invoice_seller_number_key"),
            models.Index(fields=["seller_key", "total_gross"], name="invoice_seller_total"),
            models.Index(fields=["vendor", "issue_date"], name="invoice_vendor_date"),
            models.Index(fields=["updated_at"], name="invoice_updated"),
            models.Index(fields=["assigned_to", "status"], name="invoice_assigned"),
        ]
        permissions = [
            ("approve_invoice", "Can approve or reject invoices"),
            ("export_invoice", "Can export invoices"),
            ("reprocess_invoice", "Can reprocess invoices"),
            ("view_all", "Can see every invoice (the AP team's, not only own uploads)"),
            ("approve_above_threshold", "Can approve invoices above the approval threshold"),
        ]

    def __str__(self) -> str:
        number = self.invoice_number or self.original_filename
        return f"{self.seller_name or 'Invoice'} {number}".strip()

    def save(self, *args, **kwargs) -> None:
        self.seller_key = seller_key_for(self.seller_vat_id, self.seller_name)[:250]
        self.number_key = normalise_invoice_number(self.invoice_number)[:100]
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and not KEY_SOURCES.isdisjoint(update_fields):
            kwargs["update_fields"] = {*update_fields, "seller_key", "number_key"}
        super().save(*args, **kwargs)


class InvoiceCorrection(models.Model):
    """One field a person changed: what extraction read, what it was before, what it is now.

    Values are stored as the API writes them (decimal strings, ISO dates, text, or a
    line as an object for `lines[N]` added or removed). Reprocessing replays the
    active corrections over the new extraction; discarding them sets `discarded_at`
    (the history stays).
    """

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="corrections")
    field_path = models.CharField(max_length=60, help_text="e.g. total_gross, lines[2].quantity, lines[3]")
    extracted_value = models.JSONField(null=True, blank=True, help_text="What extraction read.")
    previous_value = models.JSONField(null=True, blank=True, help_text="The value just before this change.")
    new_value = models.JSONField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user_label = models.CharField(max_length=150, blank=True, default="")
    reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    discarded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["invoice", "created_at", "pk"]
        indexes = [models.Index(fields=["invoice", "created_at"], name="correction_invoice")]

    def __str__(self) -> str:
        return f"{self.field_path}: {self.previous_value!r} -> {self.new_value!r}"


class InvoiceLine(models.Model):
    """One line (BG-25)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    line_id = models.CharField(max_length=100, blank=True, default="")  # BT-126
    name = models.CharField(max_length=500, blank=True, default="")  # BT-153
    quantity = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)  # BT-129
    unit_code = models.CharField(max_length=10, blank=True, default="")  # BT-130
    net_price = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)  # BT-146
    line_amount = models.DecimalField(**MONEY)  # BT-131
    vat_category = models.CharField(max_length=5, blank=True, default="")  # BT-151
    vat_rate = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)  # BT-152

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [models.UniqueConstraint(fields=["invoice", "position"], name="invoiceline_position")]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"


class Severity(models.TextChoices):
    ERROR = "error", "Error"
    WARNING = "warning", "Warning"


class ValidationIssue(models.Model):
    """A finding of a validation rule on an invoice."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="issues")
    code = models.CharField(max_length=60)
    severity = models.CharField(max_length=7, choices=Severity.choices)
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["invoice", "-severity", "code"]
        indexes = [models.Index(fields=["code", "severity"], name="issue_code")]

    def __str__(self) -> str:
        return f"{self.severity} {self.code}: {self.message}"


class ValidationRuleSetting(models.Model):
    """Switch a validation rule on or off and tune it, from the admin.

    The rules themselves are code (invoices/validation/); a row per rule is
    created with its defaults the first time the rules run.
    """

    code = models.CharField(max_length=60, unique=True)
    enabled = models.BooleanField(default=True)
    severity = models.CharField(max_length=7, choices=Severity.choices)
    parameters = models.JSONField(default=dict, blank=True)
    description = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def clean(self):
        super().clean()
        if not isinstance(self.parameters, dict):
            raise ValidationError({"parameters": 'The parameters must be a JSON object, e.g. {"max_age_days": 365}.'})


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    JSON = "json", "JSON"
    UBL = "ubl", "UBL 2.1 (zip of XML files)"


class ExportBatch(models.Model):
    """A set of invoices written to one file for the ERP."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    format = models.CharField(max_length=4, choices=ExportFormat.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="exports"
    )
    invoices = models.ManyToManyField(Invoice, through="ExportItem", related_name="export_batches")
    file = models.FileField(max_length=300, upload_to="exports/", blank=True)
    file_deleted_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "export batches"
        indexes = [models.Index(fields=["-created_at"], name="export_created")]

    def __str__(self) -> str:
        return f"Export {self.pk} ({self.format})"


class ExportItem(models.Model):
    batch = models.ForeignKey(ExportBatch, on_delete=models.CASCADE, related_name="items")
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="export_items")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["batch", "invoice"], name="exportitem_once")]

    def __str__(self) -> str:
        return f"{self.batch_id}:{self.invoice_id}"
