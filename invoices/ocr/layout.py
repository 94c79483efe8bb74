"""The text of an OCRed page in the two renderings the plain-PDF extractor reads.

pypdf's layout mode cannot place the invisible text layer OCRmyPDF writes (it
returns blank pages), so both renderings are made here from Tesseract's own
word boxes: "layout" puts every word at the column its x position gives on a
character grid, lines at the same height side by side (as pypdf does for a text
PDF, so "Total  671,15" stays on one row); "plain" is Tesseract's reading order,
one line of words per line.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from invoices.ocr.engine import Line

# Words narrower than this many pixels per character are specks, not text, for the grid width.
_MIN_CHAR_WIDTH = 4


def page_renderings(lines: Sequence[Line]) -> tuple[str, str]:
    """(layout, plain) text of one page from Tesseract's lines."""
    plain = "\n".join(" ".join(word.text for word in line.words) for line in lines)
    return _layout(lines), plain


def _layout(lines: Sequence[Line]) -> str:
    if not lines:
        return ""
    widths = [
        (word.box[2] - word.box[0]) / len(word.text)
        for line in lines
        for word in line.words
        if len(word.text) >= 2 and word.box[2] > word.box[0]
    ]
    char_width = max(statistics.median(widths), _MIN_CHAR_WIDTH) if widths else 10.0
    heights = [line.box[3] - line.box[1] for line in lines if line.box[3] > line.box[1]]
    line_height = statistics.median(heights) if heights else 20.0

    rows: list[list[Line]] = []
    centres: list[float] = []
    for line in sorted(lines, key=lambda line: (line.box[1] + line.box[3]) / 2):
        centre = (line.box[1] + line.box[3]) / 2
        if rows and abs(centre - centres[-1]) <= line_height / 2:
            rows[-1].append(line)
        else:
            rows.append([line])
            centres.append(centre)

    text_rows: list[str] = []
    previous = None
    for row, centre in zip(rows, centres, strict=True):
        if previous is not None and centre - previous > 2 * line_height:
            text_rows.append("")  # a gap on the page is a blank line, as in pypdf's layout mode
        previous = centre
        text = ""
        for word in sorted((word for line in row for word in line.words), key=lambda word: word.box[0]):
            column = round(word.box[0] / char_width)
            text += " " * max(column - len(text), 1 if text else 0) + word.text
        text_rows.append(text)
    return "\n".join(text_rows)
