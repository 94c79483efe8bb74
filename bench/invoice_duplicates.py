"""The duplicate rules with many invoices: indexed seller/number keys against normalising every row in SQL.

Usage (from the repository root; needs PostgreSQL and Redis):

    .venv/bin/python bench/invoice_duplicates.py [--invoices 200000] [--probes 300]

Fills its own database (apintake_bench_duplicates) with --invoices invoices from
2,000 sellers (VAT ids written with spaces and dots in a third of them, as
suppliers do), numbers unique per seller, issue dates over two years, then
VACUUM ANALYZE. For --probes invoices picked at random it times, in this
process and interleaved:

  new       duplicate.number and duplicate.suspect as they run (jobs' validation):
            an index lookup on Invoice.seller_key / number_key
  baseline  the lookup they made before those columns existed, kept here: the
            VAT id and the number normalised in SQL for every row
            (UPPER(REPLACE(...)), REPLACE(TRIM(...)) ILIKE), no usable index

and prints the median and p95 milliseconds of each and the ratio. Both find the
same earlier invoices (checked on every probe). Redis db 7 / 8 (claimed as in the
jobs benchmarks); the database is dropped at the end.
"""

from __future__ import annotations

import argparse
import random
import shlex
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BenchError,
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

SELLERS = 2000


def fill(count: int) -> None:
    from django.db import connection

    from invoices.identity import normalise_invoice_number, seller_key_for
    from invoices.models import Invoice, InvoiceStatus

    rng = random.Random(7)
    start = date(2025, 1, 1)
    batch = []
    for index in range(count):
        seller = index % SELLERS
        digits = f"{100000000 + seller:09d}"
        vat_id = f"DE {digits[:3]}.{digits[3:6]}.{digits[6:]}" if seller % 3 == 0 else f"DE{digits}"
        number = f"R-{index // SELLERS:06d}"
        invoice = Invoice(
            source="upload",
            original=f"originals/bench/{index}",
            original_filename=f"{index}.xml",
            sha256=f"{index:064x}",
            size=1,
            status=InvoiceStatus.VALIDATED,
            invoice_number=number,
            seller_vat_id=vat_id,
            seller_name=f"Seller {seller}",
            currency="EUR",
            issue_date=start + timedelta(days=rng.randrange(730)),
            total_gross=Decimal(rng.randrange(100, 100000)) / 100,
        )
        # bulk_create does not call save(): set the keys as save() does.
        invoice.seller_key = seller_key_for(vat_id, invoice.seller_name)
        invoice.number_key = normalise_invoice_number(number)
        batch.append(invoice)
        if len(batch) == 5000:
            Invoice.objects.bulk_create(batch)
            batch = []
    Invoice.objects.bulk_create(batch)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE invoices_invoice")


def baseline_number_candidates(invoice) -> list[int]:
    """duplicate.number's lookup before seller_key / number_key (normalised per row in SQL)."""
    from django.db.models import F, Value
    from django.db.models.functions import Replace, Trim, Upper

    from invoices.duplicates import NOT_COUNTED_STATUSES as IGNORED_STATUSES
    from invoices.identity import normalise_vat_id
    from invoices.models import Invoice

    compact_vat = Upper(
        Replace(
            Replace(Replace(F("seller_vat_id"), Value(" "), Value("")), Value("."), Value("")), Value("-"), Value("")
        )
    )
    compact_number = Replace(Trim(F("invoice_number")), Value(" "), Value(""))
    rows = (
        Invoice.objects.exclude(pk=invoice.pk)
        .exclude(status__in=IGNORED_STATUSES)
        .filter(type=invoice.type)
        .annotate(seller_vat_compact=compact_vat)
        .filter(seller_vat_compact=normalise_vat_id(invoice.seller_vat_id))
        .filter(issue_date__year=invoice.issue_date.year)
        .annotate(number_compact=compact_number)
        .filter(number_compact__iexact="".join(invoice.invoice_number.split()))
        .order_by("pk")
        .values_list("pk", flat=True)[:50]
    )
    return list(rows)


def new_number_candidates(invoice) -> list[int]:
    from invoices.validation.rules.duplicates import _same_seller_candidates

    rows = (
        _same_seller_candidates(invoice, invoice.seller_key)
        .filter(number_key=invoice.number_key, issue_date__year=invoice.issue_date.year)
        .order_by("pk")
        .values_list("pk", flat=True)[:50]
    )
    return list(rows)


def timed(call, invoice) -> tuple[float, list[int]]:
    started = time.perf_counter()
    found = call(invoice)
    return (time.perf_counter() - started) * 1000, found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invoices", type=int, default=200_000)
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--database", default="apintake_bench_duplicates")
    parser.add_argument("--redis-db", type=int, default=7)
    args = parser.parse_args(argv)
    env = bench_environment(database=args.database, redis_db=args.redis_db)
    require_services()
    claim_redis(args.redis_db)
    create_database(args.database)
    setup_django(env)
    try:
        migrate()
        print_header(
            "Duplicate rules: indexed keys vs normalising in SQL",
            "python bench/invoice_duplicates.py " + shlex.join(argv),
        )
        print(f"services: {service_versions()}")
        started = time.perf_counter()
        fill(args.invoices)
        print(f"filled {args.invoices:,} invoices from {SELLERS:,} sellers in {time.perf_counter() - started:.1f} s")

        from invoices.models import Invoice
        from invoices.validation import RULES

        # Each probe is a copy of a stored invoice (same seller and number), as a re-sent invoice is.
        ids = random.Random(11).sample(range(1, args.invoices + 1), args.probes)
        probes = list(Invoice.objects.filter(pk__in=ids))
        timings: dict[str, list[float]] = {"baseline": [], "new": [], "duplicate.number": [], "duplicate.suspect": []}
        for invoice in probes:
            invoice.pk = None  # not itself: its stored twin is the duplicate to find
            ms_base, found_base = timed(baseline_number_candidates, invoice)
            ms_new, found_new = timed(new_number_candidates, invoice)
            if found_base != found_new or not found_new:
                raise BenchError(f"The lookups disagree for {invoice.invoice_number}: {found_base} vs {found_new}")
            timings["baseline"].append(ms_base)
            timings["new"].append(ms_new)
            for code in ("duplicate.number", "duplicate.suspect"):
                started = time.perf_counter()
                RULES[code].check(invoice, RULES[code].default_parameters)
                timings[code].append((time.perf_counter() - started) * 1000)
        rows = [
            [name, len(values), f"{percentile(values, 0.5):.2f}", f"{percentile(values, 0.95):.2f}"]
            for name, values in timings.items()
        ]
        print_table(
            ["lookup", "probes", "median ms", "p95 ms"],
            rows,
            title=f"Finding an invoice's earlier copies among {args.invoices:,}",
        )
        ratio = percentile(timings["baseline"], 0.5) / percentile(timings["new"], 0.5)
        print(f"\nbaseline / new (median): {ratio:.0f}x; load average at end: {load_average()}")
    finally:
        flush_redis(args.redis_db)
        drop_database(args.database)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
