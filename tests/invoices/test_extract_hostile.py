"""Hostile and broken input: every file ends as an invoice or as InvalidInvoice, never a crash or a leak."""

from __future__ import annotations

import io
import random
import socket
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader, PdfWriter

from invoices.extract import extract
from invoices.extract.base import ExtractedInvoice, InvalidInvoice
from tests.invoices.einvoice_reference import SAMPLES, embedded_xml

UBL_OPEN = (
    b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" '
    b'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">'
)
PASSWD = Path("/etc/passwd")


def _refused(content: bytes) -> InvalidInvoice:
    with pytest.raises(InvalidInvoice) as caught:
        extract(content)
    return caught.value


def _leaks_passwd(text: str) -> bool:
    first_line = PASSWD.read_text().splitlines()[0] if PASSWD.exists() else "root:x:0:0"
    return first_line in text or "root:" in text


XXE_DOCUMENTS = {
    "general entity": b'<?xml version="1.0"?>\n<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    + UBL_OPEN
    + b"<cbc:ID>&xxe;</cbc:ID><cbc:IssueDate>2024-01-01</cbc:IssueDate>"
    b"<cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode></Invoice>",
    "parameter entity": b'<?xml version="1.0"?>\n<!DOCTYPE Invoice [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>\n'
    + UBL_OPEN
    + b"<cbc:ID>1</cbc:ID></Invoice>",
    "after a comment": b'<!-- hello -->\n<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    + UBL_OPEN
    + b"<cbc:ID>&xxe;</cbc:ID></Invoice>",
}


@pytest.mark.parametrize("content", XXE_DOCUMENTS.values(), ids=XXE_DOCUMENTS.keys())
def test_external_entities_are_refused_and_never_read(content):
    error = _refused(content)
    assert "DOCTYPE" in str(error)
    assert not _leaks_passwd(str(error))


def test_utf16_xxe_is_caught_after_parsing_and_leaks_nothing():
    content = XXE_DOCUMENTS["general entity"].decode().replace('version="1.0"?>', 'version="1.0" encoding="UTF-16"?>')
    error = _refused(content.encode("utf-16"))
    assert "DOCTYPE" in str(error)
    assert not _leaks_passwd(str(error))


def test_xinclude_is_not_processed():
    content = (
        (SAMPLES / "peppol-bis3" / "base-example.xml")
        .read_bytes()
        .replace(
            b"<cbc:BuyerReference>",
            b'<cbc:Note><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" '
            b'parse="text"/></cbc:Note><cbc:BuyerReference>',
            1,
        )
    )
    invoice = extract(content)
    assert not any(_leaks_passwd(str(value)) for value in vars(invoice).values() if value is not invoice.xml)


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE Invoice [\n <!ENTITY lol "lol">\n'
    + b"".join(
        b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10)
    )
    + b"]>\n"
    + UBL_OPEN
    + b"<cbc:ID>&lol9;</cbc:ID></Invoice>"
)


def test_entity_bomb_is_refused_quickly():
    started = time.monotonic()
    error = _refused(BILLION_LAUGHS)
    assert "DOCTYPE" in str(error)
    assert time.monotonic() - started < 2


def test_dtd_on_the_network_is_never_fetched():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.3)
        port = listener.getsockname()[1]
        content = (
            b'<?xml version="1.0"?>\n<!DOCTYPE Invoice SYSTEM "http://127.0.0.1:%d/invoice.dtd">\n' % port
            + UBL_OPEN
            + b"<cbc:ID>1</cbc:ID></Invoice>"
        )

        error = _refused(content)

        assert "DOCTYPE" in str(error)
        with pytest.raises(TimeoutError):
            listener.accept()


def _pdf_with(attachments: dict[str, bytes]) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    for name, data in attachments.items():
        writer.add_attachment(name, data)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize("payload", [XXE_DOCUMENTS["general entity"], BILLION_LAUGHS], ids=["xxe", "bomb"])
def test_hostile_xml_inside_a_pdf_is_refused_too(payload):
    started = time.monotonic()
    error = _refused(_pdf_with({"factur-x.xml": payload}))
    assert "DOCTYPE" in str(error)
    assert not _leaks_passwd(str(error))
    assert time.monotonic() - started < 5


def test_encrypted_pdf_is_refused():
    writer = PdfWriter(clone_from=PdfReader(SAMPLES / "facturx-zugferd" / "ZUGFeRD_1p0_COMFORT_Einfach.pdf"))
    writer.encrypt(user_password="let-me-in", owner_password="owner", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    assert "encrypted" in str(_refused(out.getvalue()))


XML_SAMPLES = {
    "ubl": SAMPLES / "peppol-bis3" / "base-example.xml",
    "cii": SAMPLES / "en16931-cii" / "CII_example3.xml",
    "xrechnung-cii": SAMPLES / "facturx-zugferd" / "testout-XR.xml",
}
PDF_SAMPLES = {
    "facturx": SAMPLES / "facturx-zugferd" / "Facture_FR_BASICWL.pdf",
    "zugferd1": SAMPLES / "facturx-zugferd" / "ZUGFeRD_1p0_BASIC_Einfach.pdf",
}


def _zugferd1_xml() -> bytes:
    return embedded_xml(PDF_SAMPLES["zugferd1"].read_bytes())


@pytest.mark.parametrize("fraction", [0.0005, 0.1, 0.5, 0.9, 0.999])
@pytest.mark.parametrize("name", [*XML_SAMPLES, "zugferd1-xml"])
def test_truncated_xml_is_invalid(name, fraction):
    content = _zugferd1_xml() if name == "zugferd1-xml" else XML_SAMPLES[name].read_bytes()
    cut = content[: max(1, int(len(content) * fraction))]
    error = _refused(cut)
    assert str(error)


@pytest.mark.parametrize("fraction", [0.001, 0.1, 0.5])
@pytest.mark.parametrize("name", PDF_SAMPLES)
def test_truncated_pdf_is_invalid(name, fraction):
    content = PDF_SAMPLES[name].read_bytes()
    error = _refused(content[: int(len(content) * fraction)])
    assert "PDF" in str(error)


@pytest.mark.parametrize("name", PDF_SAMPLES)
def test_pdf_missing_only_its_last_bytes_is_read_or_refused_never_crashes(name):
    """A PDF whose tail is cut may still have readable pages; the text reader may then read it."""
    content = PDF_SAMPLES[name].read_bytes()
    try:
        invoice = extract(content[: int(len(content) * 0.95)])
    except InvalidInvoice as error:
        assert str(error)
    else:
        assert isinstance(invoice, ExtractedInvoice)


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_are_unrecognised(seed):
    content = random.Random(seed).randbytes(4096)
    assert str(_refused(content)).startswith("Unrecognised file")


@pytest.mark.parametrize("content", [b"", b"%PDF-", b"%PDF-1.7\n%%EOF", b"<", b"\xef\xbb\xbf", b"\xff\xfe"])
def test_empty_and_degenerate_files_are_invalid(content):
    assert str(_refused(content))


def test_non_invoice_xml_is_unrecognised():
    rss = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>Invoices blog</title>'
        b"<item><title>How to pay</title><link>https://example.org/</link></item></channel></rss>"
    )
    error = _refused(rss)
    assert str(error).startswith("Unrecognised file") and "rss" in str(error)


# Property-based: any mutation of a real sample is read or refused, never anything else.

MUTATION_SOURCES = [
    XML_SAMPLES["ubl"].read_bytes(),
    XML_SAMPLES["cii"].read_bytes(),
    _zugferd1_xml(),
    PDF_SAMPLES["facturx"].read_bytes(),
]


@st.composite
def mutated_sample(draw):
    content = bytearray(draw(st.sampled_from(MUTATION_SOURCES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        position = draw(st.integers(min_value=0, max_value=len(content) - 1))
        kind = draw(st.sampled_from(["flip", "delete", "insert"]))
        if kind == "flip":
            content[position] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif kind == "delete":
            del content[position : position + draw(st.integers(min_value=1, max_value=64))]
        else:
            content[position:position] = draw(st.binary(min_size=1, max_size=32))
        if not content:
            break
    return bytes(content)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutated_sample())
def test_mutated_samples_are_read_or_refused(content):
    try:
        invoice = extract(content)
    except InvalidInvoice as error:
        event("refused")
        assert str(error)
    else:
        event(f"read as {invoice.format}")
        assert isinstance(invoice, ExtractedInvoice)
        assert invoice.format in {"ubl", "cii", "zugferd1", "facturx", "pdf-text", "csv"}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2048), st.sampled_from([b"", b"<", b"%PDF-1.4\n", b"\xef\xbb\xbf<?xml version='1.0'?>"]))
def test_arbitrary_bytes_are_read_or_refused(tail, head):
    try:
        extract(head + tail)
    except InvalidInvoice as error:
        assert str(error)
