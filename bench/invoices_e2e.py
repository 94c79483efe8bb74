"""End to end through real workers: mixed invoices from the drop folder to a final status.

Usage (from the repository root; needs PostgreSQL and Redis):

    .venv/bin/python bench/invoices_e2e.py [--count 1000] [--concurrency 2] [--profile] [--keep]

What it does. It builds COUNT distinct invoice files from the real samples in
/work/shared/samples/einvoices (plus CSV files in the layout of docs/formats.md; see
mix_groups() for the shares and how copies are made distinct), starts one real
`celery -A config worker` (prefork, --concurrency, all queues, -l INFO, the settings
of config/settings.py), puts the files into the drop folder (INVOICE_INBOX_DIR),
waits until they have settled (invoices/inbox.py ignores files younger than
SETTLE_SECONDS), and enqueues `invoices.scan_inbox` with jobs.services.job_enqueue,
as the schedule does. The scan job ingests each file (invoice_ingest), which
enqueues one `invoices.process_invoice` job per invoice: extract, store, validate.

What is timed. From the scan job's start (Job.started_at) until the last invoice
has left `received` / `extracted` (the latest Invoice.updated_at once every invoice
is validated, needs_review or failed): invoices/s = COUNT / that wall time.

Where the time goes. A probe in each pool process of the worker (this module, loaded
through JOB_EXTRA_MODULES, installs it on Celery's worker_process_init signal) wraps
the names the services look up when they run (invoices.services.extract,
invoice_store_extraction, invoice_validate, invoice_ingest) and each validation rule's
check with a wall clock and a thread CPU clock; behaviour is unchanged. Job run
times come from Job.started_at / finished_at. The worker's capacity over the run is
wall time x concurrency ("slot time"); the report splits it per invoice into ingest,
the rest of the scan job, extraction, storing the extraction, validation, the rest
of the process job's run time (claim, reading the stored original), the job
machinery between runs (taking the message, loading the Job row, the finish write,
the execution row, the result backend, the ack), and idle (a slot free while no job
waited). Extraction is also timed in this process on the same bytes after the
worker has stopped (best of three per file): the figure without contention.

    share of time outside extraction = 1 - extraction time / slot time
    job overhead per invoice         = (slot time - extraction - validation) / COUNT

Then the same files go through `manage.py import_invoices --sync` (the whole pipeline in
one process, no broker) on a database of their own (apintake_bench_e2e_sync, dropped
after): the worker's rate is printed beside that in-process rate, with the cost per
invoice of the official EN 16931 rules (Saxon XSLT; compiled when each pool process
starts, invoices/apps.py).

--profile then runs 200 more invoices (copies of every fifth file of the mix, renumbered)
through the same code in this process (inbox_scan, then each job with task.apply)
under cProfile, and counts their SQL statements.

It uses its own database (apintake_bench_e2e), Redis db 3 (broker) and 4 (cache),
refusing them while they hold keys or have other clients, and its own MEDIA_ROOT and
inbox in a temporary directory; the worker is stopped, the directory removed, the
Redis dbs flushed and the database dropped at the end (kept with --keep).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import functools
import hashlib
import io
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    BenchError,
    BenchTimeout,
    WorkerProcess,
    bench_environment,
    create_database,
    drop_database,
    flush_redis,
    load_average,
    median,
    migrate,
    percentile,
    print_header,
    print_table,
    require_services,
    service_versions,
    setup_django,
    time_budget,
    wait_until,
)

DATABASE = "apintake_bench_e2e"
REDIS_DB = 3
SAMPLES = ROOT.parent / "shared" / "samples" / "einvoices"
BIG_UBL = "FT_G2G_TD01_con_Allegato__Bonifico_e_Split_Payment.xml"
PROBE_ENV = "BENCH_E2E_PROBE_DIR"
FINAL_STATUSES = ("validated", "needs_review", "failed")
CENT = Decimal("0.01")

# --- the probe: runs inside the worker's pool processes -----------------------------------------------


class _ProbeLog:
    """One append-only file per pool process: `step, key, wall seconds, CPU seconds` per call."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._pid: int | None = None
        self._file = None

    def write(self, step: str, key: str, wall: float, cpu: float) -> None:
        if self._pid != os.getpid():  # a forked child must not share its parent's file object
            self._pid = os.getpid()
            self._file = open(self.directory / f"probe-{self._pid}.tsv", "a", buffering=1)  # noqa: SIM115
        self._file.write(f"{step}\t{key}\t{wall:.9f}\t{cpu:.9f}\n")


def _timed(step: str, func: Callable, key_of: Callable, log: _ProbeLog) -> Callable:
    @functools.wraps(func)
    def timed(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            log.write(step, key_of(args, kwargs), wall, cpu)

    return timed


def install_probe(directory: Path) -> None:
    """Time the pipeline's steps in this process by wrapping the names invoices.services
    looks up when it runs (extract, invoice_store_extraction, invoice_validate), the
    invoice_ingest that invoices.inbox imports at each scan, and each validation rule's
    check. Behaviour is unchanged."""
    from invoices import services

    log = _ProbeLog(directory)

    def sha_of_content(args, kwargs) -> str:
        content = kwargs["content"] if "content" in kwargs else args[0]
        return hashlib.sha256(content).hexdigest()

    services.extract = _timed("extract", services.extract, sha_of_content, log)
    services.invoice_store_extraction = _timed(
        "store", services.invoice_store_extraction, lambda a, k: str(a[0].pk), log
    )
    services.invoice_validate = _timed("validate", services.invoice_validate, lambda a, k: str(k["invoice"].pk), log)
    services.invoice_ingest = _timed("ingest", services.invoice_ingest, sha_of_content, log)
    from invoices.validation.rules import ALL_RULES

    for rule in ALL_RULES:  # validate() calls rule.check on these instances
        rule.check = _timed(f"rule:{rule.code}", rule.check, lambda a, k: str(a[0].pk), log)


def _install_probe_in_pool_processes() -> None:
    directory = os.environ.get(PROBE_ENV)
    if not directory:
        return
    from celery.signals import worker_process_init

    def on_process_init(**kwargs) -> None:
        install_probe(Path(directory))

    worker_process_init.connect(on_process_init, weak=False)


if __name__ != "__main__":  # imported by a worker through JOB_EXTRA_MODULES
    _install_probe_in_pool_processes()


@dataclass
class ProbeTimes:
    """What the probe recorded, by step and key (sha256 for extract/ingest, invoice id for store/validate)."""

    wall: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    cpu: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))

    def total(self, step: str) -> float:
        return sum(self.wall[step].values())

    def total_cpu(self, step: str) -> float:
        return sum(self.cpu[step].values())


def read_probe(directory: Path) -> ProbeTimes:
    """Collect every pool process's probe file (a key seen twice keeps its last time)."""
    times = ProbeTimes()
    for path in sorted(directory.glob("probe-*.tsv")):
        for line in path.read_text().splitlines():
            step, key, wall, cpu = line.split("\t")
            times.wall[step][key] = float(wall)
            times.cpu[step][key] = float(cpu)
    return times


# --- the invoices: real samples made distinct ----------------------------------------------------------


@dataclass(frozen=True)
class InboxFile:
    """One file for the drop folder, and the group of the mix it belongs to."""

    name: str
    content: bytes
    group: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def _xml_parser():
    from lxml import etree

    # Trusted samples, but the same hardening as the application's parser costs nothing.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _invoice_number_element(root):
    """BT-1: ExchangedDocument/ID (CII), HeaderExchangedDocument/ID (ZUGFeRD 1), else the root's ID (UBL)."""
    from lxml import etree

    for child in root:
        if isinstance(child.tag, str) and etree.QName(child).localname in (
            "ExchangedDocument",
            "HeaderExchangedDocument",
        ):
            for grandchild in child:
                if isinstance(grandchild.tag, str) and etree.QName(grandchild).localname == "ID":
                    return grandchild
    for child in root:
        if isinstance(child.tag, str) and etree.QName(child).localname == "ID":
            return child
    raise BenchError(f"no invoice number element under {root.tag}")


def renumber_xml(content: bytes, suffix: str) -> bytes:
    """The same UBL / CII document with `suffix` appended to its invoice number (BT-1)."""
    from lxml import etree

    tree = etree.ElementTree(etree.fromstring(content, _xml_parser()))
    number = _invoice_number_element(tree.getroot())
    number.text = (number.text or "").strip() + suffix
    return etree.tostring(tree, xml_declaration=True, encoding=tree.docinfo.encoding or "UTF-8")


def renumber_pdf(content: bytes, suffix: str) -> bytes:
    """A Factur-X / ZUGFeRD PDF whose embedded invoice XML carries a new invoice number.

    The page still prints the old number; the application reads the XML, as it
    does for every PDF with an embedded e-invoice.
    """
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(content)))
    names = writer._root_object["/Names"]["/EmbeddedFiles"]["/Names"]
    for index in range(1, len(names), 2):
        stream = names[index].get_object()["/EF"]["/F"].get_object()
        data = stream.get_data()
        if data.lstrip(b"\xef\xbb\xbf \r\n\t").startswith(b"<"):
            stream.set_data(renumber_xml(data, suffix))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def tag_pdf(content: bytes, suffix: str) -> bytes:
    """A PDF made distinct by a comment after its end: same pages, same text, same invoice number."""
    return content + f"\n%bench-copy{suffix}\n".encode()


CSV_ITEMS = (
    ("Kopierpapier A4", "4.50"),
    ("Toner schwarz", "89.90"),
    ("Bürostuhl", "1200.00"),
    ("Ordner breit", "2.35"),
    ("Druckerwartung", "145.00"),
    ("Kabelkanal 2 m", "12.80"),
)
CSV_SELLERS = (
    ("Müller Bürobedarf GmbH", "DE136695976"),
    ("Alpen Papier GmbH", "ATU13585627"),
    ("Bureau Vallée SARL", "FR40303265045"),
    ("Brussels Office Supply NV", "BE0411905847"),
)


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def make_csv(index: int, today: dt.date) -> bytes:
    """A CSV invoice in one of the two layouts of docs/formats.md: German without totals
    (semicolons, decimal commas, dd.mm.yyyy), English with totals (commas, ISO dates)."""
    seller, vat_id = CSV_SELLERS[index % len(CSV_SELLERS)]
    issue = today - dt.timedelta(days=index % 45)
    lines = []
    for position in range(1 + index % 4):
        name, price = CSV_ITEMS[(index + position) % len(CSV_ITEMS)]
        quantity = Decimal(1 + (index * 7 + position * 3) % 12)
        lines.append((name, quantity, Decimal(price), _money(quantity * Decimal(price))))
    number = f"R-{issue.year}-{index:05d}"
    out = io.StringIO()
    if index % 2 == 0:
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
        writer.writerow(
            [
                "Rechnungsnummer",
                "Rechnungsdatum",
                "Währung",
                "Lieferant",
                "USt-IdNr",
                "Bezeichnung",
                "Menge",
                "Einzelpreis",
                "Betrag",
                "USt-Satz",
            ]
        )
        for name, quantity, price, amount in lines:
            writer.writerow(
                [
                    number,
                    issue.strftime("%d.%m.%Y"),
                    "EUR",
                    seller,
                    vat_id,
                    name,
                    quantity,
                    f"{price:.2f}".replace(".", ","),
                    f"{amount:.2f}".replace(".", ","),
                    "19",
                ]
            )
    else:
        net = sum(amount for *_, amount in lines)
        tax = _money(net * Decimal("0.19"))
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            [
                "invoice_number",
                "issue_date",
                "due_date",
                "currency",
                "seller_name",
                "seller_vat_id",
                "buyer_name",
                "line_name",
                "quantity",
                "net_price",
                "line_amount",
                "vat_rate",
                "total_net",
                "tax_total",
                "total_gross",
                "amount_due",
            ]
        )
        for name, quantity, price, amount in lines:
            writer.writerow(
                [
                    number,
                    issue.isoformat(),
                    (issue + dt.timedelta(days=30)).isoformat(),
                    "EUR",
                    seller,
                    vat_id,
                    "AP Intake Buyer Ltd",
                    name,
                    quantity,
                    price,
                    amount,
                    "19",
                    net,
                    tax,
                    net + tax,
                    net + tax,
                ]
            )
    return out.getvalue().encode("utf-8")


@dataclass(frozen=True)
class MixGroup:
    """A kind of file in the mix: its share of the count and how its copy number `copy`
    (file `index` of the whole mix) is made: (file name, bytes)."""

    name: str
    share: float
    make: Callable[[int, int], tuple[str, bytes]]


def _samples(*patterns: str, exclude: Iterable[str] = ()) -> tuple[Path, ...]:
    skip = set(exclude)
    return tuple(sorted(p for pattern in patterns for p in SAMPLES.glob(pattern) if p.name not in skip))


def _from_samples(paths: tuple[Path, ...], distinct: Callable[[bytes, str], bytes]) -> Callable:
    """Copies of the samples in turn, each made distinct with the suffix -E<index>."""
    if not paths:
        raise BenchError(f"no sample files found under {SAMPLES}")

    def make(index: int, copy: int) -> tuple[str, bytes]:
        path = paths[copy % len(paths)]
        return f"{index:05d}-{path.name}", distinct(path.read_bytes(), f"-E{index:05d}")

    return make


def _csv_files(index: int, copy: int) -> tuple[str, bytes]:
    return f"{index:05d}-invoice.csv", make_csv(index, dt.date.today())


def mix_groups() -> list[MixGroup]:
    """The mix. Shares are of the files left after the fixed ones (problem files, the 3.3 MB UBL)."""
    return [
        MixGroup(
            "UBL XML", 0.40, _from_samples(_samples("en16931-ubl/*", "peppol-bis3/*", exclude=[BIG_UBL]), renumber_xml)
        ),
        MixGroup("CII XML", 0.30, _from_samples(_samples("en16931-cii/*", "facturx-zugferd/*.xml"), renumber_xml)),
        MixGroup("Factur-X / ZUGFeRD PDF", 0.20, _from_samples(_samples("facturx-zugferd/*.pdf"), renumber_pdf)),
        MixGroup("CSV", 0.07, _csv_files),
        MixGroup("plain PDF (text layer)", 0.03, _from_samples(_samples("unstructured-pdf/*.pdf"), tag_pdf)),
    ]


# Once each, unchanged, when the mix has 100 files or more.
FIXED_GROUPS = (("problem files", ("problem-files/*",)), ("UBL 3.3 MB (attachment)", (f"en16931-ubl/{BIG_UBL}",)))


def build_mix(count: int) -> list[InboxFile]:
    """`count` distinct files in the shares of mix_groups() (see each group for how copies differ)."""
    files: list[InboxFile] = []
    if count >= 100:  # a quick check with few files keeps to the common formats
        for group, patterns in FIXED_GROUPS:
            files += [InboxFile(f"{len(files):05d}-{p.name}", p.read_bytes(), group) for p in _samples(*patterns)]
    groups = mix_groups()
    left = count - len(files)
    sizes = [round(group.share * left) for group in groups]
    sizes[0] += left - sum(sizes)
    for group, size in zip(groups, sizes, strict=True):
        for copy in range(size):
            name, content = group.make(len(files), copy)
            files.append(InboxFile(name, content, group.name))
    if len({f.sha256 for f in files}) != len(files):
        raise BenchError("two files of the mix have the same bytes")
    return files


def profile_copy(item: InboxFile) -> InboxFile:
    """Another distinct copy of a file of the mix (new invoice numbers where the format allows)."""
    content = item.content
    if item.group in ("UBL XML", "CII XML"):
        content = renumber_xml(content, "-P")
    elif item.group == "Factur-X / ZUGFeRD PDF":
        content = renumber_pdf(content, "-P")
    elif item.group == "CSV":
        content = content.replace(b"R-", b"P-")
    elif content.startswith(b"%PDF"):
        content = tag_pdf(content, "-P")
    else:
        content += b"\n<!-- profile copy -->\n"
    return InboxFile(f"p{item.name}", content, item.group)


# --- the run --------------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What the database and the probe say about one run."""

    wall: float  # scan job start -> last invoice final
    observed_wall: float  # enqueue -> seen final by polling, this process's clock
    statuses: Counter
    scan_run: float
    scan_result: dict
    process_runs: dict[int, float]  # invoice id -> process_invoice job run time
    process_failed_jobs: int
    idle_slot_seconds: float
    invoice_ids: dict[str, int]  # sha256 -> invoice id
    invoice_status: dict[int, str]
    invoice_format: dict[int, str]
    issue_codes: Counter
    probe: ProbeTimes
    worker_cpu: float
    machine_busy: float  # fraction of all cores busy during the run
    db_work: dict[str, int]


def drop_files(inbox: Path, files: list[InboxFile]) -> None:
    """Write the files into the inbox and wait until the scan will take them (settled)."""
    from invoices.inbox import SETTLE_SECONDS

    for item in files:
        (inbox / item.name).write_bytes(item.content)
    time.sleep(SETTLE_SECONDS + 0.2)


def count_statuses() -> Counter:
    from django.db.models import Count

    from invoices.models import Invoice

    return Counter({row["status"]: row["n"] for row in Invoice.objects.values("status").annotate(n=Count("id"))})


def wait_until_final(count: int, scan_job_id, timeout: float, *, redis_db: int, stall: float = 30.0) -> float:
    """Poll until `count` invoices exist and none is received / extracted; the poll time.

    Fails early when nothing moves for `stall` seconds while jobs are queued and the
    broker database is empty: their messages were deleted by someone else.
    """
    import redis

    from bench.common import REDIS_SERVER
    from jobs.models import Job

    broker = redis.Redis.from_url(f"{REDIS_SERVER}/{redis_db}", socket_timeout=5)
    started = last_change = time.monotonic()
    previous: Counter | None = None
    while time.monotonic() < started + timeout:
        statuses = count_statuses()
        if sum(statuses.values()) >= count and not statuses["received"] and not statuses["extracted"]:
            return time.monotonic() - started
        scan = Job.objects.filter(pk=scan_job_id).values("status", "error").first()
        if scan["status"] in ("failed", "cancelled"):
            raise BenchError(f"the scan job ended {scan['status']}: {scan['error']}")
        if statuses != previous:
            previous, last_change = statuses, time.monotonic()
        elif (
            time.monotonic() - last_change > stall
            and not broker.dbsize()
            and Job.objects.filter(status="queued").exists()
        ):
            raise BenchError(
                f"nothing moved for {stall:.0f} s, jobs are queued and Redis db {redis_db} is empty: "
                f"their messages were deleted by another process (FLUSHDB?). {dict(statuses)}"
            )
        time.sleep(0.25)
    raise BenchError(f"not all {count} invoices were final after {timeout:.0f} s: {dict(count_statuses())}")


def idle_slot_seconds(runs: list[tuple], waits: list[tuple], start, end, slots: int) -> float:
    """Slot time with a slot free while no job waited: the pipeline had nothing to give the worker.

    runs: (started_at, finished_at) of every job; waits: (available_at, started_at).
    """
    events: list[tuple] = []
    for begin, finish in runs:
        events += [(begin, 0, 1), (finish, 0, -1)]
    for available, begin in waits:
        events += [(available, 1, 1), (begin, 1, -1)]
    events.sort(key=lambda event: event[0])
    running = waiting = 0
    idle = 0.0
    previous = start
    for moment, which, delta in events:
        moment = min(max(moment, start), end)
        if waiting == 0 and running < slots:
            idle += (slots - running) * (moment - previous).total_seconds()
        previous = moment
        if which == 0:
            running += delta
        else:
            waiting += delta
    if waiting == 0 and running < slots:
        idle += (slots - running) * (end - previous).total_seconds()
    return idle


def machine_cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of all cores from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


PG_COUNTERS = ("xact_commit", "tup_inserted", "tup_updated", "tup_deleted", "tup_fetched")


def pg_counters() -> dict[str, int]:
    """This database's cumulative counters (other backends flush theirs within ~1 s of going idle)."""
    from django.db import connection

    time.sleep(1.2)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(f"SELECT {', '.join(PG_COUNTERS)} FROM pg_stat_database WHERE datname = current_database()")
        return dict(zip(PG_COUNTERS, cursor.fetchone(), strict=True))


def run_pipeline(
    *,
    files: list[InboxFile],
    inbox: Path,
    probe_dir: Path,
    worker: WorkerProcess,
    concurrency: int,
    timeout: float,
    redis_db: int,
) -> RunResult:
    """Drop the files, enqueue the scan, wait until every invoice is final, read what happened."""
    from django.db.models import Max

    from invoices.models import Invoice, ValidationIssue
    from jobs.models import Job
    from jobs.services import job_enqueue

    drop_files(inbox, files)
    before_db = pg_counters()
    cpu_before, (busy_before, total_before) = worker.cpu_seconds(), machine_cpu_times()
    scan = job_enqueue("invoices.scan_inbox")
    observed = wait_until_final(len(files), scan.pk, timeout, redis_db=redis_db)
    cpu_after, (busy_after, total_after) = worker.cpu_seconds(), machine_cpu_times()
    wait_until(
        lambda: not Job.objects.filter(status__in=["queued", "running", "retrying"]).exists(),
        timeout=30,
        what="every job finished",
    )
    db_work = {key: value - before_db[key] for key, value in pg_counters().items()}

    scan = Job.objects.get(pk=scan.pk)
    end = Invoice.objects.aggregate(end=Max("updated_at"))["end"]
    jobs = list(Job.objects.filter(kind="invoices.process_invoice", started_at__isnull=False))
    invoices = list(Invoice.objects.values("id", "sha256", "status", "format"))
    runs = [(job.started_at, job.finished_at or end) for job in [scan, *jobs]]
    waits = [(min(job.created_at, job.started_at), job.started_at) for job in jobs]
    issue_codes = Counter(ValidationIssue.objects.filter(severity="error").values_list("code", flat=True))
    return RunResult(
        wall=(end - scan.started_at).total_seconds(),
        observed_wall=observed,
        statuses=count_statuses(),
        scan_run=scan.run_time.total_seconds(),
        scan_result=scan.result or {},
        process_runs={int(job.params["invoice_id"]): job.run_time.total_seconds() for job in jobs if job.run_time},
        process_failed_jobs=sum(1 for job in jobs if job.status != "succeeded"),
        idle_slot_seconds=idle_slot_seconds(runs, waits, scan.started_at, end, concurrency),
        invoice_ids={row["sha256"]: row["id"] for row in invoices},
        invoice_status={row["id"]: row["status"] for row in invoices},
        invoice_format={row["id"]: row["format"] for row in invoices},
        issue_codes=issue_codes,
        probe=read_probe(probe_dir),
        worker_cpu=cpu_after - cpu_before,
        machine_busy=(busy_after - busy_before) / max(1, total_after - total_before),
        db_work=db_work,
    )


def standalone_extraction(files: list[InboxFile], rounds: int = 3) -> dict[str, float]:
    """Seconds of `extract()` per file (by sha256) in this process, best of `rounds`, workers stopped."""
    from invoices.extract import InvalidInvoice, extract

    best: dict[str, float] = {}
    for _ in range(rounds):
        for item in files:
            started = time.perf_counter()
            with contextlib.suppress(InvalidInvoice):
                extract(item.content)
            elapsed = time.perf_counter() - started
            best[item.sha256] = min(elapsed, best.get(item.sha256, elapsed))
    return best


def sync_import_rate(files: list[InboxFile], workdir: Path, env: dict[str, str], database: str) -> tuple[float, int]:
    """The same files through `manage.py import_invoices --sync` (the whole pipeline in one
    process, no broker, no worker) on a database of their own, migrated first and untimed:
    seconds of the command (process start included, about 1 s) and the invoices it made."""
    folder = workdir / "sync-import"
    folder.mkdir()
    for item in files:
        (folder / item.name).write_bytes(item.content)
    sync_database = f"{database}_sync"
    create_database(sync_database)
    try:
        sync_env = {
            **os.environ,
            **env,
            "DATABASE_URL": env["DATABASE_URL"].rsplit("/", 1)[0] + "/" + sync_database,
            "MEDIA_ROOT": str(workdir / "sync-media"),
        }
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--verbosity", "0"], cwd=ROOT, env=sync_env, check=True)
        started = time.perf_counter()
        done = subprocess.run(
            [*manage, "import_invoices", "--sync", "--json", str(folder)],
            cwd=ROOT,
            env=sync_env,
            check=True,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        made = sum(1 for line in done.stdout.splitlines() if line.startswith("{"))
    finally:
        drop_database(sync_database)
    return seconds, made


# --- report ---------------------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def report(files: list[InboxFile], result: RunResult, standalone: dict[str, float], concurrency: int) -> None:
    """Print the mix, where the worker's time went, the validation rules, and the headline figures."""
    report_mix(files, result)
    report_split(len(files), result, concurrency)
    report_rules(len(files), result.probe)
    report_headline(len(files), result, standalone, concurrency)


def report_mix(files: list[InboxFile], result: RunResult) -> None:
    """Per group of the mix: how many, what format was read, how they ended, median times."""
    by_group: dict[str, list[InboxFile]] = defaultdict(list)
    for item in files:
        by_group[item.group].append(item)
    rows = []
    for group, items in by_group.items():
        ids = [result.invoice_ids[item.sha256] for item in items]
        statuses = Counter(result.invoice_status[i] for i in ids)
        formats = Counter(result.invoice_format[i] or "-" for i in ids)
        extract_times = [result.probe.wall["extract"].get(item.sha256, 0.0) for item in items]
        job_times = [result.process_runs.get(i, 0.0) for i in ids]
        rows.append(
            [
                group,
                len(items),
                f"{100 * len(items) / len(files):.1f} %",
                ", ".join(f"{name} {n}" for name, n in formats.most_common()),
                statuses["validated"],
                statuses["needs_review"],
                statuses["failed"],
                _ms(median(extract_times)),
                f"{sum(extract_times):.2f}",
                _ms(median(job_times)),
            ]
        )
    print_table(
        [
            "group",
            "files",
            "share",
            "format read",
            "validated",
            "needs_review",
            "failed",
            "extract ms (median)",
            "extract s (sum)",
            "process job ms (median)",
        ],
        rows,
        title="The mix and how it ended (times measured in the workers)",
    )


def report_split(count: int, result: RunResult, concurrency: int) -> None:
    """The worker's slot time per invoice, step by step (the rows add up to the slot time)."""
    probe = result.probe
    slot = result.wall * concurrency
    extraction, store, validation = probe.total("extract"), probe.total("store"), probe.total("validate")
    ingest = probe.total("ingest")
    process_run = sum(result.process_runs.values())
    parts = [
        ("ingest (invoice_ingest, in the scan job)", ingest, probe.total_cpu("ingest")),
        ("rest of the scan job (listing, moving files, progress)", result.scan_run - ingest, None),
        ("extraction (invoices.extract.extract)", extraction, probe.total_cpu("extract")),
        ("storing the extraction (invoice_store_extraction)", store, probe.total_cpu("store")),
        ("validation (invoice_validate)", validation, probe.total_cpu("validate")),
        (
            "rest of the process job run (claim, reading the original, ...)",
            process_run - extraction - store - validation,
            None,
        ),
        (
            "job machinery between runs (message, Job row, finish, result, ack)",
            slot - result.scan_run - process_run - result.idle_slot_seconds,
            None,
        ),
        ("idle: a slot free and no job waiting", result.idle_slot_seconds, None),
    ]
    rows = [
        [name, _ms(seconds / count), "" if cpu is None else _ms(cpu / count), f"{100 * seconds / slot:.1f} %"]
        for name, seconds, cpu in parts
    ]
    rows.append(["worker slot time (wall x concurrency)", _ms(slot / count), _ms(result.worker_cpu / count), "100.0 %"])
    print_table(
        ["per invoice", "wall ms", "CPU ms", "share of slot time"],
        rows,
        title=f"Where the worker's time went (concurrency {concurrency}, {count} invoices; CPU: of the "
        f"pool process, last row: the whole worker)",
    )


def report_rules(count: int, probe: ProbeTimes) -> None:
    """The ten costliest validation rules, the others, and what invoice_validate does around them."""
    rules = sorted((step for step in probe.wall if step.startswith("rule:")), key=probe.total, reverse=True)
    rows = [
        [step.removeprefix("rule:"), _ms(probe.total(step) / count), _ms(probe.total_cpu(step) / count)]
        for step in rules[:10]
    ]
    rest = rules[10:]
    rows.append(
        [
            f"the other {len(rest)} rules",
            _ms(sum(map(probe.total, rest)) / count),
            _ms(sum(map(probe.total_cpu, rest)) / count),
        ]
    )
    validation, validation_cpu = probe.total("validate"), probe.total_cpu("validate")
    rows.append(
        [
            "rest of invoice_validate (vendor match, rule settings, savepoints, writing issues)",
            _ms((validation - sum(map(probe.total, rules))) / count),
            _ms((validation_cpu - sum(map(probe.total_cpu, rules))) / count),
        ]
    )
    rows.append(["invoice_validate", _ms(validation / count), _ms(validation_cpu / count)])
    print_table(["validation, per invoice", "wall ms", "CPU ms"], rows, title="Validation rules in the workers")


def report_headline(count: int, result: RunResult, standalone: dict[str, float], concurrency: int) -> None:
    """Throughput, the shares outside extraction, job overhead, CPU, statuses, database work."""
    probe = result.probe
    slot = result.wall * concurrency
    extraction, validation = probe.total("extract"), probe.total("validate")
    process_runs = list(result.process_runs.values())
    standalone_total = sum(standalone.values())
    rows = [
        ["invoices", count],
        ["wall time, scan start -> last invoice final", f"{result.wall:.2f} s"],
        ["invoices per second", f"{count / result.wall:.1f}"],
        ["same, by polling from this process (enqueue -> seen final)", f"{count / result.observed_wall:.1f}"],
        ["scan job: run time, files/s", f"{result.scan_run:.2f} s, {count / result.scan_run:.1f} files/s"],
        [
            "process_invoice job run time, median / p95 / sum",
            f"{_ms(median(process_runs))} / {_ms(percentile(process_runs, 0.95))} ms / {sum(process_runs):.2f} s",
        ],
        ["extraction in the workers (wall, sum; CPU sum)", f"{extraction:.2f} s; {probe.total_cpu('extract'):.2f} s"],
        ["extraction in this process, workers stopped (best of 3, sum)", f"{standalone_total:.2f} s"],
        ["validation in the workers (sum)", f"{validation:.2f} s"],
        ["share of time outside extraction: 1 - extraction / slot time", f"{100 * (1 - extraction / slot):.1f} %"],
        ["  same with the standalone extraction time", f"{100 * (1 - standalone_total / slot):.1f} %"],
        [
            "  within process_invoice run time only: 1 - extraction / run time",
            f"{100 * (1 - extraction / sum(process_runs)):.1f} %",
        ],
        [
            "job overhead per invoice: (slot time - extraction - validation) / invoices",
            f"{_ms((slot - extraction - validation) / count)} ms",
        ],
        ["worker CPU per invoice (main + pool processes)", f"{_ms(result.worker_cpu / count)} ms"],
        ["machine CPU busy during the run (all cores)", f"{100 * result.machine_busy:.0f} %"],
        ["process_invoice jobs not succeeded", result.process_failed_jobs],
    ]
    print_table(["figure", "value"], rows, title="End to end")
    statuses = ", ".join(f"{status} {result.statuses[status]}" for status in (*FINAL_STATUSES, "duplicate"))
    print(f"\nfinal statuses: {statuses}")
    print(
        "error issues behind needs_review: " + ", ".join(f"{code} {n}" for code, n in result.issue_codes.most_common(8))
    )
    work = ", ".join(f"{key} {value / count:.1f}" for key, value in result.db_work.items())
    print(f"database work per invoice (pg_stat_database, whole run): {work}")
    print(f"scan job result: {result.scan_result}")


def report_sync(count: int, result: RunResult, sync_seconds: float, sync_made: int) -> None:
    """The worker's rate beside the in-process rate, and what the official EN 16931 rules cost."""
    worker_rate, sync_rate = count / result.wall, sync_made / sync_seconds
    official = "rule:en16931.official"
    rows = [
        [
            "through a real worker (drop folder, scan job, one process_invoice job each)",
            count,
            f"{result.wall:.2f}",
            f"{worker_rate:.1f}",
        ],
        [
            "in-process: `import_invoices --sync`, same files, own database",
            sync_made,
            f"{sync_seconds:.2f}",
            f"{sync_rate:.1f}",
        ],
    ]
    print_table(["path", "invoices", "seconds", "invoices/s"], rows, title="Worker vs in-process (same run)")
    ratio = worker_rate / sync_rate
    print(f"\nworker / in-process: {ratio:.2f} (target >= 0.7: {'met' if ratio >= 0.7 else 'NOT met'})")
    print(
        f"EN 16931 official rules (Saxon XSLT, compiled at worker start) per invoice in the workers: "
        f"{_ms(result.probe.total(official) / count)} ms wall, {_ms(result.probe.total_cpu(official) / count)} ms "
        f"CPU (all invoices; only UBL and CII EN 16931 ones run it)"
    )


# --- profile (optional) ----------------------------------------------------------------------------------------


class _StatementCounter:
    """A connection.execute_wrapper that counts SQL statements by their shape (text before WHERE)."""

    def __init__(self) -> None:
        self.shapes: Counter = Counter()

    def __call__(self, execute, sql, params, many, context):
        head = " ".join(str(sql).split()).partition(" WHERE ")[0]
        if head.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")):
            head = head.rsplit(" ", 1)[0]  # savepoint names differ each time
        self.shapes[head[:110].replace("|", "/")] += 1
        return execute(sql, params, many, context)

    @property
    def total(self) -> int:
        return sum(self.shapes.values())


def _result_backend_statements(task, job_id: str) -> _StatementCounter:
    """The SQL the django-db result backend runs for one task on a worker (STARTED, then SUCCESS;
    task_track_started is on), called as the worker calls it."""
    from celery.app.task import Context
    from django.db import connection

    request = Context(
        id=job_id,
        task=task.name,
        args=[job_id],
        kwargs={},
        hostname="bench@localhost",
        delivery_info={"exchange": "", "routing_key": "invoices"},
        ignore_result=False,
    )
    counter = _StatementCounter()
    with connection.execute_wrapper(counter):
        task.backend.store_result(job_id, {"pid": os.getpid()}, "STARTED", request=request)
        task.backend.store_result(job_id, {"status": "validated"}, "SUCCESS", request=request)
    return counter


def profile_in_process(files: list[InboxFile], inbox: Path, top: int = 30) -> None:
    """Run the same pipeline for `files` in this process under cProfile, counting SQL statements:
    the scan (invoices.inbox.inbox_scan), then each process job through Celery's tracer
    (task.apply: claim, body, finish; not the result backend's writes nor the broker)."""
    import cProfile
    import pstats

    from celery import current_app
    from django.db import connection

    from invoices.inbox import inbox_scan
    from invoices.models import Invoice
    from jobs.models import Job

    for item in files:
        (inbox / item.name).write_bytes(item.content)
    settled = time.time() - 60  # as if copied in a minute ago
    for item in files:
        os.utime(inbox / item.name, (settled, settled))
    task = current_app.tasks["invoices.process_invoice"]
    known = set(Job.objects.filter(kind="invoices.process_invoice").values_list("pk", flat=True))
    profiler, scan_sql, process_sql = cProfile.Profile(), _StatementCounter(), _StatementCounter()
    # The scan publishes each process job to the broker db; no worker runs now, and the
    # messages are flushed at the end. The jobs are run here instead.
    with connection.execute_wrapper(scan_sql):
        profiler.runcall(inbox_scan, directory=inbox)
    new_jobs = list(Job.objects.filter(kind="invoices.process_invoice").exclude(pk__in=known))
    started = time.perf_counter()
    with connection.execute_wrapper(process_sql):
        for job in new_jobs:
            profiler.runcall(task.apply, args=[str(job.pk)], task_id=str(job.pk))
    elapsed = time.perf_counter() - started
    count = len(new_jobs)
    final = Counter(
        Invoice.objects.filter(pk__in=[job.params["invoice_id"] for job in new_jobs]).values_list("status", flat=True)
    )
    print(
        f"\nIn-process profile of {count} more invoices ({dict(final)}): SQL statements per invoice: scan/ingest "
        f"{scan_sql.total / count:.1f}, process job {process_sql.total / count:.1f}; process job "
        f"{1000 * elapsed / count:.1f} ms per invoice under the profiler"
    )
    print_table(
        ["statement (process job, text before WHERE)", "per invoice"],
        [[shape, f"{n / count:.2f}"] for shape, n in process_sql.shapes.most_common(20)],
        title="SQL of one process_invoice job (in-process, task.apply)",
    )
    print_table(
        ["statement (scan, per file)", "per invoice"],
        [[shape, f"{n / count:.2f}"] for shape, n in scan_sql.shapes.most_common(10)],
        title="SQL of the scan job, per file (in-process)",
    )
    backend_sql = _result_backend_statements(task, str(new_jobs[-1].pk))
    print(
        f"\nA worker also stores each task's state through the django-db result backend (STARTED, then "
        f"SUCCESS), which task.apply skips: {backend_sql.total} statements per job "
        f"({', '.join(f'{shape.split(chr(34))[0].strip()} {n}' for shape, n in backend_sql.shapes.items())})."
    )
    stream = io.StringIO()
    # Our own functions only: where in invoices/ and jobs/ the time goes.
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(f"{ROOT}/(invoices|jobs)/", top)
    print(stream.getvalue())


# --- main -----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="invoices in the drop folder (default 1000)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes (default 2)")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB, help="broker db; the cache uses the next one")
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--timeout", type=float, default=420, help="seconds to wait for every invoice to be final")
    parser.add_argument("--budget", type=int, default=600, help="the whole benchmark's time limit in seconds")
    parser.add_argument("--keep", action="store_true", help="keep the database (and print its name)")
    parser.add_argument(
        "--flush-redis",
        action="store_true",
        help="empty the Redis dbs even if they hold keys (left over from a crashed run)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the run, profile 200 more invoices in this process (cProfile, SQL counts)",
    )
    return parser.parse_args(argv)


def code_version() -> str:
    """The commit the code is at, and whether the pipeline's code has uncommitted changes."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    changed = git("status", "--porcelain", "--", "invoices", "jobs", "config")
    return f"{git('rev-parse', '--short', 'HEAD') or '?'}" + (
        f" + uncommitted changes in {len(changed.splitlines())} files of invoices/, jobs/, config/" if changed else ""
    )


def require_free_redis(redis_db: int) -> None:
    """Refuse Redis databases that hold keys or have clients: another process may be using them
    (a test run whose broker is db N-1 uses db N as its cache, and clears it before each test)."""
    import redis

    from bench.common import REDIS_SERVER

    for db in (redis_db, redis_db + 1):
        client = redis.Redis.from_url(f"{REDIS_SERVER}/{db}", socket_timeout=5)
        keys = client.dbsize()
        others = [c for c in client.client_list() if int(c.get("db", -1)) == db and c["id"] != str(client.client_id())]
        if keys or others:
            raise BenchError(
                f"Redis db {db} holds {keys} keys and has {len(others)} other clients: another process "
                f"may be using it. Pick another pair with --redis-db, or pass --flush-redis if the keys "
                f"are left over from a crashed run."
            )


def main(argv: list[str]) -> int:
    """Set up, run once, report, clean up."""
    args = parse_args(argv)
    command = "python bench/invoices_e2e.py " + shlex.join(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    inbox, probe_dir = workdir / "inbox", workdir / "probe"
    for folder in (inbox, probe_dir, workdir / "media"):
        folder.mkdir()
    env = bench_environment(
        database=args.database,
        redis_db=args.redis_db,
        extra={"MEDIA_ROOT": str(workdir / "media"), "INVOICE_INBOX_DIR": str(inbox)},
    )
    worker_env = {**env, "JOB_EXTRA_MODULES": "bench.invoices_e2e", PROBE_ENV: str(probe_dir)}
    worker: WorkerProcess | None = None
    redis_claimed = database_created = False  # never flush or drop what another run holds
    try:
        require_services()
        if not args.flush_redis:
            require_free_redis(args.redis_db)
        redis_claimed = True
        create_database(args.database)
        database_created = True
        setup_django(env)
        flush_redis(args.redis_db)
        logging.disable(logging.WARNING)  # factur-x and pypdf log a line per PDF
        with time_budget(args.budget):
            migrate()
            print_header("Invoices end to end: drop folder -> real worker -> final status", command)
            print(f"services: {service_versions()}")
            print(f"code: {code_version()}")
            started = time.monotonic()
            files = build_mix(args.count)
            print(
                f"built {len(files)} distinct files in {time.monotonic() - started:.1f} s "
                f"({sum(len(f.content) for f in files) / 1_048_576:.1f} MiB)"
            )
            worker = WorkerProcess(env=worker_env, concurrency=args.concurrency).start()
            print(
                f"worker: prefork -c {args.concurrency}, all queues, -l INFO, prefetch 1, acks late "
                "(the Procfile's worker; config/settings.py)"
            )
            result = run_pipeline(
                files=files,
                inbox=inbox,
                probe_dir=probe_dir,
                worker=worker,
                concurrency=args.concurrency,
                timeout=args.timeout,
                redis_db=args.redis_db,
            )
            worker.stop()
            worker = None
            print(f"load average at end of run: {load_average()}")
            standalone = standalone_extraction(files)
            report(files, result, standalone, args.concurrency)
            sync_seconds, sync_made = sync_import_rate(files, workdir, env, args.database)
            report_sync(len(files), result, sync_seconds, sync_made)
            if args.profile:
                sample = files[:: max(1, len(files) // 200)][:200]  # every group of the mix, in its share
                profile_files = [profile_copy(item) for item in sample]
                profile_in_process(profile_files, inbox)
    except (BenchError, BenchTimeout) as exc:
        print(f"\nbenchmark stopped: {exc}", file=sys.stderr)
        if worker is not None:
            print(worker.log()[-3000:], file=sys.stderr)
        return 1
    finally:
        if worker is not None:
            worker.stop()
        if redis_claimed:
            with contextlib.suppress(Exception):
                flush_redis(args.redis_db)
        if args.keep and database_created:
            print(f"database kept: {args.database}")
        elif database_created:
            with contextlib.suppress(Exception):
                drop_database(args.database)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
