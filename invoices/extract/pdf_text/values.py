"""Values in invoice text: amounts, dates, and how a found value carries its confidence."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Generic, TypeVar

T = TypeVar("T")

CONFIRMED = 0.9  # a labelled value confirmed by check digits or by totals that add up
GUESS = 0.5


@dataclass(frozen=True)
class Found(Generic[T]):
    """A value read from the text, how sure we are of it, and where it was (character offset)."""

    value: T
    confidence: float
    position: int = 0


def label(pattern: str) -> str:
    """A label as a whole word or phrase: not inside a longer word, not part of a hyphenated compound."""
    return rf"(?<![\w-])(?:{pattern})(?![\w-])"


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Labels are matched ignoring case, with ^ and $ at line ends."""
    return re.compile(pattern, re.IGNORECASE | re.MULTILINE)


# A money amount has exactly two decimals: "1.234,56", "1,234.56", "1234.56", "-7,67".
# Unit prices with 3-4 decimals, percentages and dates are not amounts.
_AMOUNT_RE = re.compile(r"(?<![\w.,/])-?(?:\d{1,3}(?:[.,'\u2019]\d{3})+|\d+)[.,]\d{2}(?![\d]|[.,]\d)(?!\s?%)")


def parse_amount(text: str) -> Decimal | None:
    """The amount a token like '1.234,56' or '-1,980.00' means; None when separators contradict."""
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("-")
    decimal_separator = digits[-3]
    body = digits[:-3]
    group_separators = set(re.sub(r"\d", "", body))
    if decimal_separator in group_separators or len(group_separators) > 1:
        return None
    try:
        return sign * Decimal(re.sub(r"\D", "", body) + "." + digits[-2:])
    except InvalidOperation:  # pragma: no cover - the pattern admits only digits
        return None


def find_amounts(text: str) -> list[tuple[Decimal, int, int]]:
    """Every money amount in `text` with its start and end offsets."""
    found = []
    for match in _AMOUNT_RE.finditer(text):
        value = parse_amount(match.group())
        if value is not None:
            found.append((value, match.start(), match.end()))
    return found


MONTHS = {
    1: ("january", "jan", "januar", "jänner", "janvier", "janv"),
    2: ("february", "feb", "februar", "février", "fevrier", "févr", "fevr"),
    3: ("march", "mar", "märz", "maerz", "mars"),
    4: ("april", "apr", "avril", "avr"),
    5: ("may", "mai"),
    6: ("june", "jun", "juni", "juin"),
    7: ("july", "jul", "juli", "juillet", "juil"),
    8: ("august", "aug", "août", "aout"),
    9: ("september", "sep", "sept", "septembre"),
    10: ("october", "oct", "oktober", "okt", "octobre"),
    11: ("november", "nov", "novembre"),
    12: ("december", "dec", "dezember", "dez", "décembre", "decembre"),
}
_MONTH_NUMBER = {name: number for number, names in MONTHS.items() for name in names}
_MONTH_NAMES = "|".join(sorted(_MONTH_NUMBER, key=len, reverse=True))
_DATE_RE = re.compile(
    r"(?<![\d.])(?:"
    r"(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})(?!\d)"
    r"|(?P<dd>\d{1,2})\.\s?(?P<dm>\d{1,2})\.\s?(?P<dy>\d{4}|\d{2})(?!\d|[.,]\d)"
    r"|(?P<sa>\d{1,2})/(?P<sb>\d{1,2})/(?P<sy>\d{4}|\d{2})(?!\d)"
    rf"|(?P<td>\d{{1,2}})(?:\.|er|st|nd|rd|th)?\s+(?P<tm>{_MONTH_NAMES})\.?,?\s+(?P<ty>\d{{4}})(?!\d)"
    rf"|(?P<um>{_MONTH_NAMES})\.?\s+(?P<ud>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<uy>\d{{4}})(?!\d)"
    r")",
    re.IGNORECASE,
)


def infer_slash_date_order(text: str) -> str:
    """'dmy' or 'mdy' for the dates written with slashes in this document.

    A date like 17/11/2017 can only be day-first and 11/17/2017 only month-first;
    the document's unambiguous dates decide for the ambiguous ones. Without any
    evidence, day-first (the European order) is assumed.
    """
    day_first = month_first = False
    for match in re.finditer(r"(?<![\d/])(\d{1,2})/(\d{1,2})/(?:\d{4}|\d{2})(?!\d)", text):
        first, second = int(match.group(1)), int(match.group(2))
        day_first |= first > 12 >= second
        month_first |= second > 12 >= first
    return "mdy" if month_first and not day_first else "dmy"


def _year(text: str) -> int:
    year = int(text)
    return year + 2000 if year < 100 else year


def _date_from_match(match: re.Match[str], slash_order: str) -> dt.date | None:
    groups = match.groupdict()
    try:
        if groups["iy"]:
            return dt.date(int(groups["iy"]), int(groups["im"]), int(groups["id"]))
        if groups["dd"]:
            return dt.date(_year(groups["dy"]), int(groups["dm"]), int(groups["dd"]))
        if groups["sa"]:
            first, second = int(groups["sa"]), int(groups["sb"])
            day, month = (second, first) if slash_order == "mdy" else (first, second)
            return dt.date(_year(groups["sy"]), month, day)
        if groups["td"]:
            return dt.date(int(groups["ty"]), _MONTH_NUMBER[groups["tm"].casefold()], int(groups["td"]))
        return dt.date(int(groups["uy"]), _MONTH_NUMBER[groups["um"].casefold()], int(groups["ud"]))
    except ValueError:
        return None


def find_dates(text: str, *, slash_order: str = "dmy") -> list[tuple[dt.date, int, int]]:
    """Every date in `text` (ISO, 19.01.2016, 19/01/2016, 19. Januar 2016, January 19, 2016) with offsets."""
    found = []
    for match in _DATE_RE.finditer(text):
        date = _date_from_match(match, slash_order)
        if date is not None and 1980 <= date.year <= 2100:
            found.append((date, match.start(), match.end()))
    return found


def lines_with_offsets(text: str) -> Iterator[tuple[int, str]]:
    offset = 0
    for line in text.split("\n"):
        yield offset, line
        offset += len(line) + 1


def first_date_after(text: str, label_re: re.Pattern[str], slash_order: str) -> tuple[dt.date, int] | None:
    """The first date on the same line after a label, or None."""
    for offset, line in lines_with_offsets(text):
        for hit in label_re.finditer(line):
            dates = find_dates(line[hit.end() :], slash_order=slash_order)
            if dates:
                return dates[0][0], offset + hit.start()
    return None
