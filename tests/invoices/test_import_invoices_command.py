"""`import_invoices --sync --json` over every sample file: the contract's JSON
lines, with key fields checked against independent XPath reads of the files."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from invoices.models import Invoice
from tests.invoices.contract import CONTRACT_KEYS
from tests.invoices.einvoice_reference import SAMPLES, embedded_xml, reference_values

pytestmark = [pytest.mark.django_db]

ALL_FILES = sorted(p for p in SAMPLES.rglob("*") if p.is_file())  # the folder's README.md too
ALL_SAMPLES = [p for p in ALL_FILES if p.name != "README.md"]


def run_import(*paths) -> list[dict]:
    out = io.StringIO()
    call_command("import_invoices", *map(str, paths), "--sync", "--json", stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def expected_for(path):
    """What the file itself says, read without our extractor (None when it holds no structured XML)."""
    content = path.read_bytes()
    if path.suffix.lower() == ".pdf":
        import facturx

        _, xml = facturx.get_xml_from_pdf(content, check_xsd=False)
        return reference_values(embedded_xml(content) if xml else attached_xml_without_declaration(content))
    return reference_values(content)


def attached_xml_without_declaration(pdf: bytes) -> bytes:
    """The invoice XML attached to a PDF whose XML declaration factur-x rejects (an
    invalid encoding name), read with pypdf and with the declaration cut off."""
    import pypdf

    attachments = pypdf.PdfReader(io.BytesIO(pdf)).attachments
    [xml] = [data[0] for name, data in attachments.items() if name.lower().endswith(".xml")]
    return xml[xml.index(b"?>") + 2 :] if xml.lstrip().startswith(b"<?xml") else xml


def test_every_sample_goes_through_the_whole_pipeline():
    lines = run_import(SAMPLES)

    assert len(lines) == len(ALL_FILES)
    by_file = {line["file"]: line for line in lines}
    assert set(by_file) == {str(p) for p in ALL_FILES}
    for line in lines:
        assert set(line) == CONTRACT_KEYS, line["file"]
        assert line["status"] in {"validated", "needs_review", "failed", "duplicate"}, line
        # Nothing is lost: every file has a row and its original bytes.
        invoice = Invoice.objects.get(pk=line["invoice_id"])
        assert invoice.original.read() == Path(line["file"]).read_bytes()
    failed = {line["file"].rsplit("/", 1)[1]: line for line in lines if line["status"] == "failed"}
    assert all(line["error"] for line in failed.values())
    # The one sample that is not a readable invoice says why (BT-2 and BT-5 are broken in it),
    # and the folder's README is no invoice at all.
    assert set(failed) == {"fail1.pdf", "README.md"}, failed
    assert "BT-2" in failed["fail1.pdf"]["error"]
    assert "Unrecognised" in failed["README.md"]["error"]


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in ALL_SAMPLES
        if p.suffix.lower() in (".xml", ".pdf") and p.parent.name != "unstructured-pdf" and p.name != "fail1.pdf"
    ],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_key_fields_match_the_file(path):
    [line] = run_import(path)
    expected = expected_for(path)
    assert expected is not None
    assert line["invoice_number"] == expected["invoice_number"]
    assert line["issue_date"] == expected["issue_date"].isoformat()
    assert line["currency"] == expected["currency"]
    assert line["seller_name"] == expected["seller_name"]
    for name in ("total_net", "tax_total", "total_gross", "amount_due"):
        value = expected[name]
        assert line[name] == (None if value is None else f"{Decimal(value):.2f}"), name
    assert line["line_count"] == expected["line_count"]
    for amount in ("total_net", "tax_total", "total_gross", "amount_due"):
        assert line[amount] is None or isinstance(line[amount], str)


def test_the_same_file_twice_is_a_duplicate_of_the_first():
    sample = SAMPLES / "peppol-bis3" / "base-example.xml"
    [first] = run_import(sample)
    [second] = run_import(sample)
    assert second["status"] == "duplicate"
    assert Invoice.objects.get(pk=second["invoice_id"]).duplicate_of_id == first["invoice_id"]
    assert "received before" in second["error"]


def test_plain_pdf_is_read_from_its_text():
    [line] = run_import(SAMPLES / "unstructured-pdf" / "hetzner-2016-01-19.pdf")
    assert line["format"] == "pdf-text"
    assert line["seller_name"] and "Hetzner" in line["seller_name"]
    assert line["currency"] == "EUR"


def test_bad_files_fail_with_a_clear_error_and_keep_their_bytes(tmp_path, settings):
    settings.INVOICE_MAX_FILE_BYTES = 50_000
    files = {
        "truncated.xml": (SAMPLES / "en16931-ubl" / "ubl-tc434-example1.xml").read_bytes()[:700],
        "random.pdf": bytes(range(256)) * 20,
        "bomb.xml": b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        b"<Invoice>&lol2;</Invoice>",
        "empty.csv": b"",
        "big.xml": b"<x>" + b"a" * 60_000 + b"</x>",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)

    lines = {line["file"].rsplit("/", 1)[1]: line for line in run_import(tmp_path)}

    for name, content in files.items():
        line = lines[name]
        assert line["status"] == "failed", line
        assert line["error"] and len(line["error"]) < 500, line
        assert Invoice.objects.get(pk=line["invoice_id"]).original.read() == content
    assert "DOCTYPE" in lines["bomb.xml"]["error"]
    assert "limit" in lines["big.xml"]["error"]


def test_missing_path_is_an_error(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No such file"):
        call_command("import_invoices", str(tmp_path / "nope.xml"), "--sync")
