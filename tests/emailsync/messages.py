"""Build test emails carrying the real sample invoices."""

from __future__ import annotations

import io
import re
import zipfile
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

# shared/ lies beside the checkout (CI clones main next to it).
SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"
EINVOICES = SAMPLES / "einvoices"
SPAM = SAMPLES / "emails"

UBL = EINVOICES / "en16931-ubl" / "ubl-tc434-example1.xml"
CII = EINVOICES / "en16931-cii" / "CII_example1.xml"
FACTURX = EINVOICES / "facturx-zugferd" / "Facture_FR_BASICWL.pdf"
PLAIN_PDF = EINVOICES / "unstructured-pdf" / "hetzner-2016-01-19.pdf"
PEPPOL_A = EINVOICES / "peppol-bis3" / "base-example.xml"
PEPPOL_B = EINVOICES / "peppol-bis3" / "vat-category-E.xml"


def invoice_mail(
    subject: str,
    attachments: list[tuple[str, bytes, str]],
    *,
    message_id: str | None = None,
    sender: str = "billing@supplier.example",
) -> bytes:
    """A message from a supplier with the given (filename, bytes, mime type) attachments."""
    import datetime as dt

    message = EmailMessage()
    message["From"] = sender
    message["To"] = "ap@buyer.example"
    message["Subject"] = subject
    message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    message["Message-ID"] = message_id or make_msgid(domain="supplier.example")
    message.set_content("Please find our invoice attached.")
    for filename, content, mime in attachments:
        maintype, subtype = mime.split("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def file_attachment(path: Path) -> tuple[str, bytes, str]:
    mime = "application/pdf" if path.suffix.lower() == ".pdf" else "application/xml"
    return path.name, path.read_bytes(), mime


def zip_attachment(name: str, paths: list[Path]) -> tuple[str, bytes, str]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            archive.writestr(path.name, path.read_bytes())
    return name, buffer.getvalue(), "application/zip"


def plain_mail(subject: str) -> bytes:
    return invoice_mail(subject, [])


def numbered_invoices(count: int, prefix: str) -> list[bytes]:
    """`count` emails, each with a distinct UBL invoice (its own number, so its own bytes)."""
    template = UBL.read_bytes()
    first_id = re.search(rb"<cbc:ID>[^<]*</cbc:ID>", template).group(0)
    return [
        invoice_mail(
            f"Invoice {prefix}-{n}",
            [
                (
                    f"{prefix}-{n}.xml",
                    template.replace(first_id, f"<cbc:ID>{prefix}-{n}</cbc:ID>".encode(), 1),
                    "application/xml",
                )
            ],
        )
        for n in range(count)
    ]
