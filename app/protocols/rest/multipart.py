"""The parts of a multipart/form-data body (RFC 7578), read in one pass over bytes in memory.

Werkzeug's streaming parser is general and careful, and it cost ~11 % of a worker's Python
time on small uploads (`make profile`): an event loop over chunks, spooling, a FileStorage
per part. h5serve already holds the whole body in memory (MAX_CONTENT_LENGTH bounds it),
so the delimiters are found with `bytes.find` over it. What Werkzeug (silent, as Flask runs it)
does with a malformed body, this does too: no parts, so the caller answers `missing_file`.
Nothing is written to disk.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header

MAX_PARTS = 1000  # Werkzeug's max_form_parts: more is a 413


@dataclass(frozen=True)
class Part:
    """One part: its field name, its filename (None for a text field) and its bytes."""

    name: str
    filename: str | None
    content: bytes


_LINE_BREAK = rb"(?:\r\n|\n|\r)"
_HEADER_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def parse_multipart(body: bytes, boundary: str) -> list[Part]:
    """Every well-formed part of `body`, in order; [] when the body is malformed.

    A delimiter is `--boundary` at the start of a line, then `--` (the last one) or the
    end of its line; lines may end in CRLF, LF or CR, as Werkzeug accepts them.
    """
    delimiters = _delimiters(body, b"--" + boundary.encode("latin-1", "replace"))
    found = next(delimiters, None)
    parts: list[Part] = []
    while found is not None and not found[2]:
        following = next(delimiters, None)
        if following is None:
            return []  # truncated: no closing delimiter
        part = _part(body[found[1]:following[0]])
        if part is not None:  # a part without a field name is skipped, as Werkzeug does
            parts.append(part)
        if len(parts) > MAX_PARTS:
            raise RequestEntityTooLarge(f"More than {MAX_PARTS} multipart parts.")
        found = following
    return parts if found is not None else []


def _delimiters(body: bytes, marker: bytes) -> Iterator[tuple[int, int, bool]]:
    """(where the line break before it starts, where the part after it starts, whether it
    is the close delimiter) for every delimiter line, found with bytes.find (C speed)."""
    at, previous_end = body.find(marker), 0
    while at >= 0:
        before = body[max(at - 2, 0):at]
        start = at - (2 if before == b"\r\n" else 1 if before[-1:] in (b"\n", b"\r") else 0)
        # At a line start: the body's, or after a line break the last delimiter did not use.
        if (at == 0 or start < at) and start >= previous_end:
            after = at + len(marker)
            if body.startswith(b"--", after):
                yield start, after + 2, True
                return
            line = _LINE_END.match(body, after)
            if line is not None:
                previous_end = line.end()
                yield start, previous_end, False
        at = body.find(marker, at + 1)


_LINE_END = re.compile(rb"[ \t]*" + _LINE_BREAK)


def _part(raw: bytes) -> Part | None:
    """Headers, a blank line, the content; None without a disposition naming the field."""
    if re.match(_LINE_BREAK, raw):  # no headers at all: so no name either
        return None
    end = _HEADER_END.search(raw)  # none: an empty part, its blank line the delimiter's
    head, content = (raw[:end.start()], raw[end.end():]) if end else (raw, b"")
    disposition = ""
    for line in re.split(_LINE_BREAK.decode(), head.decode("utf-8", "replace")):
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() == "content-disposition":
            disposition = value.strip()
            break  # the first one counts, as in Werkzeug's Headers
    options = parse_options_header(disposition)[1]  # the type itself is not checked
    if "name" not in options:
        return None
    return Part(options["name"], options.get("filename"), content)
