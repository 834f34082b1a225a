"""Write a capture's WARC 1.1 file with SHA-256 digests on every record.

Digests are ``sha256:`` followed by lowercase hex (the form ``sha256sum``
prints); ``warcio check`` accepts it. Bodies are streamed from the recorder's
files. A response's payload digest was computed while its bytes arrived, so each
body is read twice here: once for the block digest (HTTP headers + body), once
to write it. Renderings (screenshot, PDF …) are read three times; they are small.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import IO
from urllib.parse import quote, urlsplit

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from chain_of_custody.item import RENDERINGS, WARC_NAME, media_type_of
from osint_capture.engine.exchange import Exchange
from osint_capture.engine.model import EngineResult

__all__ = [
    "ArchiveRecordRef",
    "CaptureWarc",
    "warc_date",
    "write_capture_warc",
]

_CHUNK = 1 << 20
_SAMPLE = 64 * 1024
_DEFAULT_LEVEL = 6
# Headers that describe the bytes on the wire, not the decoded bytes Chromium hands over.
_TRANSPORT_HEADERS = {"content-encoding", "content-length", "transfer-encoding"}


def warc_date(iso_utc: str) -> str:
    """Our UTC timestamps (microseconds, Z) are already WARC 1.1 dates."""
    datetime.strptime(iso_utc, "%Y-%m-%dT%H:%M:%S.%fZ")
    return iso_utc


@dataclass(frozen=True)
class ArchiveRecordRef:
    record_id: str
    record_type: str
    target_uri: str


def _hex_digest(*parts: bytes | Path) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            with open(part, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    h.update(chunk)
        else:
            h.update(part)
    return "sha256:" + h.hexdigest()


class _GzipMember:
    """One gzip member per record (as warcio writes), at a level chosen per record."""

    def __init__(self, out: IO[bytes], level: int) -> None:
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS + 16)
        self._out = out

    def write(self, data: bytes) -> None:
        self._out.write(self._compressor.compress(data))

    def flush(self) -> None:
        self._out.write(self._compressor.flush())
        self._out.flush()


def _trial_start(size: int) -> int:
    """Where the gzip trial of a body of ``size`` bytes begins: its middle, or its start."""
    return size // 2 - _SAMPLE // 2 if size > 2 * _SAMPLE else 0


def _gzip_level(body: bytes | Path) -> int:
    """Level 0 (stored) for bodies that do not compress, such as video and images; level
    1 for those that compress poorly, such as a fast-encoded PNG screenshot; else 6.

    Compressing incompressible media costs ~20 ms per MiB for nothing, and level 6 on the
    sample post's 0.75 MB screenshot 36 ms to save 0.7 % more than level 1 does in 28 ms
    (docs/PERFORMANCE.md). A level-1 trial on 64 KiB decides, taken from the middle of a
    larger body: a video's first bytes are its index, which compresses.
    """
    if isinstance(body, Path):
        with open(body, "rb") as fh:
            fh.seek(_trial_start(fh.seek(0, 2)))
            sample = fh.read(_SAMPLE)
    else:
        start = _trial_start(len(body))
        sample = body[start : start + _SAMPLE]
    if len(sample) < 4096:
        return _DEFAULT_LEVEL
    ratio = len(zlib.compress(sample, 1)) / len(sample)
    if ratio > 0.95:
        return 0
    return 1 if ratio > 0.5 else _DEFAULT_LEVEL


def _status_line(status: int, text: str) -> str:
    # A status line is ASCII in the WARC (warcio writes it so); a reason phrase a server
    # sent in another encoding is percent-encoded as UTF-8, as warcio does for headers.
    safe = quote(text, safe="".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%"))
    return f"{status} {safe}".strip() if text else str(status)


class CaptureWarc:
    """A WARC file being written; records are appended in capture order."""

    def __init__(self, fh: IO[bytes]) -> None:
        # gzip=False: each record is wrapped in its own gzip member below.
        self._writer = WARCWriter(fh, gzip=False, warc_version="1.1")
        self._fh = fh
        self.records: list[ArchiveRecordRef] = []

    def _write(
        self,
        uri: str,
        record_type: str,
        *,
        date: str,
        http_headers: StatusAndHeaders | None,
        body: Path | bytes | None,
        extra: dict[str, str],
        content_type: str = "",
        payload_sha256: str | None = None,
    ) -> ArchiveRecordRef:
        header_bytes = b""
        if http_headers is not None:
            http_headers.compute_headers_buffer(None)
            header_bytes = http_headers.headers_buff
        if body is None:
            body_bytes: bytes | Path = b""
            length = 0
        elif isinstance(body, Path):
            body_bytes = body
            length = body.stat().st_size
        else:
            body_bytes = body
            length = len(body)
        warc_headers: dict[str, str] = {"WARC-Date": warc_date(date)}
        warc_headers.update(extra)
        # Payload and block digests: computed here so they are SHA-256, not warcio's SHA-1.
        warc_headers["WARC-Payload-Digest"] = (
            "sha256:" + payload_sha256 if payload_sha256 else _hex_digest(body_bytes)
        )
        warc_headers["WARC-Block-Digest"] = _hex_digest(header_bytes, body_bytes)
        stream: IO[bytes] = (
            open(body_bytes, "rb")  # noqa: SIM115 - closed below
            if isinstance(body_bytes, Path)
            else BytesIO(body_bytes)
        )
        try:
            record = self._writer.create_warc_record(
                uri,
                record_type,
                payload=stream,
                length=length,
                warc_headers_dict=warc_headers,
                http_headers=http_headers,
                warc_content_type=content_type,
            )
            # warcio's own gzip wrapper has a fixed level; write through ours instead.
            member = _GzipMember(self._fh, _gzip_level(body_bytes))
            self._writer._write_warc_record(member, record)
            record_id = record.rec_headers.get_header("WARC-Record-ID")
        finally:
            stream.close()
        ref = ArchiveRecordRef(record_id, record_type, uri)
        self.records.append(ref)
        return ref

    def warcinfo(self, filename: str, info: dict[str, str], date: str) -> ArchiveRecordRef:
        lines = "".join(f"{k}: {v}\r\n" for k, v in info.items()).encode("utf-8")
        return self._write(
            "",
            "warcinfo",
            date=date,
            http_headers=None,
            body=lines,
            extra={"WARC-Filename": filename},
            content_type="application/warc-fields",
        )

    def exchange(self, ex: Exchange, warcinfo_id: str) -> ArchiveRecordRef:
        """Write the request and response records for one exchange; return the response."""
        parts = urlsplit(ex.url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        req_headers = [(k, v) for k, v in ex.request_headers.items()]
        if not any(k.lower() == "host" for k, _ in req_headers):
            req_headers.insert(0, ("Host", parts.netloc))
        request_http = StatusAndHeaders(
            f"{ex.method} {path} HTTP/1.1", req_headers, protocol="", is_http_request=True
        )
        common: dict[str, str] = {"WARC-Warcinfo-ID": warcinfo_id}
        req_only = {"X-Osint-Capture-Request-Headers": ex.request_headers_source}
        if ex.protocol:
            common["WARC-Protocol"] = ex.protocol.lower()
        if ex.security_details and ex.security_details.get("protocol"):
            tls = str(ex.security_details["protocol"]).lower().replace(" ", "/")
            common["WARC-Protocol"] = ", ".join(p for p in (common.get("WARC-Protocol"), tls) if p)
        if ex.remote_ip:
            common["WARC-IP-Address"] = ex.remote_ip.strip("[]")

        response_headers: list[tuple[str, str]] = []
        stored = ex.body_size if ex.body_path is not None else 0
        for name, value in ex.response_headers:
            if name.lower() in _TRANSPORT_HEADERS:
                response_headers.append((f"X-Archive-Orig-{name}", value))
            else:
                response_headers.append((name, value))
        response_headers.append(("Content-Length", str(stored)))
        response_http = StatusAndHeaders(
            _status_line(ex.status, ex.status_text), response_headers, protocol="HTTP/1.1"
        )
        resp_extra = dict(common)
        if ex.truncated:
            resp_extra["WARC-Truncated"] = ex.truncated
        response = self._write(
            ex.url,
            "response",
            date=ex.response_time,
            http_headers=response_http,
            body=ex.body_path,
            extra=resp_extra,
            content_type="application/http; msgtype=response",
            payload_sha256=ex.body_sha256 if ex.body_path is not None else None,
        )
        req_extra = {**common, **req_only}
        req_extra["WARC-Concurrent-To"] = response.record_id
        self._write(
            ex.url,
            "request",
            date=ex.request_time,
            http_headers=request_http,
            body=ex.request_body,
            extra=req_extra,
            content_type="application/http; msgtype=request",
        )
        return response

    def rendering(
        self,
        uri: str,
        record_type: str,
        path: Path,
        media_type: str,
        date: str,
        warcinfo_id: str,
        refers_to: ArchiveRecordRef | None,
    ) -> ArchiveRecordRef:
        """A screenshot, PDF, DOM or text file as a resource or conversion record."""
        extra = {"WARC-Warcinfo-ID": warcinfo_id}
        if refers_to is not None:
            extra["WARC-Refers-To"] = refers_to.record_id
            extra["WARC-Refers-To-Target-URI"] = refers_to.target_uri
        return self._write(
            uri,
            record_type,
            date=date,
            http_headers=None,
            body=path,
            extra=extra,
            content_type=media_type,
        )


def write_capture_warc(result: EngineResult, warc_path: Path, info: dict[str, str]) -> int:
    """The capture's WARC: warcinfo, every exchange (response, then its request), then
    the renderings, each referring to the page's response; returns the number of
    records. (Sealing the item fsyncs it with every other file.)"""
    with open(warc_path, "wb") as fh:
        warc = CaptureWarc(fh)
        info_id = warc.warcinfo(WARC_NAME, info, result.started).record_id
        main_ref: ArchiveRecordRef | None = None
        for ex in result.exchanges:
            ref = warc.exchange(ex, info_id)
            if ex is result.main_exchange:
                main_ref = ref
        target = result.final_url or result.requested_url
        for step, name, record_type in RENDERINGS:
            path = result.renderings.get(step)
            if path is None:
                continue
            warc.rendering(
                f"urn:osint-capture:{step}:{target}",
                record_type,
                path,
                media_type_of(name),
                result.ended,
                info_id,
                main_ref,
            )
        return len(warc.records)
