"""Which parts of an email become invoice candidates, and why the others are skipped."""

from __future__ import annotations

import datetime as dt
import io
import struct
import zipfile
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from emailsync.attachments import candidate_attachments, display_filename
from emailsync.errors import UnparseableMessage

SHARED_SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"  # shared/ beside the checkout
EMAILS = SHARED_SAMPLES / "emails"
EINVOICES = SHARED_SAMPLES / "einvoices"
UBL_XML = EINVOICES / "en16931-ubl" / "ubl-tc434-example1.xml"
FACTURX_PDF = EINVOICES / "facturx-zugferd" / "Facture_FR_BASICWL.pdf"
CII_XML = EINVOICES / "en16931-cii" / "CII_example1.xml"
MB = 1024 * 1024


def message_with(*attachments: tuple[str | None, str, bytes], subject: str = "Invoice") -> bytes:
    """A message with a text body and the given (filename, mime type, content) attachments."""
    message = EmailMessage()
    message["From"] = "Supplier <billing@supplier.example>"
    message["To"] = "ap@buyer.example"
    message["Subject"] = subject
    message["Message-ID"] = "<inv-1@supplier.example>"
    message["Date"] = "Sat, 01 Mar 2025 09:30:00 +0100"
    message.set_content("Invoice attached.\n")
    for filename, mime_type, content in attachments:
        maintype, subtype = mime_type.split("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(message)


def zip_of(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def names_and_reasons(parsed) -> list[tuple[str | None, str]]:
    return [(part.filename, part.reason) for part in parsed.skipped]


# -- the sample emails: what a person sees in each ---------------------------------


def test_sample_malformed_1_zip_after_a_reused_boundary_is_found_and_its_exe_skipped():
    parsed = candidate_attachments((EMAILS / "malformed_1.eml").read_bytes())
    assert parsed.subject == "immagine"
    assert parsed.message_id == "<791407.263728.a23f87@y.ewreqr.org>"
    assert parsed.candidates == []
    # The zip (named in the file's last part) holds one program, named in its central directory.
    assert [(p.filename, p.archive, p.reason) for p in parsed.skipped] == [
        ("20160523_211439.jpg_.jpg.exe", "20160523_916527.jpg_.zip", "not an invoice type (application/octet-stream)")
    ]


def test_sample_malformed_2_delivery_report():
    parsed = candidate_attachments((EMAILS / "malformed_2.eml").read_bytes())
    assert parsed.subject == "Delivery failure (abh@netpar.com.br)"
    assert parsed.candidates == []
    assert names_and_reasons(parsed) == [("DSN57BAC498.txt", "not an invoice type (message/delivery-status)")]


def test_sample_malformed_3_broken_boundary_has_no_attachments():
    parsed = candidate_attachments((EMAILS / "malformed_3.eml").read_bytes())
    assert parsed.subject == "Ahorre Dinero en su Recibo de Luz"
    assert parsed.sender == "El Punto de los Frutos & Verdes <smgsiso@yahoo.com.mx>"
    assert parsed.date == dt.datetime(2017, 3, 20, 5, 12, 54, tzinfo=dt.timezone(dt.timedelta(hours=6)))
    assert (parsed.candidates, parsed.skipped) == ([], [])


def test_sample_test_1_russian_zip_holding_another_zip():
    parsed = candidate_attachments((EMAILS / "test_1.eml").read_bytes())
    assert parsed.subject == "письмо уведом-е"  # noqa: RUF001 - Cyrillic on purpose
    assert parsed.sender == "служба ФНС Даниил Суворов <suvorov.s@nalg.ru>"
    assert parsed.message_id is None and parsed.date is None  # the file has neither header
    assert parsed.candidates == []
    [nested] = parsed.skipped
    assert nested.archive == "ФНС_РФ558.zip"  # noqa: RUF001 - Cyrillic on purpose
    assert nested.filename.endswith("94.zip")  # a cp866 name, shown as zipfile reads it
    assert nested.reason == "nested zip archive not expanded"


def test_sample_test_2_pdf_bulletin_and_inline_logos():
    parsed = candidate_attachments((EMAILS / "test_2.eml").read_bytes())
    [bulletin] = parsed.candidates
    assert bulletin.filename == "Bollettino.pdf"
    assert bulletin.detected_kind == "pdf"
    assert bulletin.content_type == "application/octet-stream"  # declared generically; the bytes say PDF
    assert bulletin.content.startswith(b"%PDF-1.4")
    assert bulletin.content.rstrip().endswith(b"%%EOF")
    assert names_and_reasons(parsed) == [
        ("intestazione.jpg", "not an invoice type (image/jpeg)"),
        ("logometeo.jpg", "not an invoice type (image/jpeg)"),
    ]


def test_sample_test_3_firewall_notice_text_file():
    parsed = candidate_attachments((EMAILS / "test_3.eml").read_bytes())
    assert parsed.candidates == []
    assert names_and_reasons(parsed) == [("message.txt", "not an invoice type (text/plain)")]


def test_sample_test_4_payment_invoice_zip_with_a_program_inside():
    parsed = candidate_attachments((EMAILS / "test_4.eml").read_bytes())
    assert parsed.subject == "PI"
    assert parsed.candidates == []
    assert [(p.filename, p.archive, p.reason) for p in parsed.skipped] == [
        ("img1.jpg", None, "not an invoice type (image/jpeg)"),
        ("IMG-PO-492384BA_outputB93880.exe", "Payment Invoice.zip", "not an invoice type (application/octet-stream)"),
    ]


def test_sample_test_5_newsletter_images_with_rfc2231_names():
    parsed = candidate_attachments((EMAILS / "test_5.eml").read_bytes())
    assert parsed.subject == "Je prépare mon été zéro complexe !"
    assert parsed.candidates == []
    # The names are percent-encoded in filename*0*..*3* continuations in the file.
    assert names_and_reasons(parsed) == [
        ("mailingassets_d68799cd6301c7f5731a3c42946e528bcb78eb84.jpg", "not an invoice type (image/jpeg)"),
        ("mailingassets_a9ed45ff2645cff7fca702b289bc684b1bc72e2a.png", "not an invoice type (image/png)"),
        ("mailingassets_0e4def97310df75c2fa6e0db8fe67b79d130b3c3.png", "not an invoice type (image/png)"),
        ("mailingassets_228b182da05725833a4003dcbd8f6fe67956ad40.png", "not an invoice type (image/png)"),
        ("mailingassets_4545af8d596bb510a1181c9a3be0460bc5718649.png", "not an invoice type (image/png)"),
    ]


def test_sample_test_6_nameless_inline_images_are_part_of_the_body():
    parsed = candidate_attachments((EMAILS / "test_6.eml").read_bytes())
    assert parsed.subject == "Быстрее вкладывайте в золото!"
    assert (parsed.candidates, parsed.skipped) == ([], [])


def test_sample_test_7_forwarded_order_with_a_pdf():
    parsed = candidate_attachments((EMAILS / "test_7.eml").read_bytes())
    assert parsed.subject == "I: Ordine"
    [order] = parsed.candidates
    assert (order.filename, order.detected_kind, order.content_type) == (
        "20170609091403417.pdf",
        "pdf",
        "application/pdf",
    )
    assert names_and_reasons(parsed) == [
        ("image001.jpg", "not an invoice type (image/jpeg)"),
        ("att24916.htm", "not an invoice type (text/html)"),
        ("image002.jpg", "not an invoice type (image/jpeg)"),
        ("att09558.htm", "not an invoice type (text/html)"),
        ("image003.jpg", "not an invoice type (image/jpeg)"),
        ("att04803.htm", "not an invoice type (text/html)"),
        ("att18831.htm", "not an invoice type (text/html)"),
    ]


@pytest.mark.parametrize(
    ("sample", "subject"),
    [
        ("test_8.eml", "Have you ever wanted to land on an Aircraft Carrier"),
        # gb2312-labelled GBK text
        ("test_9.eml", "我把镜头拉近些，你们看看这个是什么屄，这种场合自然少不了内射"),  # noqa: RUF001
    ],
)
def test_samples_without_attachments(sample, subject):
    parsed = candidate_attachments((EMAILS / sample).read_bytes())
    assert parsed.subject == subject
    assert (parsed.candidates, parsed.skipped) == ([], [])


# -- generated messages -------------------------------------------------------------


def test_pdf_xml_and_csv_attachments_are_candidates_with_their_exact_bytes():
    pdf, xml = FACTURX_PDF.read_bytes(), UBL_XML.read_bytes()
    csv = "Invoice;Date;Net;VAT;Gross\nR-1001;2025-03-01;100,00;19,00;119,00\nR-1002;2025-03-02;50,00;9,50;59,50\n"
    parsed = candidate_attachments(
        message_with(
            ("Facture_FR_BASICWL.pdf", "application/pdf", pdf),
            ("ubl-invoice.xml", "application/xml", xml),
            ("invoices.csv", "text/csv", csv.encode()),
        )
    )
    assert parsed.subject == "Invoice"
    assert parsed.message_id == "<inv-1@supplier.example>"
    assert parsed.date == dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert [(a.filename, a.detected_kind) for a in parsed.candidates] == [
        ("Facture_FR_BASICWL.pdf", "pdf"),
        ("ubl-invoice.xml", "xml"),
        ("invoices.csv", "csv"),
    ]
    assert parsed.candidates[0].content == pdf
    assert parsed.candidates[1].content == xml
    assert parsed.candidates[2].content.decode() == csv
    assert parsed.skipped == []


def test_kind_comes_from_the_bytes_not_the_declared_type():
    parsed = candidate_attachments(
        message_with(
            ("scan0001.bin", "application/octet-stream", FACTURX_PDF.read_bytes()),
            ("data.txt", "text/plain", CII_XML.read_bytes()),
            ("invoice.pdf", "application/pdf", b"MZ\x90\x00 this is a Windows program"),
            ("photo.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(100)),
        )
    )
    assert [(a.filename, a.detected_kind) for a in parsed.candidates] == [("scan0001.bin", "pdf"), ("data.txt", "xml")]
    assert names_and_reasons(parsed) == [
        ("invoice.pdf", "declared as PDF but the content is not PDF"),
        ("photo.png", "not an invoice type (image/png)"),
    ]


def test_html_is_not_taken_for_xml():
    page = b"<!DOCTYPE html>\n<html><body><p>Invoice</p></body></html>"
    parsed = candidate_attachments(message_with(("invoice.html", "text/html", page)))
    assert parsed.candidates == []
    assert names_and_reasons(parsed) == [("invoice.html", "not an invoice type (text/html)")]


def test_zip_with_invoices_is_expanded_one_level():
    archive = zip_of(
        {
            "2025/03/Facture.pdf": FACTURX_PDF.read_bytes(),
            "2025/03/ubl.xml": UBL_XML.read_bytes(),
            "readme.png": b"\x89PNG\r\n\x1a\n" + bytes(50),
            "../../etc/evil.xml": b"<?xml version='1.0'?><Invoice/>",
        }
    )
    parsed = candidate_attachments(message_with(("invoices-march.zip", "application/zip", archive)))
    assert [(a.filename, a.detected_kind, a.archive) for a in parsed.candidates] == [
        ("Facture.pdf", "pdf", "invoices-march.zip"),
        ("ubl.xml", "xml", "invoices-march.zip"),
        ("evil.xml", "xml", "invoices-march.zip"),  # member paths are never kept, only the last name
    ]
    assert parsed.candidates[0].content == FACTURX_PDF.read_bytes()
    assert [(p.filename, p.archive, p.reason) for p in parsed.skipped] == [
        ("readme.png", "invoices-march.zip", "not an invoice type (image/png)")
    ]


def test_office_documents_are_not_expanded_as_archives():
    workbook = zip_of(
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
            "xl/workbook.xml": b'<?xml version="1.0"?><workbook/>',
            "xl/worksheets/sheet1.xml": b'<?xml version="1.0"?><worksheet/>',
        }
    )
    parsed = candidate_attachments(
        message_with(
            ("prices.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", workbook),
            ("unnamed-type.bin", "application/octet-stream", workbook),
        )
    )
    assert parsed.candidates == []
    assert names_and_reasons(parsed) == [
        ("prices.xlsx", "not an invoice type (application/vnd.openxmlformats-officedocument.spreadsheetml.sheet)"),
        ("unnamed-type.bin", "not an invoice type (Office Open XML document)"),
    ]


def test_zip_bomb_is_refused_from_its_directory():
    bomb = zip_of({"invoice.xml": b"<" + b" " * (20 * MB) + b">"})
    parsed = candidate_attachments(message_with(("invoices.zip", "application/zip", bomb)), zip_max_ratio=100)
    assert parsed.candidates == []
    [refused] = parsed.skipped
    assert refused.filename == "invoices.zip"
    assert refused.reason.startswith("zip bomb: compression ratio ")
    ratio = int(refused.reason.split("ratio ")[1].split(" ")[0])
    assert ratio > 100
    assert refused.reason.endswith("> 100")


def test_zip_bomb_check_happens_before_decompressing():
    # A directory that promises a 1000:1 ratio but whose data is garbage: decompressing would fail with
    # "damaged"; the refusal says "zip bomb", so nothing was decompressed.
    archive = bytearray(zip_of({"a.xml": b"<a>" + b"x" * 100_000 + b"</a>"}))
    data_start = archive.index(b"a.xml") + len(b"a.xml")
    archive[data_start : data_start + 20] = b"\xff" * 20
    parsed = candidate_attachments(message_with(("a.zip", "application/zip", bytes(archive))), zip_max_ratio=10)
    assert parsed.skipped[0].reason.startswith("zip bomb")


def test_zip_with_too_many_members():
    archive = zip_of({f"invoice-{n}.xml": b"<Invoice/>" for n in range(12)}, compression=zipfile.ZIP_STORED)
    parsed = candidate_attachments(message_with(("many.zip", "application/zip", archive)), zip_max_members=10)
    assert parsed.candidates == []
    assert names_and_reasons(parsed) == [("many.zip", "zip: too many members (12 > 10)")]


def test_zip_members_too_large_in_total():
    archive = zip_of({"a.xml": b"<a>" + b"1" * MB + b"</a>", "b.xml": b"<b>" + b"2" * MB + b"</b>"})
    parsed = candidate_attachments(
        message_with(("big.zip", "application/zip", archive)), zip_max_total_bytes=MB, zip_max_ratio=10_000
    )
    assert names_and_reasons(parsed) == [("big.zip", "zip: members too large in total (2 MB > 1 MB)")]


def test_encrypted_and_nested_zip_members_are_skipped():
    inner = zip_of({"x.pdf": FACTURX_PDF.read_bytes()})
    archive = _with_encrypted_flag(
        zip_of(
            {"secret.pdf": b"%PDF-1.4 not really", "inner.zip": inner, "ok.xml": UBL_XML.read_bytes()},
            compression=zipfile.ZIP_STORED,
        ),
        member="secret.pdf",
    )
    parsed = candidate_attachments(message_with(("mixed.zip", "application/zip", archive)))
    assert [a.filename for a in parsed.candidates] == ["ok.xml"]
    assert names_and_reasons(parsed) == [
        ("secret.pdf", "encrypted zip member"),
        ("inner.zip", "nested zip archive not expanded"),
    ]


def test_damaged_zip_is_skipped_with_a_reason():
    parsed = candidate_attachments(message_with(("broken.zip", "application/zip", b"PK\x03\x04" + b"\x00" * 40)))
    [skipped] = parsed.skipped
    assert skipped.reason.startswith("damaged zip archive")


def test_attachment_over_the_size_limit():
    big = b"%PDF-1.4\n" + b"0" * (5 * MB // 2)
    parsed = candidate_attachments(message_with(("huge.pdf", "application/pdf", big)), max_bytes=2 * MB)
    assert parsed.candidates == []
    assert names_and_reasons(parsed) == [("huge.pdf", "over the size limit (2.5 MB > 2 MB)")]


def test_rfc2047_and_rfc2231_encoded_filenames_are_decoded():
    pdf = FACTURX_PDF.read_bytes()
    raw = (
        b"From: =?UTF-8?Q?B=C3=BCro_M=C3=BCller?= <rechnung@mueller.example>\r\n"
        b"Subject: =?ISO-8859-1?Q?Rechnung_f=FCr_M=E4rz?=\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain\r\n\r\nAnbei.\r\n"
        b"--b1\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="=?UTF-8?B?UmVjaG51bmcgTcOkcnoucGRm?="\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + _b64(pdf) + b"\r\n"
        b"--b1\r\nContent-Type: application/xml\r\n"
        b"Content-Disposition: attachment; filename*=UTF-8''Gr%C3%B6%C3%9Fe%20%E2%82%AC.xml\r\n\r\n"
        b"<?xml version='1.0'?><Invoice/>\r\n"
        b"--b1--\r\n"
    )
    parsed = candidate_attachments(raw)
    assert parsed.sender == "Büro Müller <rechnung@mueller.example>"
    assert parsed.subject == "Rechnung für März"
    assert [(a.filename, a.detected_kind) for a in parsed.candidates] == [
        ("Rechnung März.pdf", "pdf"),
        ("Größe €.xml", "xml"),
    ]
    assert parsed.candidates[0].content == pdf


def test_nameless_invoice_parts_get_a_generated_name():
    raw = (
        b"From: a@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--b\r\nContent-Type: text/xml\r\n\r\n<?xml version='1.0'?><Invoice/>\r\n"
        b"--b--\r\n"
    )
    parsed = candidate_attachments(raw)
    assert [(a.filename, a.detected_kind) for a in parsed.candidates] == [("attachment-1.xml", "xml")]


def test_forwarded_message_attachments_are_found_and_signatures_ignored():
    inner = message_with(("INV-7.pdf", "application/pdf", FACTURX_PDF.read_bytes()))
    outer = EmailMessage()
    outer["From"] = "colleague@buyer.example"
    outer["Subject"] = "Fwd: invoice"
    outer.set_content("See below.\n")
    outer.add_attachment(message_from_bytes(inner, policy=policy.default))
    parsed = candidate_attachments(bytes(outer))
    assert parsed.subject == "Fwd: invoice"
    assert [(a.filename, a.detected_kind) for a in parsed.candidates] == [("INV-7.pdf", "pdf")]

    signed = (
        b"From: a@example.com\r\nSubject: signed\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary="s"\r\n\r\n'
        b"--s\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b'--s\r\nContent-Type: application/pkcs7-signature; name="smime.p7s"\r\n'
        b'Content-Disposition: attachment; filename="smime.p7s"\r\n\r\nMIAGCSqGSIb3DQEHAqCAMIACAQEx\r\n--s--\r\n'
    )
    parsed = candidate_attachments(signed)
    assert (parsed.candidates, parsed.skipped) == ([], [])


def test_message_without_attachments():
    parsed = candidate_attachments(message_with(subject="Lunch?"))
    assert parsed.subject == "Lunch?"
    assert (parsed.candidates, parsed.skipped) == ([], [])


def test_header_that_breaks_the_modern_parser_falls_back():
    # Python's default email policy raises IndexError on this Content-Type parameter; compat32 reads it.
    raw = (
        b"From: a@example.com\r\nSubject: odd header\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: application/pdf; name*="\'"\r\n\r\n' + FACTURX_PDF.read_bytes()
    )
    parsed = candidate_attachments(raw)
    assert parsed.subject == "odd header"
    assert [a.detected_kind for a in parsed.candidates] == ["pdf"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"   \r\n\r\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), "No email headers"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "No email headers"),
    ],
)
def test_bytes_that_are_not_an_email_are_unparseable(raw, reason):
    with pytest.raises(UnparseableMessage, match=reason) as raised:
        candidate_attachments(raw)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("C:\\Users\\x\\invoice.pdf", "invoice.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # a right-to-left override would show "invoiceexe.pdf"
        ("line\nbreak\t.pdf", "linebreak.pdf"),
        ("..", None),
        ("", None),
        ("a" * 300 + ".pdf", "a" * 196 + ".pdf"),
    ],
)
def test_display_filename(name, shown):
    assert display_filename(name) == shown


# -- helpers ----------------------------------------------------------------------------


def _b64(data: bytes) -> bytes:
    import base64

    encoded = base64.b64encode(data)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def _with_encrypted_flag(archive: bytes, *, member: str) -> bytes:
    """Set the 'encrypted' bit of one member in both its local header and its central directory entry."""
    data = bytearray(archive)
    name = member.encode()
    for signature, flag_offset, name_offset in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        start = 0
        while (position := data.find(signature, start)) != -1:
            if data[position + name_offset : position + name_offset + len(name)] == name:
                (flags,) = struct.unpack_from("<H", data, position + flag_offset)
                struct.pack_into("<H", data, position + flag_offset, flags | 0x1)
            start = position + 4
    return bytes(data)


def _zip_of(name: str, size: int, seed: int) -> bytes:
    # Incompressible member bytes, so each archive is within the per-archive ratio limit.
    import random

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, random.Random(seed).randbytes(size))
    return buffer.getvalue()


def test_several_zips_within_their_own_limits_are_refused_together_over_the_message_budget():
    from emailsync.attachments import MessageOverBudget

    zips = [(f"batch{n}.zip", "application/zip", _zip_of(f"invoice{n}.pdf", 300_000, n)) for n in range(6)]
    raw = message_with(*zips)
    # Each archive alone is fine (300 kB < 1 MB), six of them expand to 1.8 MB.
    with pytest.raises(MessageOverBudget) as raised:
        candidate_attachments(raw, zip_max_total_bytes=1 * MB, message_max_expanded_bytes=1 * MB)
    assert "expand to more than 1 MB" in str(raised.value) and "batch3.zip" in str(raised.value)
    within = candidate_attachments(raw, zip_max_total_bytes=1 * MB, message_max_expanded_bytes=2 * MB)
    assert len(within.skipped) == 6  # random bytes are no invoices, but every archive was opened


def test_a_message_over_the_size_limit_is_refused_before_parsing():
    from emailsync.attachments import MessageOverBudget

    raw = message_with(("big.pdf", "application/pdf", b"%PDF-1.7\n" + b"0" * (2 * MB)))
    with pytest.raises(MessageOverBudget, match="over the limit of 1 MB"):
        candidate_attachments(raw, message_max_bytes=1 * MB)
