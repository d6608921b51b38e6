"""The request class of the app: multipart uploads kept in memory, never on disk.

Werkzeug spools uploads over 500 kB to temporary files; a serving process should not
write client data to disk, and MAX_CONTENT_LENGTH already bounds the memory, so
`InMemoryRequest` keeps every part in a BytesIO (app.protocols.bodies reads it).
"""

from __future__ import annotations

import io
from typing import IO

from flask import Request


class InMemoryRequest(Request):
    """A Flask request whose multipart file parts never touch the disk."""

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None,
                         content_length: int | None = None) -> IO[bytes]:
        return io.BytesIO()
