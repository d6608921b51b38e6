"""The API keys file: who may call, kept hashed in memory, re-read when it changes.

One key per line, with an optional name and an optional `admin` mark; `#` starts a
comment. A key may be written as its SHA-256 (`sha256:<64 hex digits>`), so the file
need not hold the secret itself:

    alice   3f9c...a long random key...
    ci      sha256:9b74c9897bac770ffc029102a200c5de...  admin
    0d1e...a key without a name (named "key-3", after its line)

Only SHA-256 digests are kept. A presented key is hashed and its digest compared with
every stored digest by `hmac.compare_digest`, so how long an answer takes says nothing
about how much of a wrong key was right. The file is looked at (mtime, inode, size) at
most once a second; an edit, or a new file renamed over it, takes effect without a
restart. A file that breaks on re-reading keeps the last good keys, with one log line.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
_HASHED = re.compile(r"^sha256:([0-9a-f]{64})$")
_KEY = re.compile(r"^[\x21-\x7e]{16,512}$")  # printable ASCII, no spaces


class KeyFileError(ValueError):
    """The keys file cannot be used; the message names the line, never a key."""


@dataclass(frozen=True)
class Caller:
    """Who a key belongs to."""

    name: str
    admin: bool = False


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def parse_keys(text: str, source: str) -> list[tuple[bytes, Caller]]:
    """The (digest, caller) pairs of a keys file's text."""
    entries: list[tuple[bytes, Caller]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        admin = words[-1] == "admin"
        words = words[:-1] if admin else words
        if len(words) not in (1, 2):
            raise KeyFileError(f"{source}:{number}: expected [name] key [admin]")
        name, key = (words if len(words) == 2 else (f"key-{number}", words[0]))
        hashed = _HASHED.match(key)
        if not hashed and not _KEY.match(key):
            raise KeyFileError(f"{source}:{number}: a key is 16 to 512 printable characters "
                               "without spaces, or sha256:<64 hex digits>")
        entries.append((bytes.fromhex(hashed.group(1)) if hashed else digest(key),
                        Caller(name, admin)))
    if not entries:
        raise KeyFileError(f"{source}: no keys in it")
    return entries


class KeyFile:
    """The keys of API_KEYS_FILE, current to within a second."""

    def __init__(self, path: Path, recheck_s: float = 1.0) -> None:
        self.path = path
        self.recheck_s = recheck_s
        self._entries = self._read()
        self._stamp = self._look()
        self._checked = time.monotonic()

    def _look(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_ino, stat.st_size

    def _read(self) -> list[tuple[bytes, Caller]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyFileError(f"API_KEYS_FILE={self.path}: cannot be read "
                               f"({type(exc).__name__})") from None
        return parse_keys(text, f"API_KEYS_FILE={self.path}")

    def refresh(self) -> None:
        """Re-read the file if it changed since the last look (at most once a second)."""
        now = time.monotonic()
        if now - self._checked < self.recheck_s:
            return
        self._checked = now
        stamp = self._look()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._entries = self._read()
        except KeyFileError as exc:
            log.error("%s; keeping the %d keys read before", exc, len(self._entries))
            return
        log.info("API keys re-read from %s: %d keys", self.path, len(self._entries))

    def caller(self, key: str) -> Caller | None:
        """The caller whose key this is, or None. Every stored digest is compared."""
        presented = digest(key)
        found = None
        for stored, caller in self._entries:
            if hmac.compare_digest(stored, presented):
                found = caller
        return found


def presented(authorization: str, x_api_key: str) -> str:
    """The key a request carries: `Authorization: Bearer <key>`, else `X-API-Key` (the
    same for HTTP headers and gRPC metadata); "" when neither."""
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return x_api_key.strip()
