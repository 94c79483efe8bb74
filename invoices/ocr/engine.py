"""OCRmyPDF (with Tesseract) run as a separate program, one page at a time.

One page per run gives per-page progress, a hard per-page timeout (the whole
process group is killed, Tesseract and Ghostscript included) and a clean
failure boundary: a page that cannot be read costs that page, not the job.
The Debian packages (ocrmypdf, tesseract-ocr, tesseract-ocr-LANG) are optional:
`ocr_unavailable_reason()` says what is missing, and the caller turns that into
a reason on the invoice instead of an exception.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from lxml import etree

logger = logging.getLogger(__name__)

# OCRmyPDF asks Tesseract's orientation detection whether a page is sideways; its default threshold (14)
# leaves many sideways scans of sparse invoice pages unturned (measured confidences 12-14), and a wrong
# turn shows up as unreadable text, so a lower bar costs little.
ROTATE_THRESHOLD = "2"
# Starting Python, Ghostscript and writing the page add to Tesseract's own time.
PROCESS_OVERHEAD_SECONDS = 30
_LANGUAGE = re.compile(r"^[a-z_]{3,}(?:\+[a-z_]{3,})*$", re.IGNORECASE)
_WCONF = re.compile(r"x_wconf (\d+)")
_BBOX = re.compile(r"bbox (\d+) (\d+) (\d+) (\d+)")
# Tesseract writes lines of text as ocr_line, and headings, captions and floating text as these.
_LINE_CLASSES = frozenset({"ocr_line", "ocr_header", "ocr_caption", "ocr_textfloat"})
_HOCR_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, recover=True, huge_tree=False)


class OcrPageError(Exception):
    """One page could not be OCRed (timeout, the program failed). The message is shown to users."""


@dataclass(frozen=True)
class Word:
    """A word Tesseract read, with its confidence in [0, 1] and its box in pixels (x0, y0, x1, y1)."""

    text: str
    confidence: float
    box: tuple[int, int, int, int] = (0, 0, 0, 0)


@dataclass(frozen=True)
class Line:
    """A line of words as Tesseract found it, with its box in pixels."""

    words: tuple[Word, ...]
    box: tuple[int, int, int, int]


@dataclass
class PageOcr:
    """The searchable one-page PDF OCRmyPDF wrote, and the lines of words Tesseract read on it."""

    pdf: bytes
    lines: list[Line] = field(default_factory=list)

    @property
    def words(self) -> list[Word]:
        return [word for line in self.lines for word in line.words]


def ocr_languages() -> str:
    """The configured Tesseract languages ("eng+deu+fra"), checked to be language codes only."""
    languages = settings.OCR_LANGUAGES.strip()
    return languages if _LANGUAGE.match(languages) else "eng"


def ocr_unavailable_reason() -> str | None:
    """Why OCR cannot run on this host (a sentence for users), or None when it can."""
    if shutil.which(settings.OCR_COMMAND) is None:
        return (
            f"OCR is not installed: the program '{settings.OCR_COMMAND}' (OCRmyPDF) was not found. "
            "Install the packages ocrmypdf and tesseract-ocr (scripts/setup-system.sh), then reprocess."
        )
    tesseract = shutil.which("tesseract")
    if tesseract is None:
        return (
            "OCR is not installed: the program 'tesseract' was not found. Install the package "
            "tesseract-ocr (scripts/setup-system.sh), then reprocess."
        )
    missing = [lang for lang in ocr_languages().split("+") if lang not in installed_languages(tesseract)]
    if missing:
        packages = ", ".join(f"tesseract-ocr-{lang}" for lang in missing)
        return (
            f"OCR is not installed for the language(s) {', '.join(missing)} of OCR_LANGUAGES: install "
            f"{packages}, or change OCR_LANGUAGES, then reprocess."
        )
    return None


@functools.lru_cache(maxsize=4)
def installed_languages(tesseract: str) -> frozenset[str]:
    """The language packs Tesseract has (`tesseract --list-langs`), empty when it cannot say."""
    try:
        listing = subprocess.run([tesseract, "--list-langs"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    # The first line is a heading ("List of available languages in ..."), on stdout or stderr by version.
    lines = (listing.stdout + "\n" + listing.stderr).splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and " " not in line.strip())


def ocr_page(pdf_page: bytes, *, timeout: float) -> PageOcr:
    """OCR a one-page PDF: deskewed, turned upright, with an invisible text layer. Raises OcrPageError."""
    command = shutil.which(settings.OCR_COMMAND)
    if command is None:
        raise OcrPageError(ocr_unavailable_reason() or "OCR is not installed.")
    with tempfile.TemporaryDirectory(prefix="apintake-ocr-") as work_dir:
        work = Path(work_dir)
        source, target, scratch = work / "page.pdf", work / "page-ocr.pdf", work / "tmp"
        scratch.mkdir()
        source.write_bytes(pdf_page)
        arguments = [
            command,
            "--language",
            ocr_languages(),
            "--force-ocr",
            "--deskew",
            "--rotate-pages",
            "--rotate-pages-threshold",
            ROTATE_THRESHOLD,
            "--output-type",
            "pdf",
            "--optimize",
            "0",
            "--jobs",
            "1",
            "--pdf-renderer",
            "hocr",
            "--tesseract-timeout",
            str(int(max(timeout, 1))),
            # The hOCR Tesseract wrote (words with confidences) stays in our scratch folder.
            "--keep-temporary-files",
            "--quiet",
            str(source),
            str(target),
        ]
        # One thread per Tesseract: the worker's concurrency is the parallelism, not OpenMP.
        environment = {**os.environ, "TMPDIR": str(scratch), "OMP_THREAD_LIMIT": "1"}
        _run(arguments, environment, timeout=timeout + PROCESS_OVERHEAD_SECONDS)
        if not target.exists():
            raise OcrPageError("OCR wrote no output for this page.")
        hocr = sorted(scratch.rglob("*_ocr_hocr.hocr"))
        lines = parse_hocr(hocr[0].read_bytes()) if hocr else []
        return PageOcr(pdf=target.read_bytes(), lines=lines)


def _run(arguments: list[str], environment: dict[str, str], *, timeout: float) -> None:
    """Run OCRmyPDF in its own process group, which is killed on timeout or when this job is stopped."""
    process = subprocess.Popen(
        arguments, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment, start_new_session=True
    )
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise OcrPageError(f"OCR of the page took longer than {timeout:.0f} s and was stopped.") from None
    finally:
        if process.poll() is None:  # timeout, or the job's soft time limit / cancel interrupted us
            _kill_group(process)
    if process.returncode != 0:
        detail = _last_line(stderr.decode("utf-8", errors="replace"))
        logger.warning("OCRmyPDF exited with %s: %s", process.returncode, detail)
        raise OcrPageError(f"OCR failed on this page (OCRmyPDF exit status {process.returncode}: {detail}).")


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # it ended by itself meanwhile
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"


def parse_hocr(hocr: bytes) -> list[Line]:
    """The lines of a Tesseract hOCR page in reading order; each word with its confidence (x_wconf / 100)."""
    try:
        root = etree.fromstring(hocr, parser=_HOCR_PARSER)
    except etree.XMLSyntaxError:
        return []
    if root is None:
        return []
    lines = []
    for span in root.iter("{*}span"):
        if not _LINE_CLASSES.intersection((span.get("class") or "").split()):
            continue
        words = []
        for child in span.iter("{*}span"):
            if "ocrx_word" not in (child.get("class") or ""):
                continue
            text = "".join(child.itertext()).strip()
            title = child.get("title") or ""
            confidence = _WCONF.search(title)
            if text and confidence:
                words.append(Word(text, min(int(confidence.group(1)), 100) / 100, _box(title)))
        if words:
            lines.append(Line(tuple(words), _box(span.get("title") or "")))
    return lines


def _box(title: str) -> tuple[int, int, int, int]:
    found = _BBOX.search(title)
    return tuple(int(number) for number in found.groups()) if found else (0, 0, 0, 0)
