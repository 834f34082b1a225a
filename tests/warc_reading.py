"""Read a captured WARC back the way a third party would, for assertions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator


@dataclass(frozen=True)
class Record:
    type: str
    uri: str
    headers: dict[str, str]
    http_status: str | None
    http_headers: list[tuple[str, str]]
    body: bytes

    def http_header(self, name: str) -> str | None:
        for key, value in self.http_headers:
            if key.lower() == name.lower():
                return value
        return None


def read_warc(path: Path) -> list[Record]:
    records = []
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh, check_digests="raise"):
            http = rec.http_headers
            body = (
                rec.content_stream().read() if rec.rec_type == "response" else rec.raw_stream.read()
            )
            records.append(
                Record(
                    type=rec.rec_type,
                    uri=rec.rec_headers.get_header("WARC-Target-URI") or "",
                    headers=dict(rec.rec_headers.headers),
                    http_status=http.get_statuscode() if http is not None else None,
                    http_headers=list(http.headers) if http is not None else [],
                    body=body,
                )
            )
    return records


def responses(records: list[Record], uri_part: str) -> list[Record]:
    return [r for r in records if r.type == "response" and uri_part in r.uri]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
