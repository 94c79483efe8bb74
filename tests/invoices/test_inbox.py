"""The drop folder: files are ingested, then moved to processed/; nothing is lost."""

import os
import time

import pytest

from invoices.inbox import inbox_scan
from invoices.models import Invoice, InvoiceStatus
from tests.invoices.einvoice_reference import SAMPLES

pytestmark = [pytest.mark.django_db]

UBL = SAMPLES / "en16931-ubl" / "ubl-tc434-example1.xml"
CII = SAMPLES / "en16931-cii" / "CII_example1.xml"


def settle(path):
    old = time.time() - 60
    os.utime(path, (old, old))


def test_scan_ingests_and_moves_files(tmp_path):
    (tmp_path / "supplier-a").mkdir()
    first, second = tmp_path / "a.xml", tmp_path / "supplier-a" / "b.xml"
    first.write_bytes(UBL.read_bytes())
    second.write_bytes(CII.read_bytes())
    for path in (first, second):
        settle(path)

    counts = inbox_scan(directory=tmp_path)

    assert counts == {"files": 2, "ingested": 2, "failed": 0}
    assert not first.exists() and not second.exists()
    assert (tmp_path / "processed" / "a.xml").read_bytes() == UBL.read_bytes()
    assert (tmp_path / "processed" / "supplier-a" / "b.xml").exists()
    rows = Invoice.objects.filter(source="folder").order_by("source_ref")
    assert list(rows.values_list("source_ref", flat=True)) == ["a.xml", "supplier-a/b.xml"]
    assert {row.status for row in rows} == {InvoiceStatus.RECEIVED}  # processing is a job of its own


def test_file_still_being_written_waits_for_the_next_scan(tmp_path):
    fresh = tmp_path / "copying.xml"
    fresh.write_bytes(UBL.read_bytes()[:100])
    assert inbox_scan(directory=tmp_path)["files"] == 0
    assert fresh.exists()


def test_same_file_dropped_twice_is_kept_as_a_duplicate_and_never_overwritten(tmp_path):
    for _ in range(2):
        path = tmp_path / "again.xml"
        path.write_bytes(UBL.read_bytes())
        settle(path)
        inbox_scan(directory=tmp_path)
    processed = sorted(p.name for p in (tmp_path / "processed").iterdir())
    assert processed == ["again.1.xml", "again.xml"]
    statuses = sorted(Invoice.objects.values_list("status", flat=True))
    assert statuses == [InvoiceStatus.DUPLICATE, InvoiceStatus.RECEIVED]


def test_processed_and_failed_folders_are_not_scanned_again(tmp_path):
    (tmp_path / "processed").mkdir()
    old = tmp_path / "processed" / "old.xml"
    old.write_bytes(UBL.read_bytes())
    settle(old)
    assert inbox_scan(directory=tmp_path)["files"] == 0


def test_a_scan_queues_its_invoices_with_one_insert_and_nothing_is_left_without_a_job(tmp_path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from jobs.models import Job

    for index in range(5):
        path = tmp_path / f"invoice-{index}.xml"
        # Five different files (a comment makes the bytes differ), so none is a duplicate.
        path.write_bytes(UBL.read_bytes() + f"<!-- {index} -->".encode())
        settle(path)

    with CaptureQueriesContext(connection) as queries:
        counts = inbox_scan(directory=tmp_path, batch_size=3)

    assert counts == {"files": 5, "ingested": 5, "failed": 0}
    job_inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "jobs_job"')]
    assert len(job_inserts) == 2  # batches of 3 and 2 files
    invoices = set(Invoice.objects.values_list("pk", flat=True))
    queued = Job.objects.filter(kind="invoices.process_invoice")
    assert {job.params["invoice_id"] for job in queued} == invoices
    # Each job names its invoice as its subject, as a job queued one at a time does.
    assert all(job.priority == 5 and job.subject_id == str(job.params["invoice_id"]) for job in queued)
