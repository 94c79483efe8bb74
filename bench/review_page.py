"""The review page's costs: a PDF page image (first and cached), the XML e-invoice view,
and the whole review page with 100 invoice lines, as the server spends them.

Usage (from the repository root; needs PostgreSQL and Redis):

    .venv/bin/python bench/review_page.py [--rounds 20] [--dpi 150]

1. PDF page images: every Factur-X / ZUGFeRD sample's first page rendered by
   `render_pdf_page` at --dpi with an empty cache (the PNG file removed before each
   round), then served from the disk cache. Goal: < 300 ms uncached at 150 dpi.
2. XML view: `render_einvoice` plus the template that shows it, on a 20-line UBL,
   a CII and the largest UBL sample.
3. The review page: GET of the admin review page of a UBL invoice with 100 lines
   (stored, validated, with its issues) through Django's test client in this
   process, so everything the server does for the page is counted (middleware,
   session, queries, templates), but not the browser's fetch of the page image.
   Goal: < 150 ms.

Own database apintake_bench_review (dropped at the end), Redis db --redis-db and the
next one for the cache (claimed as in the other benchmarks), MEDIA_ROOT in a
temporary folder.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    bench_environment,
    claim_redis,
    create_database,
    drop_database,
    flush_redis,
    load_average,
    migrate,
    percentile,
    print_header,
    print_table,
    require_services,
    service_versions,
    setup_django,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "samples" / "einvoices"
UBL_20_LINES = SAMPLES / "en16931-ubl" / "ubl-tc434-example1.xml"
CII = SAMPLES / "en16931-cii" / "CII_example1.xml"
BIG_UBL = SAMPLES / "en16931-ubl" / "FT_G2G_TD01_con_Allegato__Bonifico_e_Split_Payment.xml"
PAGE_GOAL_MS = 300
REVIEW_GOAL_MS = 150


def timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return (time.perf_counter() - started) * 1000, result


def timed_cpu(function, *args, **kwargs) -> tuple[float, float, object]:
    """Wall and CPU milliseconds of this process: on a shared, loaded machine the wall time
    includes waiting for a core, the CPU time is what the work itself costs."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, result


def bench_pages(rounds: int, dpi: int) -> list[list[object]]:
    from invoices.documents.pdf import _cache_path, render_pdf_page

    rows = []
    for path in sorted((SAMPLES / "facturx-zugferd").glob("*.pdf")):
        content = path.read_bytes()
        cached_file = _cache_path(hashlib.sha256(content).hexdigest(), 1, dpi)
        first, first_cpu, cached, size = [], [], [], 0
        for _ in range(rounds):
            cached_file.unlink(missing_ok=True)
            ms, cpu, png = timed_cpu(render_pdf_page, content, 1, dpi)
            first.append(ms)
            first_cpu.append(cpu)
            size = len(png)
            cached.append(timed(render_pdf_page, content, 1, dpi)[0])
        rows.append(
            [
                path.name[:40],
                f"{percentile(first, 0.5):.0f}",
                f"{percentile(first, 0.95):.0f}",
                f"{percentile(first_cpu, 0.5):.0f}",
                f"{percentile(cached, 0.5):.2f}",
                f"{size / 1024:.0f}",
            ]
        )
    return rows


def bench_xml(rounds: int) -> list[list[object]]:
    from django.template.loader import render_to_string

    from invoices.documents.einvoice import render_einvoice

    rows = []
    for path in (UBL_20_LINES, CII, BIG_UBL):
        content = path.read_bytes()
        parse, render = [], []
        for _ in range(rounds):
            ms, document = timed(render_einvoice, content)
            parse.append(ms)
            render.append(timed(render_to_string, "admin/invoices/invoice/review_einvoice.html", {"doc": document})[0])
        total = [a + b for a, b in zip(parse, render, strict=True)]
        rows.append(
            [
                path.name[:40],
                len(document.lines),
                f"{percentile(parse, 0.5):.2f}",
                f"{percentile(render, 0.5):.2f}",
                f"{percentile(total, 0.5):.2f}",
                f"{percentile(total, 0.95):.2f}",
            ]
        )
    return rows


def ubl_with_lines(count: int) -> bytes:
    """The 20-line UBL example with its lines repeated up to `count`, each with its own id."""
    text = UBL_20_LINES.read_text(encoding="utf-8")
    lines = re.findall(r"<cac:InvoiceLine>.*?</cac:InvoiceLine>", text, flags=re.DOTALL)
    body = []
    for number in range(count):
        line = lines[number % len(lines)]
        body.append(re.sub(r"<cbc:ID>[^<]*</cbc:ID>", f"<cbc:ID>{number + 1}</cbc:ID>", line, count=1))
    start, end = text.index(lines[0]), text.index(lines[-1]) + len(lines[-1])
    return (text[:start] + "\n".join(body) + text[end:]).encode("utf-8")


def bench_review_page(rounds: int) -> list[list[object]]:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from core.roles import ensure_roles
    from invoices.services import invoice_import_sync

    ensure_roles()
    user = get_user_model().objects.create_user("bench-clerk", password="x", is_staff=True)
    from django.contrib.auth.models import Group

    user.groups.add(Group.objects.get(name="ap_clerk"))
    rows = []
    for label, content, filename in [
        ("UBL, 100 lines", ubl_with_lines(100), "hundred.xml"),
        (
            "Factur-X PDF (BASIC WL, no lines)",
            (SAMPLES / "facturx-zugferd" / "Facture_FR_BASICWL.pdf").read_bytes(),
            "fx.pdf",
        ),
    ]:
        invoice = invoice_import_sync(content=content, filename=filename)
        client = Client()
        client.force_login(user)
        url = reverse("admin:invoices_invoice_review", args=[invoice.pk])
        client.get(url)  # warm: templates compiled, rule settings created
        times, cpu_times = [], []
        for _ in range(rounds):
            ms, cpu, response = timed_cpu(client.get, url)
            if response.status_code != 200:
                raise SystemExit(f"review page answered {response.status_code}")
            times.append(ms)
            cpu_times.append(cpu)
        rows.append(
            [
                label,
                invoice.lines.count(),
                invoice.issue_count,
                f"{percentile(times, 0.5):.1f}",
                f"{percentile(times, 0.95):.1f}",
                f"{percentile(cpu_times, 0.5):.1f}",
                f"{len(response.content) / 1024:.0f}",
            ]
        )
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--database", default="apintake_bench_review")
    parser.add_argument("--redis-db", type=int, default=8)
    args = parser.parse_args(argv)
    media = tempfile.mkdtemp(prefix="bench-review-media-")
    env = bench_environment(
        database=args.database, redis_db=args.redis_db, extra={"MEDIA_ROOT": media, "ALLOWED_HOSTS": "testserver"}
    )
    require_services()
    claim_redis(args.redis_db)
    create_database(args.database)
    setup_django(env)
    try:
        migrate()
        print_header(
            "Review page: page images, XML view, the page with 100 lines",
            "python bench/review_page.py " + shlex.join(argv),
        )
        print(f"services: {service_versions()}")
        print_table(
            [
                "PDF (first page)",
                "uncached median ms",
                "uncached p95 ms",
                "uncached CPU ms",
                "cached median ms",
                "PNG KiB",
            ],
            bench_pages(args.rounds, args.dpi),
            title=f"PDF page image at {args.dpi} dpi, {args.rounds} rounds (goal < {PAGE_GOAL_MS} ms uncached)",
        )
        print_table(
            ["XML", "lines", "read ms", "template ms", "total median ms", "total p95 ms"],
            bench_xml(args.rounds),
            title="XML e-invoice view (read from the XML + template)",
        )
        print_table(
            ["review page", "lines", "issues", "median ms", "p95 ms", "CPU median ms", "HTML KiB"],
            bench_review_page(args.rounds),
            title=f"GET of the review page, server side (goal < {REVIEW_GOAL_MS} ms)",
        )
        print(f"\nload average at end: {load_average()}")
    finally:
        flush_redis(args.redis_db)
        drop_database(args.database)
        shutil.rmtree(media, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
