"""Parse the data imaplib returns for UID FETCH into one dict per message.

imaplib hands FETCH responses back half-parsed: a list of lines, where a line
that announced a literal (`{123}`) becomes a tuple (line, literal bytes) and
the rest of that response continues in the next element. BODYSTRUCTURE and
HEADER.FIELDS need real parsing (nested lists, quoted strings, literals), so
the pieces are tokenised here in order, each literal taking the place of the
`{n}` that announced it.
"""

from __future__ import annotations

import re

# One token per match; the last group catches anything the grammar does not allow.
_TOKEN = re.compile(
    rb"""(\()|(\))|"((?:[^"\\]|\\.)*)"|([^\s()"{\[\]]+(?:\[[^\]]*\](?:<[^>]*>)?)?)|(\S)""",
    re.DOTALL,
)
_LITERAL_MARKER = re.compile(rb"\{(\d+)\+?\}$")
_QUOTED_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)
_MAX_NESTING = 100

Value = bytes | None | list  # atoms, strings and literals are bytes; NIL is None


class ImapResponseError(ValueError):
    """A FETCH response that does not follow the IMAP grammar."""


def parse_fetch_response(data: list) -> list[dict[str, Value]]:
    """The msg-att items of each FETCH response in `data`, keyed by upper-case item name.

    Example keys: "UID", "FLAGS", "RFC822.SIZE", "INTERNALDATE", "BODYSTRUCTURE", "BODY[]",
    'BODY[HEADER.FIELDS (MESSAGE-ID SUBJECT FROM DATE)]'.
    """
    responses = []
    for value in _parse_values(data):
        if isinstance(value, list):  # the message sequence number before each list is not needed
            responses.append(_items(value))
    return responses


def _parse_values(data: list) -> list[Value]:
    """Tokenise imaplib's pieces in order; a tuple's literal is the value its line's `{n}` announced."""
    root: list[Value] = []
    stack: list[list[Value]] = [root]
    current = root
    for piece in data:
        if piece is None:
            continue
        literal = None
        if isinstance(piece, tuple):
            text, literal = piece[0], piece[1] if len(piece) > 1 and piece[1] is not None else b""
            marker = _LITERAL_MARKER.search(text)
            if marker is None or int(marker.group(1)) != len(literal):
                raise ImapResponseError(f"literal without a matching size marker in FETCH response: {text[-40:]!r}")
            text = text[: marker.start()]
        else:
            text = piece
        for opening, closing, quoted, atom, unexpected in _TOKEN.findall(text):
            if atom:
                current.append(None if atom.upper() == b"NIL" else atom)
            elif opening:
                if len(stack) > _MAX_NESTING:
                    raise ImapResponseError("FETCH response nested too deeply")
                child: list[Value] = []
                current.append(child)
                stack.append(child)
                current = child
            elif closing:
                if len(stack) == 1:
                    raise ImapResponseError("unbalanced ')' in FETCH response")
                stack.pop()
                current = stack[-1]
            elif unexpected:
                raise ImapResponseError(f"unexpected {unexpected!r} in FETCH response: {text[:60]!r}")
            else:  # a quoted string (possibly empty)
                current.append(_QUOTED_ESCAPE.sub(rb"\1", quoted) if b"\\" in quoted else quoted)
        if literal is not None:
            current.append(literal)
    if len(stack) != 1:
        raise ImapResponseError("unbalanced '(' in FETCH response")
    return root


def _items(values: list[Value]) -> dict[str, Value]:
    items: dict[str, Value] = {}
    for index in range(0, len(values) - 1, 2):
        key = values[index]
        if isinstance(key, bytes):
            items[key.decode("ascii", "replace").upper()] = values[index + 1]
    return items
