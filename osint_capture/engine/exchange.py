"""One HTTP exchange as the browser saw it, and a body file hashed as it is written.

The recorder (:mod:`.recorder`) fills these in; the WARC writer (:mod:`.warc`) and the
capture's provenance read them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["BlockedRequest", "BodySink", "Exchange"]

# Documents above this size, and media documents of unknown size, are streamed to disk
# rather than read whole (see Recorder._stream_withheld).
_WHOLE_DOCUMENT_LIMIT = 16 * 1024 * 1024
_RENDERED_TYPES = ("text/", "application/xhtml", "application/xml", "image/svg", "application/json")
# Text types Chromium downloads rather than shows (its kUnsupportedTextTypes): read whole
# while paused, as for any type the page does not render, so the download that follows
# leaves the whole file in the WARC.
_DOWNLOADED_TEXT_TYPES = frozenset(
    {
        "text/calendar",
        "text/x-calendar",
        "text/x-vcalendar",
        "text/vcalendar",
        "text/vcard",
        "text/x-vcard",
        "text/directory",
        "text/ldif",
        "text/qif",
        "text/x-qif",
        "text/x-csv",
        "text/x-vcf",
        "text/rtf",
        "text/comma-separated-values",
        "text/csv",
        "text/tab-separated-values",
        "text/tsv",
        "text/ofx",
        "text/vnd.sun.j2me.app-descriptor",
    }
)


@dataclass
class Exchange:
    """One request and the response to it, as the browser saw them."""

    order: int
    network_id: str
    url: str
    method: str
    resource_type: str
    request_headers: dict[str, str]
    request_body: bytes | None
    request_time: str
    status: int = 0
    status_text: str = ""
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_time: str = ""
    protocol: str | None = None
    remote_ip: str | None = None
    remote_port: int | None = None
    security_details: dict[str, Any] | None = None
    mime_type: str | None = None
    frame_id: str | None = None
    body_path: Path | None = None
    body_size: int = 0
    body_sha256: str | None = None
    complete: bool = False
    truncated: str | None = None  # WARC-Truncated reason: length, time, disconnect, unspecified
    failure: str | None = None
    # The browser itself abandoned the load (navigation away, a superseded favicon):
    # recorded, but not a gap in what the page showed.
    canceled: bool = False
    # "network": the headers as the network stack sent them (Network.*ExtraInfo);
    # "fetch": as the page asked for them, before the network stack added its own.
    request_headers_source: str = "fetch"
    # Loaded by the browser for itself (the tab's favicon), not by the page: recorded,
    # but neither waited for nor a gap in what the page showed.
    browser_initiated: bool = False
    # A document too large (or a media file) to hand to the browser whole: its body was
    # streamed into the WARC and the browser was not shown it.
    withheld: str | None = None
    # Fetched beside the page, not by it (robots.txt, in a context of its own): kept in
    # the WARC, never a gap in what the page showed.
    aside: str | None = None

    def withhold_reason(self) -> str | None:
        """Why this document must not be handed to the browser whole (it would be large
        in memory, or it would start a download), or None: a download
        (``Content-Disposition: attachment``), a declared length over 16 MiB without
        content encoding, over 4 MiB of a type the browser does not render as a page,
        or a media type of unknown length."""
        headers = {k.lower(): v for k, v in self.response_headers}
        mime = headers.get("content-type", "").split(";")[0].strip().lower()
        if headers.get("content-disposition", "").strip().lower().startswith("attachment"):
            # The browser would start a download (refused) instead of showing it.
            return f"a file served as a download ({mime or 'no type'})"
        length = headers.get("content-length", "")
        encoded = "content-encoding" in headers
        if length.isdigit() and not encoded and int(length) > _WHOLE_DOCUMENT_LIMIT:
            return f"a {mime or 'document'} of {int(length)} bytes"
        if not length.isdigit() and mime.startswith(
            ("video/", "audio/", "application/octet-stream")
        ):
            return f"a {mime} of unknown length"
        if (
            length.isdigit()
            and int(length) > _WHOLE_DOCUMENT_LIMIT // 4
            and not mime.startswith(_RENDERED_TYPES)
        ):
            return f"a {mime or 'file'} of {int(length)} bytes"
        return None

    def rendered_by_the_page(self) -> bool:
        """A document type Blink renders itself (HTML, text, XML, SVG, JSON), so the bytes
        the renderer receives are the server's. Others may not be: for a PDF the browser
        hands the renderer a wrapper page of its own viewer instead of the file."""
        headers = {k.lower(): v for k, v in self.response_headers}
        mime = headers.get("content-type", "").split(";")[0].strip().lower()
        # No type: Chromium sniffs it, and a sniffed PDF goes to the viewer too.
        return (
            mime != "" and mime.startswith(_RENDERED_TYPES) and mime not in _DOWNLOADED_TEXT_TYPES
        )

    @property
    def is_redirect(self) -> bool:
        return 300 <= self.status < 400 and self.location is not None

    @property
    def location(self) -> str | None:
        for name, value in self.response_headers:
            if name.lower() == "location":
                return value
        return None


@dataclass(frozen=True)
class BlockedRequest:
    url: str
    reason: str
    time: str
    rule: str  # "access" (lawful-access rules), "dns" or "size-limit"


class BodySink:
    """A body file that hashes bytes as they are written (one pass per byte).

    A write the disk refuses (full, read-only) stops the sink instead of raising: it
    runs inside the browser's event handlers, and the capture must end in one clear
    error, not a traceback per event. ``error`` says what happened; the bytes kept so
    far are hashed and counted, the rest are not.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] = open(path, "wb", buffering=0)  # noqa: SIM115 - closed in close()
        self._hash = hashlib.sha256()
        self.size = 0
        self.closed = False
        self.error: OSError | None = None

    def write(self, data: bytes) -> None:
        if self.closed or self.error is not None or not data:
            return
        try:
            written = self._fh.write(data) or 0
        except OSError as exc:
            self.error = exc
            return
        self._hash.update(data[:written])
        self.size += written
        if written < len(data):
            self.error = OSError(28, "No space left on device", str(self.path))

    def close(self) -> str:
        if not self.closed:
            self.closed = True
            try:
                self._fh.close()
            except OSError as exc:
                self.error = self.error or exc
        return self._hash.hexdigest()
