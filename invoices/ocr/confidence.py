"""How sure Tesseract was of the words a field was read from.

The text extractor returns values, not positions, so the words are found again
in Tesseract's word list: a run of consecutive words whose letters and digits
spell the value (an amount 1234.56 is spelt "123456" whether printed
"1.234,56" or "1,234.56"; a date as day-month-year, year-month-day or
month-day-year digits). The field's OCR confidence is the lowest word
confidence in that run, the best run when the value appears more than once.
When the value cannot be found word for word (a date written with a month
name, a name split oddly), the document's mean word confidence stands in.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal

from invoices.ocr.engine import Word

# A value is spelt by at most this many consecutive words ("DE 123 456 789", "Au bon moulin SARL").
MAX_RUN = 8
_NOT_ALNUM = re.compile(r"[\W_]+")


def _spelling(text: str) -> str:
    return _NOT_ALNUM.sub("", text).casefold()


def spellings(value: object) -> set[str]:
    """The letters-and-digits forms a value may be printed as."""
    if isinstance(value, Decimal):
        fixed = f"{abs(value):.2f}"
        return {_spelling(fixed)}
    if isinstance(value, dt.date):
        d, m, y = value.day, value.month, value.year
        forms = {
            f"{d:02}{m:02}{y}",
            f"{d}{m}{y}",
            f"{y}{m:02}{d:02}",
            f"{m:02}{d:02}{y}",
            f"{d:02}{m:02}{y % 100:02}",
            f"{m}{d}{y}",
            f"{d}{m:02}{y}",
            f"{d:02}{m}{y}",
        }
        return {form for form in forms if form}
    spelt = _spelling(str(value))
    return {spelt} if spelt else set()


def field_word_confidence(
    value: object, words: Sequence[Word], spelt_words: Sequence[str] | None = None
) -> float | None:
    """The OCR confidence of the words `value` was read from, or None when they cannot be found."""
    targets = spellings(value)
    if not targets:
        return None
    spelt_words = spelt_words if spelt_words is not None else [_spelling(word.text) for word in words]
    longest = max(len(target) for target in targets)
    best: float | None = None
    for start in range(len(words)):
        if not spelt_words[start]:
            continue
        joined, lowest = "", 1.0
        for end in range(start, min(start + MAX_RUN, len(words))):
            joined += spelt_words[end]
            lowest = min(lowest, words[end].confidence)
            # The first or last word may carry a label or punctuation glued on ("Nr.4711", "100,00EUR").
            if any(target in joined for target in targets):
                best = lowest if best is None else max(best, lowest)
                break
            if len(joined) > longest + 12:
                break
    return best


def mean_word_confidence(words: Sequence[Word]) -> float | None:
    """The mean confidence of the words with at least two letters or digits (specks and rules left out)."""
    real = [word.confidence for word in words if len(_spelling(word.text)) >= 2]
    return sum(real) / len(real) if real else None


def spelt(words: Sequence[Word]) -> list[str]:
    """The letters-and-digits form of each word, for repeated `field_word_confidence` calls."""
    return [_spelling(word.text) for word in words]
