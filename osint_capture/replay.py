"""Replay a capture offline: ReplayWeb.page, served on 127.0.0.1 from the files alone.

``osint-capture replay TARGET`` takes an item ID, an item folder, a bundle (``.zip``) or
a WACZ (``.wacz``). An item's ``archive.warc.gz`` is served as it is; a bundle is read
with the bundle reader (nothing trusted before it is judged) and its items' WARCs are
packaged into a temporary WACZ (:func:`cases.wacz.write_replay_package`); a WACZ is
served as it is. The page shown is ReplayWeb.page (npm ``replaywebpage``, AGPL-3.0,
installed by ``make install`` into the virtual environment): its ``ui.js`` and its
service worker ``sw.js``, which reads the archive from this server with HTTP range
requests (a WACZ is read by ranges, so the server must answer ``Range`` with 206).

Nothing is fetched from the live web: the server answers only its own few paths, and
every response carries a Content-Security-Policy allowing only this origin (plus
``data:``/``blob:``), which binds the service worker's own fetches too, so a request the
archive cannot answer fails instead of going out.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from cases.case import is_item_id
from cases.store import EvidenceStore
from cases.wacz import PackageItem, package_item, write_replay_package
from chain_of_custody.bundle import open_bundle
from chain_of_custody.errors import UsageError
from chain_of_custody.item import ITEMS_DIR_NAME, MANIFEST_NAME, WARC_NAME, load_manifest
from chain_of_custody.regular import open_regular, read_regular_file
from chain_of_custody.verify import is_item_dir
from chain_of_custody.wacz import PAGES_NAME

__all__ = [
    "ASSETS_ENV",
    "Page",
    "ReplayServer",
    "ReplaySource",
    "open_source",
    "replay_assets",
]

ASSETS_ENV = "OSINT_CAPTURE_REPLAYWEBPAGE"
_ASSET_NAMES = ("ui.js", "sw.js")
_CHUNK = 1 << 20
_MAX_PAGES = 16 << 20
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# Only this origin: the replay UI, its service worker and the archive are all served
# here, and a CSP on the worker's script binds the worker's own fetch() calls as well.
_CSP = (
    "default-src 'self' data: blob:; "
    "script-src 'self' 'unsafe-inline' 'unsafe-eval' 'wasm-unsafe-eval' data: blob:; "
    "style-src 'self' 'unsafe-inline' data: blob:; "
    "connect-src 'self' data: blob:; form-action 'self'"
)


@dataclass(frozen=True)
class Page:
    """A page the archive holds: what ReplayWeb.page is asked to show."""

    url: str
    title: str
    ts: str  # ISO 8601 UTC


@dataclass(frozen=True)
class ReplaySource:
    """The one file served as the archive, its name in the URL, and its pages."""

    path: Path
    name: str
    pages: tuple[Page, ...]
    kind: str  # item, bundle or wacz


def replay_assets() -> Path:
    """The folder holding ReplayWeb.page's ui.js and sw.js.

    ``$OSINT_CAPTURE_REPLAYWEBPAGE`` if set, else where ``make install`` puts them
    (``<venv>/share/osint-capture/replaywebpage``). UsageError when they are missing.
    """
    default = Path(sys.prefix) / "share" / "osint-capture" / "replaywebpage"
    folder = Path(os.environ.get(ASSETS_ENV) or default)
    missing = [n for n in _ASSET_NAMES if not (folder / n).is_file()]
    if missing:
        raise UsageError(
            f"ReplayWeb.page is not installed ({', '.join(missing)} missing in {folder})",
            hint=f"run `make install` (scripts/install-replay.sh), or set {ASSETS_ENV}",
        )
    return folder


def _page_of(item: PackageItem) -> Page:
    return Page(url=item.url, title=item.title, ts=item.ts)


def _item_source(folder: Path) -> ReplaySource:
    manifest = load_manifest(read_regular_file(folder / MANIFEST_NAME))
    item = package_item(folder.name, folder, manifest)
    if not (folder / WARC_NAME).is_file():
        raise UsageError(f"{folder} has no {WARC_NAME} to replay")
    return ReplaySource(folder / WARC_NAME, f"{folder.name}.warc.gz", (_page_of(item),), "item")


def _wacz_pages(path: Path) -> tuple[Page, ...]:
    try:
        with zipfile.ZipFile(path) as package:
            info = package.getinfo(PAGES_NAME)
            if info.file_size > _MAX_PAGES:
                raise UsageError(f"{path}: {PAGES_NAME} is too large to read")
            text = package.read(info).decode("utf-8", "replace")
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise UsageError(f"{path} is not a WACZ with {PAGES_NAME} ({exc})") from None
    pages = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError, RecursionError):
            row = json.loads(line)
            if isinstance(row, dict) and isinstance(row.get("url"), str):
                pages.append(
                    Page(row["url"], str(row.get("title") or row["url"]), str(row.get("ts") or ""))
                )
    if not pages:
        raise UsageError(f"{path}: {PAGES_NAME} lists no page to replay")
    return tuple(pages)


def _bundle_items(root: Path) -> list[PackageItem]:
    items = []
    folder = root / ITEMS_DIR_NAME
    for child in sorted(folder.iterdir()) if folder.is_dir() else ():
        if is_item_dir(child) and (child / WARC_NAME).is_file():
            manifest = load_manifest(read_regular_file(child / MANIFEST_NAME))
            items.append(package_item(child.name, child, manifest))
    return items


@contextlib.contextmanager
def open_source(store: EvidenceStore, target: str) -> Iterator[ReplaySource]:
    """What ``target`` names, ready to serve; temporary files are removed afterwards.

    Raises UsageError when it is no item, item folder, bundle or WACZ; IntegrityError when
    a bundle cannot be read safely (as ``verify`` would say).
    """
    path = Path(target)
    if is_item_id(target) and not path.exists():
        _case_id, folder = store.find_item(target)
        yield _item_source(folder)
        return
    if path.suffix.lower() == ".wacz":
        if not path.is_file():
            raise UsageError(f"{path} does not exist")
        yield ReplaySource(path, path.name, _wacz_pages(path), "wacz")
        return
    if path.suffix.lower() == ".zip":
        work = Path(tempfile.mkdtemp(prefix="osint-capture-replay-"))
        try:
            with open_bundle(path) as root:
                items = _bundle_items(root)
                if not items:
                    raise UsageError(f"{path} holds no item with a WARC to replay")
                package = write_replay_package(items, work / "replay.wacz")
            yield ReplaySource(package, f"{path.stem}.wacz", tuple(map(_page_of, items)), "bundle")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    if is_item_dir(path):
        yield _item_source(path)
        return
    if not path.exists():
        raise UsageError(
            f"no item or file named {target!r} (evidence home {store.home})",
            hint="give an item ID, an item folder, a bundle .zip or a .wacz",
        )
    raise UsageError(f"{path} is neither an item folder, a bundle (.zip) nor a WACZ (.wacz)")


def _timestamp(iso: str) -> str:
    return "".join(ch for ch in iso if ch.isdigit())[:14]


def _index_html(source: ReplaySource, page: Page) -> bytes:
    links = "\n".join(
        f'<li><a href="/?url={quote(p.url, safe="")}&amp;ts={_timestamp(p.ts)}">'
        f"{html.escape(p.title)}</a> <code>{html.escape(p.url)}</code> "
        f"<small>{html.escape(p.ts)}</small></li>"
        for p in source.pages
    )
    text = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Replay: {html.escape(page.title)}</title>
<script src="/ui.js"></script>
<style>body{{margin:0;font:14px sans-serif}}header{{padding:6px 12px;background:#eee}}
replay-web-page{{display:block;height:calc(100vh - 9em)}}</style></head>
<body><header><strong>osint-capture replay</strong> of {html.escape(source.name)}
(served from the files alone on this machine; nothing is fetched from the web)
<ul>{links}</ul></header>
<replay-web-page source="/archive/{quote(source.name)}" url="{html.escape(page.url)}"
 ts="{_timestamp(page.ts)}" replayBase="/replay/" embed="replayonly"></replay-web-page>
</body></html>
"""
    return text.encode("utf-8")


class ReplayServer:
    """A small HTTP server on 127.0.0.1: the replay page, ReplayWeb.page, the archive.

    Use as a context manager; :attr:`url` is the address to open. The archive is served
    with ``Range`` support (206 and ``Content-Range``), in 1 MiB pieces.
    """

    def __init__(self, source: ReplaySource, assets: Path, *, port: int = 0) -> None:
        self.source = source
        self.assets = assets
        handler = _handler(self)
        # Loopback only, whatever the caller asks: replay serves evidence to this machine.
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> ReplayServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="replay-server", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _handler(server: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return  # the command prints the address; a line per request is noise

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            parts = urlsplit(self.path)
            route = parts.path
            source = server.source
            if route in ("/", "/index.html"):
                query = parse_qs(parts.query)
                wanted = query.get("url", [""])[0]
                page = next((p for p in source.pages if p.url == wanted), source.pages[0])
                self._bytes(_index_html(source, page), "text/html; charset=utf-8", body)
            elif route in ("/ui.js", "/replay/ui.js"):
                self._file(server.assets / "ui.js", "application/javascript", body)
            elif route == "/replay/sw.js":
                self._file(server.assets / "sw.js", "application/javascript", body)
            elif route == f"/archive/{quote(source.name)}":
                kind = "application/zip" if source.name.endswith(".wacz") else "application/warc"
                self._file(source.path, kind, body)
            else:
                self._bytes(b"not in this replay\n", "text/plain", body, HTTPStatus.NOT_FOUND)

        def _headers(self, status: int, kind: str, length: int) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(length))
            self.send_header("Content-Security-Policy", _CSP)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Accept-Ranges", "bytes")

        def _bytes(self, data: bytes, kind: str, body: bool, status: int = HTTPStatus.OK) -> None:
            self._headers(status, kind, len(data))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def _file(self, path: Path, kind: str, body: bool) -> None:
            with open_regular(path) as handle:
                size = os.fstat(handle.fileno()).st_size
                start, end = 0, size - 1
                status = HTTPStatus.OK
                wanted = self.headers.get("Range")
                if wanted:
                    span = _span(wanted, size)
                    if span is None:
                        self._headers(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, kind, 0)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.end_headers()
                        return
                    start, end = span
                    status = HTTPStatus.PARTIAL_CONTENT
                length = max(0, end - start + 1)
                self._headers(status, kind, length)
                if status == HTTPStatus.PARTIAL_CONTENT:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                if path.name == "sw.js":
                    self.send_header("Service-Worker-Allowed", "/replay/")
                self.end_headers()
                if not body:
                    return
                handle.seek(start)
                left = length
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    while left > 0 and (chunk := handle.read(min(_CHUNK, left))):
                        self.wfile.write(chunk)
                        left -= len(chunk)

    return Handler


def _span(header: str, size: int) -> tuple[int, int] | None:
    """The byte range ``bytes=a-b`` asks for, clipped to the file; None if unsatisfiable."""
    match = _RANGE.fullmatch(header.strip())
    if match is None or size == 0:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return None
    return start, end
