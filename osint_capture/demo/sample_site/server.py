"""The bundled sample post site: a deterministic stand-in for a social network.

``osint-capture demo`` captures its sample post, and the browser tests use it as the
only site real Chromium ever loads. Every page, image, font and API answer is made
here or read from ``static/``; nothing refers to another host, so a capture of it
sends no traffic beyond the loopback address it listens on.

Besides the sample post (``/post/1``) it serves the awkward cases a capture engine
has to survive: redirect chains and loops, gzip and chunked bodies, a large
download, a request that never completes, an image that trickles for ten minutes,
login walls, CAPTCHA interstitials, rate limiting, robots rules, empty and broken
responses. ``INDEX_LINKS`` lists them; ``/`` links them all.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import html
import json
import socket
import ssl
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from socketserver import TCPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "CHUNKED_SENTENCE",
    "COMMENTS_PER_PAGE",
    "COMMENT_PAGES",
    "DEFAULT_MEDIA_MIB",
    "GZIP_SENTENCE",
    "INDEX_LINKS",
    "MAX_MEDIA_MIB",
    "POST_ARABIC",
    "POST_AUTHOR",
    "POST_HEADLINE",
    "POST_PUBLISHED",
    "POST_TEXT",
    "ROBOTS_TXT",
    "SampleSite",
    "expected_media_sha256",
]

# --------------------------------------------------------------------------- content

POST_AUTHOR = "Dana Whitfield"
POST_HANDLE = "@danawhitfield"
POST_PUBLISHED = "2026-03-14T09:26:53Z"
POST_HEADLINE = "MISSING: Jordan Avery, 16, last seen near Pine St station"
POST_ARABIC = "مفقود منذ يوم الجمعة"
POST_TEXT = (
    f"🚨 {POST_HEADLINE} on Friday evening (13 March) wearing a grey hoodie and red trainers.\n"
    f"{POST_ARABIC} — يرجى المشاركة والاتصال بالشرطة\n"
    "If you have seen Jordan please call the police non-emergency line on 555-0142. "
    "Please share 🙏 #FindJordan"
)
COMMENTS_PER_PAGE = 8
COMMENT_PAGES = 5
GZIP_SENTENCE = "This article was served gzip-compressed."
CHUNKED_SENTENCE = "This article was served with chunked transfer encoding."
ROBOTS_TXT = "User-agent: *\nDisallow: /private/\nDisallow: /nocrawl/\n"
DEFAULT_MEDIA_MIB = 160
# Far above any test's needs, low enough that a typo cannot ask for a day's download.
MAX_MEDIA_MIB = 4096

# Long enough to outlast any capture timeout; short enough that a forgotten server
# does not keep a thread busy for ever.
_HOLD_CAP_SECONDS = 600.0
_TRICKLE_INTERVAL = 0.5
_TRICKLE_STEP = 4
_MIB = 1 << 20
_MEDIA_SEED = b"osint-capture sample site media v1"
_MAX_FORM_BYTES = 64 * 1024

_HTML = "text/html; charset=utf-8"
_JSON = "application/json; charset=utf-8"
_JS = "text/javascript; charset=utf-8"

_COMMENT_AUTHORS = (
    "Priya Natarajan",
    "Marcus Bell",
    "Leila Haddad",
    "Tom O'Connor",
    "Sofia Reyes",
    "Kwame Mensah",
    "Hannah Li",
    "Yusuf Karim",
)
_COMMENT_PHRASES = (
    "Shared. Praying he comes home safe 🙏",
    "Saw a teen in a grey hoodie near the bus depot around 7pm Friday, reported it.",
    "Sharing to the Pine St neighbourhood group.",
    "شاركت المنشور، نتمنى عودته سالماً",
    "Is there a newer photo? The one going round is from last year.",
    "Please call the police line rather than messaging the family directly.",
    "Checked my shop camera on Pine St, nothing after 6pm sadly.",
    "Boosting. Everyone on the east side please keep an eye out.",
    "Any update? Hoping for good news.",
    "Please only share the official information, not the rumours.",
)

INDEX_LINKS: tuple[tuple[str, str], ...] = (
    ("/post/1", "The sample post (JS-rendered text, lazy images, infinite-scroll comments)"),
    ("/post/1/media?mib=4", "Post whose script downloads a large media body (?mib=N)"),
    ("/redirect/start", "301 then 302 redirect chain ending at the sample post"),
    ("/redirect/loop", "Endless 302 redirect loop"),
    ("/redirect/credentials", "302 to the sample post at an address with user:password@"),
    ("/gzip/article", "Article served with Content-Encoding: gzip"),
    ("/chunked/article", "Article served with Transfer-Encoding: chunked"),
    ("/slow/longpoll", "Page holding a request that never completes"),
    ("/slow/trickle", "Page whose image trickles in for ten minutes"),
    ("/login", "Sign-in form"),
    ("/private/feed", "Redirects to the sign-in form"),
    ("/auth/basic", "401 with a Basic authentication challenge"),
    ("/auth/proxy", "407 Proxy Authentication Required"),
    ("/challenge/recaptcha", "reCAPTCHA interstitial"),
    ("/challenge/hcaptcha", "hCaptcha interstitial"),
    ("/challenge/turnstile", "Cloudflare Turnstile interstitial"),
    ("/challenge/human", "Cloudflare-style 'verify you are human' page"),
    ("/ratelimit/always", "429 Too Many Requests, every time"),
    ("/ratelimit/once", "429 on the first request, then the sample post"),
    ("/robots.txt", "robots.txt disallowing /private/ and /nocrawl/"),
    ("/nocrawl/post", "Public page that robots.txt disallows"),
    ("/noindex", "Page marked noindex, nofollow"),
    ("/empty", "204 No Content"),
    ("/broken", "Connection closed without a response"),
    ("/user/dana", "Author profile"),
    ("/returning-visitor", "Sets a cookie and localStorage; says whether either came back"),
    ("/robust/deleted", "A deleted post: 404 with an empty body"),
    ("/robust/attachment", "A file served with Content-Disposition: attachment"),
    ("/robust/attachment?inline=1", "The same CSV without Content-Disposition (still downloaded)"),
    ("/robust/document.pdf", "A direct link to a PDF"),
    ("/robust/drip?seconds=25", "An article whose HTML drips in for N seconds"),
    ("/robust/endless", "A document that never ends (?kind=bin: bytes)"),
    ("/robust/endless-resource", "A page whose script fetches a body that never ends"),
    ("/robust/okay-status", "A page answered with the status line 200 Ökay"),
    ("/robust/metadata?depth=5000", "JSON-LD nested N deep (?override=json|attr: built-ins)"),
    ("/robust/huge-dom?n=200000", "A page of N elements"),
    ("/robust/alert-loop", "A page calling alert() every 20 ms"),
    ("/robust/moves?how=script", "Moves itself to /robust/arrived (?how=meta: 0 s refresh)"),
    ("/robust/late", "Fetches part of its text 300 ms after its load event"),
    ("/robust/animated", "A box fading red to green over 10 minutes, a square blinking forever"),
    ("/robust/out-of-memory", "Makes the browser's renderer run out of memory and crash"),
    ("/robust/stuck", "Hangs the browser once drawn (?page=sign-in: a sign-in page that does)"),
    ("/robust/unparsed", "Its head waits for a script that never comes (?page=sign-in)"),
)

_Query = dict[str, list[str]]

DRIP_FIRST = "The first paragraph of the slow article arrived at once."
DRIP_LAST = "The last paragraph of the slow article arrived at the end."
ENDLESS_RESOURCE_TEXT = "This page's script fetches a body that never ends."
HOSTILE_TITLE = "A post with hostile metadata"
HUGE_DOM_TEXT = "A page of very many elements."
ALERT_LOOP_TEXT = "A page that calls alert() over and over."
ARRIVED_TEXT = "The page the browser was moved on to."
LATE_TEXT = "A comment the page fetched a moment after it loaded."
CRASH_TEXT = "A page that makes the browser's renderer run out of memory."
STUCK_TEXT = "This public article's script hangs the browser as it loads. "
UNPARSED_TEXT = "This public article waits in its head for a script that never comes. "
# A one-page PDF saying "A direct PDF link" (test data, not a report).
_MINIMAL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 144]/Contents 4 0 R"
    b"/Resources<</Font<</F1 5 0 R>>>>>>endobj\n"
    b"4 0 obj<</Length 44>>stream\nBT /F1 18 Tf 20 70 Td (A direct PDF link) Tj ET\n"
    b"endstream endobj\n5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def _published(minutes_after_post: int) -> str:
    base = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)
    return (base + timedelta(minutes=minutes_after_post)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _comment(number: int) -> dict[str, Any]:
    return {
        "id": number,
        "author": _COMMENT_AUTHORS[(number - 1) % len(_COMMENT_AUTHORS)],
        "published": _published(3 + 7 * number),
        "text": f"Comment {number}: {_COMMENT_PHRASES[(number - 1) % len(_COMMENT_PHRASES)]}",
    }


def _comments_page(page: int) -> dict[str, Any]:
    if 1 <= page <= COMMENT_PAGES:
        first = (page - 1) * COMMENTS_PER_PAGE + 1
        comments = [_comment(n) for n in range(first, first + COMMENTS_PER_PAGE)]
    else:
        comments = []
    return {
        "page": page,
        "per_page": COMMENTS_PER_PAGE,
        "comments": comments,
        "next_page": page + 1 if comments else None,
    }


def _post_json(base_url: str) -> dict[str, Any]:
    return {
        "id": 1,
        "url": f"{base_url}/post/1",
        "author": {
            "name": POST_AUTHOR,
            "handle": POST_HANDLE,
            "avatar": f"{base_url}/img/avatar.png",
            "verified": True,
        },
        "published": POST_PUBLISHED,
        "languages": ["en", "ar"],
        "text": POST_TEXT,
        "media": [
            {"type": "image", "url": f"{base_url}/img/photo-960.png", "width": 960, "height": 640}
        ],
        "stats": {
            "likes": 1204,
            "shares": 3311,
            "comments": COMMENT_PAGES * COMMENTS_PER_PAGE,
        },
    }


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8")


# ---------------------------------------------------------------------------- images


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png(width: int, height: int, block: int, seed: str, *, level: int = 9) -> bytes:
    """A checkerboard RGB PNG whose two colours are derived from ``seed``."""
    digest = hashlib.sha256(seed.encode()).digest()
    dark = bytes(digest[:3])
    light = bytes((c + 255) // 2 for c in dark)
    pair = dark * block + light * block
    line = (pair * (width // (2 * block) + 1))[: width * 3]
    flipped = (light * block + dark * block) * (width // (2 * block) + 1)
    rows = (b"\x00" + line, b"\x00" + flipped[: width * 3])
    raw = b"".join(rows[(y // block) % 2] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw, level))
        + _png_chunk(b"IEND", b"")
    )


# path -> (width, height, checker block size)
_IMAGES: dict[str, tuple[int, int, int]] = {
    "/img/avatar.png": (96, 96, 12),
    "/img/photo-480.png": (480, 320, 40),
    "/img/photo-960.png": (960, 640, 80),
    "/img/lazy-1.png": (320, 200, 20),
    "/img/lazy-2.png": (320, 200, 20),
    "/img/lazy-3.png": (320, 200, 20),
    "/img/lazy-4.png": (320, 200, 20),
    "/favicon.ico": (16, 16, 4),
}


@cache
def _image_bytes(path: str) -> bytes:
    width, height, block = _IMAGES[path]
    return _png(width, height, block, path)


@cache
def _trickle_png() -> bytes:
    # Stored (level 0) so the file is ~7 KB: at 4 bytes per half second it would
    # take longer than the ten-minute cap, which then sends the rest at once and
    # the client still ends up with a valid image.
    return _png(48, 48, 6, "/img/trickle.png", level=0)


# ------------------------------------------------------------------------------ font
# A real, tiny TrueType font wrapped as WOFF2, so Chromium's font sanitiser accepts
# it and the icon actually renders. The stdlib has no Brotli encoder, but a Brotli
# stream made of uncompressed meta-blocks is valid, and WOFF2 allows untransformed
# glyf/loca, so no compression code is needed.

_Contour = list[tuple[int, int]]
# WOFF2's table index (section 5.1), only as far as this font needs.
_WOFF2_KNOWN_TAGS = (
    b"cmap", b"head", b"hhea", b"hmtx", b"maxp", b"name", b"OS/2", b"post",
    b"cvt ", b"fpgm", b"glyf", b"loca", b"prep",
)  # fmt: skip
# 2026-03-14T00:00:00Z in the sfnt epoch (1904), so the font bytes never change.
_FONT_DATE = int(
    (datetime(2026, 3, 14, tzinfo=UTC) - datetime(1904, 1, 1, tzinfo=UTC)).total_seconds()
)


def _signed_area(points: _Contour) -> int:
    return sum(
        x0 * y1 - x1 * y0
        for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True)
    )


def _orient(points: _Contour, *, outer: bool) -> _Contour:
    # TrueType fills clockwise outer contours; counters run the other way.
    clockwise = _signed_area(points) < 0
    return points if clockwise == outer else points[::-1]


def _glyph(contours: list[_Contour]) -> bytes:
    if not contours:
        return b""
    points = [p for contour in contours for p in contour]
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    ends: list[int] = []
    for contour in contours:
        ends.append((ends[-1] if ends else -1) + len(contour))
    out = struct.pack(">hhhhh", len(contours), min(xs), min(ys), max(xs), max(ys))
    out += struct.pack(f">{len(ends)}H", *ends) + struct.pack(">H", 0)  # no instructions
    out += b"\x01" * len(points)  # on-curve, 16-bit deltas
    for coords in (xs, ys):
        previous = 0
        for value in coords:
            out += struct.pack(">h", value - previous)
            previous = value
    return out + b"\x00" * (len(out) % 2)  # short loca needs even offsets


def _name_table(names: dict[int, str]) -> bytes:
    records = b""
    strings = b""
    for name_id in sorted(names):
        encoded = names[name_id].encode("utf-16-be")
        records += struct.pack(">HHHHHH", 3, 1, 0x409, name_id, len(encoded), len(strings))
        strings += encoded
    return struct.pack(">HHH", 0, len(names), 6 + len(records)) + records + strings


def _cmap_table(mapping: dict[int, int]) -> bytes:
    # Format 4, one segment per code point plus the mandatory 0xFFFF terminator.
    segments = [(code, code, (gid - code) & 0xFFFF) for code, gid in sorted(mapping.items())]
    segments.append((0xFFFF, 0xFFFF, 1))
    count = len(segments)
    search = 2 * (1 << (count.bit_length() - 1))
    selector = count.bit_length() - 1
    body = struct.pack(f">{count}H", *(end for _, end, _ in segments)) + b"\x00\x00"
    body += struct.pack(f">{count}H", *(start for start, _, _ in segments))
    body += struct.pack(f">{count}H", *(delta for _, _, delta in segments))
    body += struct.pack(f">{count}H", *([0] * count))
    subtable = (
        struct.pack(
            ">HHHHHHH", 4, 14 + len(body), 0, 2 * count, search, selector, 2 * count - search
        )
        + body
    )
    return struct.pack(">HHHHI", 0, 1, 3, 1, 12) + subtable


def _font_tables() -> dict[bytes, bytes]:
    notdef = [
        _orient([(50, 0), (50, 700), (450, 700), (450, 0)], outer=True),
        _orient([(100, 50), (400, 50), (400, 650), (100, 650)], outer=False),
    ]
    octagon = [(50, 205), (50, 495), (255, 700), (545, 700), (750, 495), (750, 205), (545, 0),
               (255, 0)]  # fmt: skip
    tick = [(210, 370), (340, 240), (590, 490), (530, 550), (340, 360), (270, 430)]
    # A "verified" octagon with a tick cut out of it.
    badge = [_orient(octagon, outer=True), _orient(tick, outer=False)]
    outlines: list[list[_Contour]] = [notdef, [], badge]
    advances = [500, 250, 800]
    glyphs = [_glyph(c) for c in outlines]
    offsets = [0]
    for g in glyphs:
        offsets.append(offsets[-1] + len(g))
    boxes = [
        (
            min(x for c in cs for x, _ in c),
            min(y for c in cs for _, y in c),
            max(x for c in cs for x, _ in c),
            max(y for c in cs for _, y in c),
        )
        for cs in outlines
        if cs
    ]
    lsbs = [min((x for c in cs for x, _ in c), default=0) for cs in outlines]
    extents = [lsb + (b[2] - b[0]) for lsb, b in zip([lsbs[0], lsbs[2]], boxes, strict=True)]
    rsbs = [advances[i] - ext for i, ext in zip((0, 2), extents, strict=True)]
    x_min = min(b[0] for b in boxes)
    y_min = min(b[1] for b in boxes)
    x_max = max(b[2] for b in boxes)
    y_max = max(b[3] for b in boxes)
    num_glyphs = len(glyphs)
    max_points = max(sum(len(c) for c in cs) for cs in outlines)
    max_contours = max(len(cs) for cs in outlines)

    # fmt: off
    head = struct.pack(
        ">HHiIIHHqqhhhhHHhhh",
        1, 0, 0x00010000,             # version 1.0, fontRevision 1.0
        0, 0x5F0F3CF5,                # checkSumAdjustment (set later), magic
        0b1011, 1000,                 # flags: baseline y=0, lsb x=0, integer ppem; unitsPerEm
        _FONT_DATE, _FONT_DATE,       # created, modified
        x_min, y_min, x_max, y_max,
        0, 8, 2,                      # macStyle, lowestRecPPEM, fontDirectionHint
        0, 0,                         # indexToLocFormat short, glyphDataFormat
    )
    hhea = struct.pack(
        ">HHhhhHhhhhhhhhhhhH",
        1, 0, 800, -200, 0,           # version 1.0, ascender, descender, lineGap
        max(advances), min(lsbs[0], lsbs[2]), min(rsbs), max(extents),
        1, 0, 0,                      # caret: upright
        0, 0, 0, 0, 0,                # reserved, metricDataFormat
        num_glyphs,                   # numberOfHMetrics
    )
    maxp = struct.pack(
        ">IHHHHHHHHHHHHHH",
        0x00010000, num_glyphs, max_points, max_contours,
        0, 0, 2,                      # no composites; maxZones
        0, 0, 0, 0, 0, 0, 0, 0,       # no hinting programs, no components
    )
    os2 = struct.pack(
        ">HhHHHhhhhhhhhhhh10sIIII4sHHHhhhHHIIhhHHH",
        4, sum(advances) // len(advances), 400, 5, 0,   # version 4, avg width, regular, normal
        650, 600, 0, 75, 650, 600, 0, 350,              # subscript, superscript
        50, 300, 0,                                     # strikeout, family class
        b"\x00" * 10,                                   # PANOSE
        1, 1 << 28, 0, 0,                               # Basic Latin; Private Use Area
        b"OSCP",                                        # vendor
        0x00C0, 0x0020, 0xE000,                         # REGULAR|USE_TYPO_METRICS, first, last
        800, -200, 0, 800, 200,                         # typo and win metrics
        1, 0,                                           # code pages: Latin 1
        500, 700, 0, 0x20, 0,                           # x/cap height, default, break, context
    )
    # fmt: on
    post = struct.pack(">IiHhIIIII", 0x00030000, 0, 0xFF9C, 50, 0, 0, 0, 0, 0)
    hmtx = b"".join(struct.pack(">Hh", a, lsb) for a, lsb in zip(advances, lsbs, strict=True))
    loca = struct.pack(f">{len(offsets)}H", *(o // 2 for o in offsets))
    name = _name_table(
        {
            1: "Sample Icons",
            2: "Regular",
            3: "Sample Icons Regular 1.000",
            4: "Sample Icons",
            5: "Version 1.000",
            6: "SampleIcons-Regular",
        }
    )
    return {
        b"OS/2": os2,
        b"cmap": _cmap_table({0x20: 1, 0xE000: 2}),
        b"glyf": b"".join(glyphs),
        b"head": head,
        b"hhea": hhea,
        b"hmtx": hmtx,
        b"loca": loca,
        b"maxp": maxp,
        b"name": name,
        b"post": post,
    }


def _checksum(data: bytes) -> int:
    padded = data + b"\x00" * (-len(data) % 4)
    words: tuple[int, ...] = struct.unpack(f">{len(padded) // 4}I", padded)
    return sum(words) & 0xFFFFFFFF


def _sfnt(tables: dict[bytes, bytes]) -> bytes:
    tags = sorted(tables)
    count = len(tags)
    selector = count.bit_length() - 1
    search = 16 * (1 << selector)
    out = struct.pack(">IHHHH", 0x00010000, count, search, selector, 16 * count - search)
    offset = 12 + 16 * count
    body = b""
    for tag in tags:
        data = tables[tag]
        # head's own checksum is taken with checkSumAdjustment zeroed.
        summed = data[:8] + b"\x00" * 4 + data[12:] if tag == b"head" else data
        out += struct.pack(">4sIII", tag, _checksum(summed), offset, len(data))
        padded = data + b"\x00" * (-len(data) % 4)
        body += padded
        offset += len(padded)
    return out + body


def _base128(value: int) -> bytes:
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(groups))


def _brotli_stored(data: bytes) -> bytes:
    """A valid Brotli stream of uncompressed meta-blocks (RFC 7932 section 9.2)."""
    out = b""
    first = True
    for start in range(0, len(data), 1 << 16):
        block = data[start : start + (1 << 16)]
        # ISLAST=0, MNIBBLES=4 (00), MLEN-1 in 16 bits, ISUNCOMPRESSED=1; the first
        # block is preceded by a single 0 bit meaning WBITS=16.
        bits = ((len(block) - 1) << 3) | (1 << 19)
        if first:
            bits <<= 1
        out += (bits).to_bytes(3, "little") + block
        first = False
    # ISLAST=1, ISLASTEMPTY=1 (after the WBITS bit when there was no data at all).
    return out + (b"\x03" if not first else b"\x06")


@cache
def _font_woff2() -> bytes:
    tables = _font_tables()
    adjustment = (0xB1B0AFBA - _checksum(_sfnt(tables))) & 0xFFFFFFFF
    head = tables[b"head"]
    tables[b"head"] = head[:8] + struct.pack(">I", adjustment) + head[12:]
    sfnt_size = len(_sfnt(tables))
    tags = sorted(tables)
    directory = b""
    for tag in tags:
        # Transform version 3 is the null transform for glyf/loca; 0 for the rest.
        version = 3 if tag in (b"glyf", b"loca") else 0
        directory += bytes([_WOFF2_KNOWN_TAGS.index(tag) | version << 6])
        directory += _base128(len(tables[tag]))
    compressed = _brotli_stored(b"".join(tables[tag] for tag in tags))
    unpadded = 48 + len(directory) + len(compressed)
    total = unpadded + (-unpadded % 4)
    # fmt: off
    header = struct.pack(
        ">4sIIHHIIHHIIIII",
        b"wOF2", 0x00010000, total, len(tags), 0,   # signature, flavor, length, numTables
        sfnt_size, len(compressed), 1, 0,           # totalSfntSize, compressed size, version
        0, 0, 0, 0, 0,                              # no metadata, no private block
    )
    # fmt: on
    return header + directory + compressed + b"\x00" * (total - unpadded)


# ----------------------------------------------------------------------------- media


def _media_chunks(mib: int) -> Iterator[bytes]:
    # SHAKE-256 per chunk: fast in C, stable across Python versions and platforms.
    for index in range(mib):
        yield hashlib.shake_256(_MEDIA_SEED + index.to_bytes(8, "big")).digest(_MIB)


def expected_media_sha256(mib: int) -> str:
    """SHA-256 (hex) of the body ``/media/big.bin?mib=N`` serves, computed streaming."""
    if not 0 <= mib <= MAX_MEDIA_MIB:
        raise ValueError(f"mib must be between 0 and {MAX_MEDIA_MIB}")
    digest = hashlib.sha256()
    for chunk in _media_chunks(mib):
        digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- pages


def _e(value: str) -> str:
    return html.escape(value, quote=True)


def _page(
    title: str,
    body: str,
    *,
    head: str = "",
    header: bool = True,
    body_attrs: str = "",
    head_first: str = "",
) -> bytes:
    top = (
        '<header class="site-header"><a href="/" style="color:inherit;text-decoration:none">'
        'Sample Social</a><nav><a href="/post/1">Post</a> · <a href="/login">Sign in</a>'
        "</nav></header>\n"
        if header
        else ""
    )
    return (
        "<!doctype html>\n"
        f'<html lang="en">\n<head>\n<meta charset="utf-8">\n{head_first}'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n"
        '<link rel="stylesheet" href="/static/style.css">\n'
        f"{head}</head>\n<body{body_attrs}>\n{top}<main>\n{body}\n</main>\n</body>\n</html>\n"
    ).encode()


def _render_post(base_url: str) -> bytes:
    post_url = f"{base_url}/post/1"
    title = f"{POST_AUTHOR} on Sample Social: “{POST_HEADLINE}”"
    ld = {
        "@context": "https://schema.org",
        "@type": "SocialMediaPosting",
        "@id": post_url,
        "url": post_url,
        "headline": POST_HEADLINE,
        "datePublished": POST_PUBLISHED,
        "inLanguage": ["en", "ar"],
        "image": f"{base_url}/img/photo-960.png",
        "author": {
            "@type": "Person",
            "name": POST_AUTHOR,
            "alternateName": POST_HANDLE,
            "url": f"{base_url}/user/dana",
        },
        # Real posts carry decimal numbers (places, ratings): the manifest must cope.
        "contentLocation": {
            "@type": "Place",
            "name": "Pine St station",
            "geo": {"@type": "GeoCoordinates", "latitude": 31.3271, "longitude": -89.2903},
        },
        "interactionStatistic": [
            {
                "@type": "InteractionCounter",
                "interactionType": "https://schema.org/LikeAction",
                "userInteractionCount": 1204,
            },
            {
                "@type": "InteractionCounter",
                "interactionType": "https://schema.org/ShareAction",
                "userInteractionCount": 3311,
            },
        ],
    }
    # "</" inside the JSON would end the script element early.
    ld_text = json.dumps(ld, ensure_ascii=False, indent=2).replace("</", "<\\/")
    head = (
        f'<meta name="description" content="Post by {_e(POST_AUTHOR)} on Sample Social">\n'
        '<meta name="robots" content="noarchive">\n'
        f'<link rel="canonical" href="{_e(post_url)}">\n'
        '<meta property="og:site_name" content="Sample Social">\n'
        f'<meta property="og:title" content="{_e(POST_HEADLINE)}">\n'
        '<meta property="og:type" content="article">\n'
        f'<meta property="og:url" content="{_e(post_url)}">\n'
        f'<meta property="og:image" content="{_e(base_url)}/img/photo-960.png">\n'
        f'<meta property="article:author" content="{_e(POST_AUTHOR)}">\n'
        f'<meta property="article:published_time" content="{POST_PUBLISHED}">\n'
        '<meta name="twitter:card" content="summary_large_image">\n'
        f'<script type="application/ld+json">\n{ld_text}\n</script>\n'
        '<script src="/static/app.js" defer></script>\n'
    )
    lazy = "\n".join(
        f'  <img src="/img/lazy-{n}.png" loading="lazy" width="320" height="200" '
        f'alt="Related photo {n}">'
        for n in range(1, 5)
    )
    body = f"""<article class="post" id="post-1">
  <header class="post-author">
    <img class="avatar" src="/img/avatar.png" width="48" height="48" alt="{_e(POST_AUTHOR)}">
    <div>
      <a class="author-name" href="/user/dana" rel="author">{_e(POST_AUTHOR)}</a><span
        class="badge" title="Verified account"></span>
      <div><span class="handle">{_e(POST_HANDLE)}</span> ·
        <time datetime="{POST_PUBLISHED}">14 Mar 2026, 09:26 UTC</time></div>
    </div>
  </header>
  <div class="post-body" id="post-body" aria-live="polite">
    <p class="loading">Loading post…</p>
  </div>
  <figure class="post-photo">
    <img src="/img/photo-480.png"
      srcset="/img/photo-480.png 480w, /img/photo-960.png 960w"
      sizes="(max-width: 600px) 100vw, 480px" width="480" height="320"
      alt="Photo of Jordan Avery shared by the family">
    <figcaption>Photo shared by the family</figcaption>
  </figure>
  <footer class="post-stats"><span>1,204 likes</span><span>3,311 shares</span>
    <span>{COMMENT_PAGES * COMMENTS_PER_PAGE} comments</span></footer>
</article>
<div class="spacer" aria-hidden="true">More from Sample Social</div>
<section class="related" aria-label="Related posts">
{lazy}
</section>
<section class="card" id="comments" aria-label="Comments">
  <h2>Comments</h2>
  <ol id="comment-list"></ol>
  <div id="comments-status">Scroll to load comments</div>
</section>"""
    return _page(title, body, head=head, body_attrs=' data-post-id="1"')


def _render_media(mib: int) -> bytes:
    url = f"/media/big.bin?mib={mib}"
    body = (
        '<article class="post">\n<h1>Video post</h1>\n'
        f'<p id="media-status" data-media-url="{_e(url)}" data-mib="{mib}">'
        "Loading media…</p>\n"
        f'<p>Attachment: <a href="{_e(url)}">big.bin</a> ({mib} MiB)</p>\n</article>'
    )
    return _page("Media post", body, head='<script src="/static/media.js" defer></script>\n')


def _render_gzip_article() -> bytes:
    body = f"""<article class="post">
<h1>Compressed article</h1>
<p id="gzip-sentence">{GZIP_SENTENCE}</p>
<p id="gzip-data">Loading data…</p>
</article>
<script>
fetch("/gzip/data.json")
  .then((r) => r.json())
  .then((d) => {{ document.getElementById("gzip-data").textContent = d.note; }})
  .catch((e) => {{ document.getElementById("gzip-data").textContent = "Failed: " + e; }});
</script>"""
    return _page("Compressed article", body)


_GZIP_DATA = {
    "source": "gzip",
    "note": "This JSON was served gzip-compressed.",
    "items": [1, 2, 3],
}


def _chunked_parts() -> list[bytes]:
    page = _page(
        "Chunked article",
        '<article class="post">\n<h1>Chunked article</h1>\n'
        f'<p id="chunked-sentence">{CHUNKED_SENTENCE}</p>\n'
        + "\n".join(f"<p>Paragraph {n} of the chunked article.</p>" for n in range(1, 7))
        + "\n</article>",
    )
    # Fixed cut points so the chunk boundaries are the same on every run.
    size = -(-len(page) // 5)
    return [page[i : i + size] for i in range(0, len(page), size)]


def _index_page() -> bytes:
    items = "\n".join(
        f'<li><a href="{_e(path)}"><code>{_e(path)}</code></a> — {_e(text)}</li>'
        for path, text in INDEX_LINKS
    )
    body = (
        '<section class="card">\n<h1>Sample Social</h1>\n'
        "<p>A local fixture site for osint-capture. Every page is served from this machine.</p>\n"
        f'<ul class="endpoints">\n{items}\n</ul>\n</section>'
    )
    return _page("Sample Social", body)


def _login_page(next_path: str, *, failed: bool) -> bytes:
    error = '<p class="error" role="alert">Incorrect username or password.</p>\n' if failed else ""
    body = (
        '<section class="card">\n<h1>Sign in to Sample Social</h1>\n'
        f"{error}"
        '<form class="login" method="post" action="/login">\n'
        f'<input type="hidden" name="next" value="{_e(next_path)}">\n'
        '<label>Username <input name="username" autocomplete="username" required></label>\n'
        '<label>Password <input type="password" name="password" '
        'autocomplete="current-password" required></label>\n'
        '<button type="submit">Sign in</button>\n</form>\n</section>'
    )
    return _page("Sign in · Sample Social", body)


def _captcha_page(kind: str) -> bytes:
    div_class, script, name = {
        "recaptcha": ("g-recaptcha", "/recaptcha/api.js", "reCAPTCHA"),
        "hcaptcha": ("h-captcha", "/hcaptcha/1/api.js", "hCaptcha"),
        "turnstile": ("cf-turnstile", "/turnstile/v0/api.js", "Turnstile"),
    }[kind]
    # Only the provider's own marker (class and loader script), so each page tests
    # one detector rather than several at once.
    body = (
        '<section class="card challenge">\n<h1>One more step</h1>\n'
        f"<p>Please tick the box below ({name}) to continue to Sample Social.</p>\n"
        f'<form method="post" action="/challenge/{kind}">\n'
        f'<div class="{div_class}" data-sitekey="test"></div>\n</form>\n</section>'
    )
    return _page(
        "Security check · Sample Social",
        body,
        head=f'<script src="{script}" async defer></script>\n',
    )


def _human_page() -> bytes:
    # Cloudflare's wording and stage id, but no CAPTCHA widget: the text is the signal.
    body = (
        '<section class="challenge" id="challenge-stage">\n'
        "<h1>Checking your browser before accessing Sample Social</h1>\n"
        "<p>Verify you are human. This may take a few seconds.</p>\n"
        "<p>This process is automatic. Your browser will redirect to your requested "
        "content shortly.</p>\n</section>"
    )
    return _page("Just a moment... Checking your browser", body, header=False)


def _sign_in_card(*, username: bool = False) -> str:
    """The sign-in form of the robustness pages (the login page proper is ``/login``)."""
    user = '<label>Username <input name="username"></label>\n' if username else ""
    return (
        '<section class="card">\n<h1>Sign in to Sample Social</h1>\n'
        f'<form class="login" method="post" action="/login">\n{user}'
        '<label>Password <input type="password" name="password"></label>\n'
        '<button type="submit">Sign in</button>\n</form>\n</section>\n'
    )


def _simple_page(
    title: str, text: str, *, head: str = "", extra: str = "", head_first: str = ""
) -> bytes:
    return _page(
        title,
        f'<article class="post">\n<h1>{_e(title)}</h1>\n<p>{_e(text)}</p>\n{extra}</article>',
        head=head,
        head_first=head_first,
    )


def _status_page(status: HTTPStatus, text: str) -> bytes:
    return _simple_page(f"{status.value} {status.phrase}", text)


# --------------------------------------------------------------------------- serving


class _RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[tuple[str, str]] = []
        self._errors: list[str] = []

    def add(self, method: str, path: str) -> None:
        with self._lock:
            self._entries.append((method, path))

    def entries(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._entries)

    def add_error(self, text: str) -> None:
        with self._lock:
            self._errors.append(text)

    def errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        tls: ssl.SSLContext | None,
        log: _RequestLog,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.tls = tls
        self.log = log
        self.stopping = threading.Event()
        self.base_url = ""
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._rate_limited_once = False
        self.robots: tuple[int, bytes] | None = None
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup: slow, and
        # traffic this fixture must never send.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    def drop_connections(self) -> None:
        """Shut every open connection so idle keep-alive and streaming threads end."""
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            # OSError: already closed by the client or the handler.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def first_rate_limit(self) -> bool:
        with self._lock:
            first = not self._rate_limited_once
            self._rate_limited_once = True
            return first

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-body (and stop() cutting streams) are normal
        # here; anything else is kept for tests instead of printed to stderr.
        error = sys.exc_info()[1]
        if isinstance(error, OSError) or error is None:
            return
        self.log.add_error(f"{type(error).__name__}: {error}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SampleSocial/1.0"
    # Trickled bytes and chunks must leave at once, not wait on Nagle.
    disable_nagle_algorithm = True
    server: _Server

    # ------------------------------------------------------------------ plumbing

    def setup(self) -> None:
        tls = self.server.tls
        if tls is not None:
            # Handshake here, in the connection's own thread, so a stalled client
            # cannot block the accept loop.
            self.request.settimeout(10)
            self.request = tls.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
        self.server.track(self.request)
        if self.server.stopping.is_set():
            # Accepted just as stop() swept the open connections: end it here too.
            with contextlib.suppress(OSError):
                self.request.shutdown(socket.SHUT_RDWR)
        super().setup()

    def finish(self) -> None:
        self.server.untrack(self.request)
        # OSError: the peer or stop() already closed the socket.
        with contextlib.suppress(OSError):
            super().finish()
        if self.server.tls is not None:
            # The server only closes the plain socket it accepted, which wrapping
            # detached; the TLS socket is ours to close.
            with contextlib.suppress(OSError):
                self.request.shutdown(socket.SHUT_WR)
            self.request.close()

    def version_string(self) -> str:
        # Without the Python version, so headers do not change with the interpreter.
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: tests and the demo read the request log instead

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        self.server.log.add(self.command, self.path)
        parts = urlsplit(self.path)
        route = _ROUTES.get(parts.path, _Handler._not_found)
        if self.command == "POST" and route not in _POST_ROUTES:
            # The body is unread; closing is simpler than draining it.
            self.close_connection = True
            self._send(
                HTTPStatus.METHOD_NOT_ALLOWED,
                _status_page(
                    HTTPStatus.METHOD_NOT_ALLOWED, "This address only answers GET and HEAD."
                ),
                headers=[("Allow", "GET, HEAD")],
            )
            return
        route(self, parse_qs(parts.query))

    def _start(self, status: int, content_type: str | None, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        # Every fetch must reach the wire (and so the WARC), even in a reused profile.
        self.send_header("Cache-Control", "no-cache")
        for name, value in headers:
            self.send_header(name, value)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = _HTML,
        *,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self._start(status, content_type, headers or [])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _redirect(self, status: HTTPStatus, location: str) -> None:
        body = _page(
            f"{status.value} {status.phrase}",
            f'<p>Moved to <a href="{_e(location)}">{_e(location)}</a>.</p>',
        )
        self._send(status, body, headers=[("Location", location)])

    def _hold(self, seconds: float) -> bool:
        """Sleep unless the server stops first; True means it is stopping."""
        return self.server.stopping.wait(seconds)

    @property
    def _base_url(self) -> str:
        return self.server.base_url

    @staticmethod
    def _int_param(query: _Query, name: str, default: int) -> int | None:
        values = query.get(name)
        if not values:
            return default
        try:
            return int(values[0])
        except ValueError:
            return None

    # -------------------------------------------------------------------- pages

    def _index(self, query: _Query) -> None:
        self._send(HTTPStatus.OK, _index_page())

    def _not_found(self, query: _Query) -> None:
        self._send(HTTPStatus.NOT_FOUND, _status_page(HTTPStatus.NOT_FOUND, "No such page."))

    def _post(self, query: _Query) -> None:
        self._send(
            HTTPStatus.OK, _render_post(self._base_url), headers=[("X-Robots-Tag", "noarchive")]
        )

    def _post_api(self, query: _Query) -> None:
        self._send(HTTPStatus.OK, _json_bytes(_post_json(self._base_url)), _JSON)

    def _comments_api(self, query: _Query) -> None:
        page = self._int_param(query, "page", 1)
        if page is None or page < 1:
            self._send(HTTPStatus.BAD_REQUEST, _json_bytes({"error": "bad page"}), _JSON)
            return
        self._send(HTTPStatus.OK, _json_bytes(_comments_page(page)), _JSON)

    def _user(self, query: _Query) -> None:
        extra = (
            '<p><img class="avatar" src="/img/avatar.png" width="48" height="48" alt="">'
            f" {_e(POST_HANDLE)}</p>\n"
            '<p><a href="/post/1">Latest post</a></p>\n'
        )
        self._send(
            HTTPStatus.OK,
            _simple_page(POST_AUTHOR, "Community volunteer. Posts about local news.", extra=extra),
        )

    def _static(self, query: _Query) -> None:
        name = urlsplit(self.path).path.rsplit("/", 1)[-1]
        self._send(HTTPStatus.OK, _static_file(name), _STATIC_TYPES[name])

    def _captcha_script(self, query: _Query) -> None:
        self._send(HTTPStatus.OK, _static_file("captcha-stub.js"), _JS)

    def _font(self, query: _Query) -> None:
        self._send(
            HTTPStatus.OK,
            _font_woff2(),
            "font/woff2",
            headers=[("Access-Control-Allow-Origin", "*")],
        )

    def _image_file(self, query: _Query) -> None:
        self._send(HTTPStatus.OK, _image_bytes(urlsplit(self.path).path), "image/png")

    def _media_page(self, query: _Query) -> None:
        mib = self._mib(query)
        if mib is not None:
            self._send(HTTPStatus.OK, _render_media(mib))

    def _mib(self, query: _Query) -> int | None:
        mib = self._int_param(query, "mib", DEFAULT_MEDIA_MIB)
        if mib is None or not 0 <= mib <= MAX_MEDIA_MIB:
            self._send(
                HTTPStatus.BAD_REQUEST,
                _status_page(
                    HTTPStatus.BAD_REQUEST, f"mib must be an integer from 0 to {MAX_MEDIA_MIB}."
                ),
            )
            return None
        return mib

    def _media(self, query: _Query) -> None:
        mib = self._mib(query)
        if mib is None:
            return
        self._start(HTTPStatus.OK, "application/octet-stream", [])
        self.send_header("Content-Length", str(mib * _MIB))
        self.end_headers()
        if self.command == "HEAD":
            return
        # One chunk at a time: a 160 MiB body must never sit in memory whole.
        for chunk in _media_chunks(mib):
            if self.server.stopping.is_set():
                self.close_connection = True
                return
            self.wfile.write(chunk)

    def _redirect_start(self, query: _Query) -> None:
        self._redirect(HTTPStatus.MOVED_PERMANENTLY, "/redirect/middle")

    def _redirect_credentials(self, query: _Query) -> None:
        # A redirect to an address carrying a user name and password: the password
        # must never reach the custody log, a message or a manifest.
        host = self.headers.get("Host", "127.0.0.1")
        scheme = "https" if self.server.tls is not None else "http"
        self._redirect(HTTPStatus.FOUND, f"{scheme}://alice:hunter2@{host}/post/1")

    def _redirect_middle(self, query: _Query) -> None:
        self._redirect(HTTPStatus.FOUND, "/post/1")

    def _redirect_loop(self, query: _Query) -> None:
        self._redirect(HTTPStatus.FOUND, "/redirect/loop2")

    def _redirect_loop2(self, query: _Query) -> None:
        self._redirect(HTTPStatus.FOUND, "/redirect/loop")

    def _gzip_article(self, query: _Query) -> None:
        # Always compressed, whatever Accept-Encoding says, so the capture sees the
        # same bytes every time; mtime=0 keeps the gzip header stable.
        body = gzip.compress(_render_gzip_article(), mtime=0)
        self._send(
            HTTPStatus.OK, body, headers=[("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
        )

    def _gzip_data(self, query: _Query) -> None:
        body = gzip.compress(_json_bytes(_GZIP_DATA), mtime=0)
        self._send(
            HTTPStatus.OK,
            body,
            _JSON,
            headers=[("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")],
        )

    def _chunked_article(self, query: _Query) -> None:
        parts = _chunked_parts()
        if self.request_version == "HTTP/1.0":
            # HTTP/1.0 has no chunked coding; fall back to a plain body.
            self.close_connection = True
            self._send(HTTPStatus.OK, b"".join(parts))
            return
        self._start(HTTPStatus.OK, _HTML, [("Transfer-Encoding", "chunked")])
        self.end_headers()
        if self.command == "HEAD":
            return
        for part in parts:
            self.wfile.write(f"{len(part):X}\r\n".encode("ascii") + part + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def _longpoll_page(self, query: _Query) -> None:
        self._send(
            HTTPStatus.OK,
            _simple_page(
                "Long-poll page",
                "Long-poll page: this page keeps a request open for ever.",
                head='<script src="/static/longpoll.js" defer></script>\n',
            ),
        )

    def _longpoll(self, query: _Query) -> None:
        # Not a byte of response until stop() (or the cap): the request just hangs.
        self._hold(_HOLD_CAP_SECONDS)
        self.close_connection = True

    def _trickle_page(self, query: _Query) -> None:
        self._send(
            HTTPStatus.OK,
            _simple_page(
                "Trickle page",
                "Trickle page: the image below arrives a few bytes at a time.",
                extra='<img src="/img/trickle.png" width="48" height="48" alt="Trickling image">\n',
            ),
        )

    def _trickle(self, query: _Query) -> None:
        body = _trickle_png()
        self._start(HTTPStatus.OK, "image/png", [])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        deadline = time.monotonic() + _HOLD_CAP_SECONDS
        sent = 0
        while sent < len(body):
            if time.monotonic() >= deadline:
                self.wfile.write(body[sent:])
                return
            self.wfile.write(body[sent : sent + _TRICKLE_STEP])
            sent += _TRICKLE_STEP
            if sent < len(body) and self._hold(_TRICKLE_INTERVAL):
                self.close_connection = True
                return

    def _login(self, query: _Query) -> None:
        if self.command == "POST":
            declared = self.headers.get("Content-Length", "0").strip()
            length = int(declared) if declared.isdigit() else -1
            if not 0 <= length <= _MAX_FORM_BYTES:
                self.close_connection = True
                self._send(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    _status_page(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Form too large."),
                )
                return
            form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
            # No account exists: every sign-in fails, and the password is discarded.
            next_path = form.get("next", ["/"])[0]
            self._send(HTTPStatus.OK, _login_page(next_path, failed=True))
            return
        self._send(HTTPStatus.OK, _login_page(query.get("next", ["/"])[0], failed=False))

    def _private(self, query: _Query) -> None:
        self._redirect(HTTPStatus.FOUND, "/login?next=/private/feed")

    def _auth_basic(self, query: _Query) -> None:
        self._send(
            HTTPStatus.UNAUTHORIZED,
            _status_page(HTTPStatus.UNAUTHORIZED, "Members only."),
            headers=[("WWW-Authenticate", 'Basic realm="members"')],
        )

    def _auth_proxy(self, query: _Query) -> None:
        self._send(
            HTTPStatus.PROXY_AUTHENTICATION_REQUIRED,
            _status_page(
                HTTPStatus.PROXY_AUTHENTICATION_REQUIRED, "Proxy authentication required."
            ),
            headers=[("Proxy-Authenticate", 'Basic realm="proxy"')],
        )

    def _challenge_recaptcha(self, query: _Query) -> None:
        self._send(HTTPStatus.OK, _captcha_page("recaptcha"))

    def _challenge_hcaptcha(self, query: _Query) -> None:
        self._send(HTTPStatus.OK, _captcha_page("hcaptcha"))

    def _challenge_turnstile(self, query: _Query) -> None:
        self._send(HTTPStatus.OK, _captcha_page("turnstile"))

    def _challenge_human(self, query: _Query) -> None:
        self._send(HTTPStatus.OK, _human_page(), headers=[("cf-mitigated", "challenge")])

    def _too_many(self) -> None:
        self._send(
            HTTPStatus.TOO_MANY_REQUESTS,
            _status_page(
                HTTPStatus.TOO_MANY_REQUESTS, "You are doing that too often. Try again shortly."
            ),
            headers=[("Retry-After", "1")],
        )

    def _ratelimit_always(self, query: _Query) -> None:
        self._too_many()

    def _ratelimit_once(self, query: _Query) -> None:
        if self.server.first_rate_limit():
            self._too_many()
        else:
            self._post(query)

    def _robots(self, query: _Query) -> None:
        answer = self.server.robots
        if answer is None:
            # A cookie, as many sites set on every answer: no later robots.txt fetch of a
            # batch may send it back.
            cookie = [("Set-Cookie", "robots-seen=yes; Path=/; Max-Age=3600")]
            body = ROBOTS_TXT.encode("ascii")
            self._send(HTTPStatus.OK, body, "text/plain; charset=utf-8", headers=cookie)
            return
        status, body = answer
        self._send(status, body, "text/plain; charset=utf-8")

    def _nocrawl(self, query: _Query) -> None:
        self._send(
            HTTPStatus.OK,
            _simple_page(
                "Public notice", "This public page is disallowed for crawlers by robots.txt."
            ),
        )

    def _noindex(self, query: _Query) -> None:
        self._send(
            HTTPStatus.OK,
            _simple_page(
                "Unlisted page",
                "This page asks search engines not to index it.",
                head='<meta name="robots" content="noindex, nofollow">\n',
            ),
            headers=[("X-Robots-Tag", "noindex")],
        )

    def _returning_visitor(self, query: _Query) -> None:
        # Whatever one capture leaves in its browser context (a cookie, localStorage)
        # must not reach the next capture: this page says whether it did.
        cookie = self.headers.get("Cookie") or "none"
        script = (
            "<script>\n"
            "const seen = localStorage.getItem('visited') || 'none';\n"
            "document.getElementById('storage').textContent = 'localStorage seen: ' + seen;\n"
            "localStorage.setItem('visited', 'yes');\n"
            "</script>\n"
        )
        self._send(
            HTTPStatus.OK,
            _simple_page(
                "Returning visitor",
                f"Cookie received: {cookie}",
                extra='<p id="storage">localStorage not read</p>\n' + script,
            ),
            headers=[("Set-Cookie", "visited=yes; Path=/; Max-Age=3600")],
        )

    def _worker_page(self, query: _Query) -> None:
        # A dedicated worker and a WebSocket: requests the page's own frame does not make.
        script = (
            "<script>\n"
            "const w = new Worker('/static/worker.js');\n"
            "w.onmessage = (e) => { document.getElementById('w').textContent = e.data; };\n"
            "try { const ws = new WebSocket(location.origin.replace('http', 'ws') + '/ws/live');\n"
            "  ws.onerror = () => { document.getElementById('s').textContent = 'closed'; };\n"
            "} catch (e) { document.getElementById('s').textContent = 'socket refused'; }\n"
            "</script>\n"
        )
        self._send(
            HTTPStatus.OK,
            _simple_page(
                "Worker page",
                "A page whose worker fetches data.",
                extra='<p id="w">waiting</p><p id="s"></p>\n' + script,
            ),
        )

    def _worker_data(self, query: _Query) -> None:
        self._send(HTTPStatus.OK, b'{"from":"worker"}', "application/json")

    def _empty(self, query: _Query) -> None:
        # 204 carries neither a body nor a Content-Length.
        self._start(HTTPStatus.NO_CONTENT, None, [])
        self.end_headers()

    def _broken(self, query: _Query) -> None:
        # Not a single byte: the client sees the connection close (ERR_EMPTY_RESPONSE).
        self.close_connection = True

    # -------------------------------------------------------------------- capture robustness pages

    def _deleted(self, query: _Query) -> None:
        # A deleted post as many servers answer it: 404 and not a byte of body (with
        # ?chunked=1 in an empty chunked body, which declares no length).
        if query.get("chunked") and self.request_version != "HTTP/1.0":
            self._start(HTTPStatus.NOT_FOUND, _HTML, [("Transfer-Encoding", "chunked")])
            self.end_headers()
            self.wfile.write(b"0\r\n\r\n")
            return
        self._start(HTTPStatus.NOT_FOUND, None, [("Content-Length", "0")])
        self.end_headers()

    def _attachment(self, query: _Query) -> None:
        body = b"name,last seen\nJordan Avery,Pine St station\n"
        # ?inline=1: no Content-Disposition, and still a type the browser downloads.
        disposition = (
            []
            if query.get("inline")
            else [("Content-Disposition", 'attachment; filename="sightings.csv"')]
        )
        self._send(HTTPStatus.OK, body, "text/csv", headers=disposition)

    def _pdf_document(self, query: _Query) -> None:
        if query.get("untyped"):
            # No Content-Type: Chromium sniffs the PDF and shows it in its viewer.
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Length", str(len(_MINIMAL_PDF)))
            self.end_headers()
            self.wfile.write(_MINIMAL_PDF)
            return
        self._send(HTTPStatus.OK, _MINIMAL_PDF, "application/pdf")

    def _drip(self, query: _Query) -> None:
        """An article whose HTML arrives a paragraph a second for ``?seconds=N``."""
        seconds = self._int_param(query, "seconds", 25) or 25
        self._start(HTTPStatus.OK, _HTML, [("Transfer-Encoding", "chunked")])
        self.end_headers()

        def chunk(data: bytes) -> None:
            self.wfile.write(f"{len(data):X}\r\n".encode("ascii") + data + b"\r\n")
            self.wfile.flush()

        chunk(
            b"<!doctype html><html><head><title>Slow article</title></head><body>"
            b"<h1>Slow article</h1><p>" + DRIP_FIRST.encode() + b"</p>" + b" " * 2048
        )
        for i in range(min(seconds, int(_HOLD_CAP_SECONDS))):
            if self._hold(1.0):
                self.close_connection = True
                return
            chunk(f"<p>Paragraph {i + 1} of the slow article.</p>".encode())
        chunk(b"<p>" + DRIP_LAST.encode() + b"</p></body></html>")
        self.wfile.write(b"0\r\n\r\n")

    def _endless(self, query: _Query) -> None:
        """A body that never ends (HTML, or bytes with ``?kind=bin``), as fast as it goes."""
        binary = query.get("kind", [""])[0] == "bin"
        self._start(
            HTTPStatus.OK,
            "application/octet-stream" if binary else _HTML,
            [("Transfer-Encoding", "chunked")],
        )
        self.end_headers()
        block = b"\0" * 65536 if binary else b"<p>" + b"more " * 13100 + b"</p>\n"
        frame = f"{len(block):X}\r\n".encode("ascii") + block + b"\r\n"
        if not binary:
            head = b"<!doctype html><title>Endless</title>"
            self.wfile.write(f"{len(head):X}\r\n".encode("ascii") + head + b"\r\n")
        deadline = time.monotonic() + _HOLD_CAP_SECONDS
        while time.monotonic() < deadline and not self.server.stopping.is_set():
            self.wfile.write(frame)
        self.close_connection = True

    def _endless_resource_page(self, query: _Query) -> None:
        self._send(
            HTTPStatus.OK,
            _simple_page(
                "Endless resource",
                ENDLESS_RESOURCE_TEXT,
                extra="<script>fetch('/robust/endless?kind=bin').then(r => r.arrayBuffer())"
                ".catch(() => {});</script>\n",
            ),
        )

    def _okay_status(self, query: _Query) -> None:
        # The status line written by hand, in UTF-8 as many servers send it (http.server
        # would write Latin-1).
        body = _simple_page("Odd status line", "A page whose status line reads 200 Ökay.")
        self.log_request(HTTPStatus.OK)
        head = (
            f"{self.protocol_version} 200 Ökay\r\nContent-Type: {_HTML}\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-cache\r\n\r\n"
        )
        self.wfile.write(head.encode("utf-8") + body)

    def _hostile_metadata(self, query: _Query) -> None:
        """Metadata built to break a reader: deep JSON-LD, overridden built-ins."""
        depth = self._int_param(query, "depth", 0) or 0
        override = query.get("override", [""])[0]
        nested = '{"@type":"Thing","name":"deep"' + ',"about":{"@type":"Thing"' * depth
        nested += "}" * depth + "}"
        scripts = {
            "json": "JSON.parse = function parse(t) { return JSON.parse(t); };",
            "attr": "Element.prototype.getAttribute = function () { return {}; };",
        }.get(override, "")
        ld = json.dumps(
            {
                "@context": "https://schema.org",
                "@type": "SocialMediaPosting",
                "author": {"@type": "Person", "name": POST_AUTHOR},
                "datePublished": POST_PUBLISHED,
            }
        )
        head = (
            f'<meta property="og:title" content="{_e(HOSTILE_TITLE)}">\n'
            f'<script type="application/ld+json">{ld}</script>\n'
            f'<script type="application/ld+json">{nested}</script>\n'
            f"<script>{scripts}</script>\n"
        )
        self._send(HTTPStatus.OK, _simple_page(HOSTILE_TITLE, "Hostile metadata.", head=head))

    def _huge_dom(self, query: _Query) -> None:
        count = min(self._int_param(query, "n", 200000) or 200000, 500000)
        cells = "".join(f"<span>{i} </span>" for i in range(count))
        self._send(
            HTTPStatus.OK,
            _simple_page("Huge DOM", HUGE_DOM_TEXT, extra=f"<div>{cells}</div>\n"),
        )

    def _alert_loop(self, query: _Query) -> None:
        script = "<script>setInterval(() => alert('You have won!'), 20);</script>\n"
        self._send(HTTPStatus.OK, _simple_page("Alert loop", ALERT_LOOP_TEXT, extra=script))

    def _moves_itself(self, query: _Query) -> None:
        """A page that moves the browser to /robust/arrived: by script or meta refresh."""
        how = query.get("how", ["script"])[0]
        if how == "meta":
            head = '<meta http-equiv="refresh" content="0; url=/robust/arrived">\n'
            extra = ""
        else:
            head = ""
            extra = (
                "<script>window.addEventListener('load', () => "
                "setTimeout(() => { location.href = '/robust/arrived'; }, 200));</script>\n"
            )
        self._send(
            HTTPStatus.OK, _simple_page("Moving on", "This page moves on.", head=head, extra=extra)
        )

    def _out_of_memory(self, query: _Query) -> None:
        """The renderer runs out of memory (Chromium's "Aw, Snap!") some seconds in;
        ``?page=sign-in``: a sign-in page that does so as it loads, before any check."""
        hoard = "const hoard = []; while (true) hoard.push(new Array(1e6).fill(Math.random()));"
        if query.get("page", [""])[0] == "sign-in":
            body = _sign_in_card() + f"<script>{hoard}</script>\n"
            self._send(HTTPStatus.OK, _page("Sign in · Sample Social", body))
            return
        script = f"<script>setTimeout(() => {{ {hoard} }}, 500);</script>\n"
        self._send(HTTPStatus.OK, _simple_page("Out of memory", CRASH_TEXT, extra=script))

    def _stuck(self, query: _Query) -> None:
        """A page whose script hangs the browser once the stylesheet before it has loaded:
        after that nothing can read it. ``?page=sign-in``: a sign-in page; otherwise a
        public article. ``?hang=head``: the script comes first in the head, so the
        browser hangs in the very task that commits the page (its renderer then never
        hands over the document's bytes)."""
        hang = "<script>while (true) {}</script>\n"
        first = hang if query.get("hang", [""])[0] == "head" else ""
        last = "" if first else hang
        if query.get("page", [""])[0] == "sign-in":
            body = _sign_in_card(username=True) + last
            self._send(HTTPStatus.OK, _page("Sign in · Sample Social", body, head_first=first))
            return
        page = _simple_page("A stuck article", STUCK_TEXT * 8, extra=last, head_first=first)
        self._send(HTTPStatus.OK, page)

    def _unparsed(self, query: _Query) -> None:
        """A page whose head waits for a script that never arrives, so its body is never
        parsed: the browser can be asked, but has nothing to show. ``?page=sign-in``: a
        sign-in page; otherwise a public article."""
        blocked = '<script src="/api/longpoll"></script>\n'
        if query.get("page", [""])[0] == "sign-in":
            body = _sign_in_card()
            self._send(HTTPStatus.OK, _page("Sign in · Sample Social", body, head=blocked))
            return
        self._send(HTTPStatus.OK, _simple_page("Unparsed", UNPARSED_TEXT * 8, head=blocked))

    def _arrived(self, query: _Query) -> None:
        self._send(HTTPStatus.OK, _simple_page("Arrived", ARRIVED_TEXT))

    def _late(self, query: _Query) -> None:
        """A page that fetches part of its text a moment after loading (a deferred
        widget): a capture must wait for what starts soon after the load event."""
        extra = (
            "<p id=late></p><script>window.addEventListener('load', () => setTimeout("
            "async () => { const r = await fetch('/robust/late.json'); "
            "document.getElementById('late').textContent = (await r.json()).text; }, 300));"
            "</script>\n"
        )
        self._send(HTTPStatus.OK, _simple_page("Late", "A page with a late part.", extra=extra))

    def _late_json(self, query: _Query) -> None:
        self._send(HTTPStatus.OK, _json_bytes({"text": LATE_TEXT}), _JSON)

    def _animated(self, query: _Query) -> None:
        """Animations a screenshot must still: one with an end (a box fading from red to
        green over ten minutes, which keeps its end), one without (a blue square blinking
        yellow and cyan forever), and one without in a frame (a magenta square)."""
        head = (
            "<style>@keyframes fade { from { background: rgb(255, 0, 0); }"
            " to { background: rgb(0, 128, 0); } }"
            " @keyframes blink { 0% { background: rgb(255, 255, 0); }"
            " 50% { background: rgb(0, 255, 255); } }"
            " #fade, #blink { position: absolute; left: 0; width: 200px; height: 200px; }"
            " #fade { top: 0; animation: fade 600s linear forwards; }"
            " #blink { top: 300px; background: rgb(0, 0, 255);"
            " animation: blink 1s steps(1) infinite; }</style>"
        )
        framed = (
            "<style>@keyframes blink { 0% { background: rgb(255, 255, 0); }"
            " 50% { background: rgb(0, 255, 255); } }"
            " body { margin: 0; } #blink { width: 200px; height: 200px;"
            " background: rgb(255, 0, 255); animation: blink 1s steps(1) infinite; }</style>"
            "<div id=blink></div>"
        )
        body = (
            "<div id=fade></div><div id=blink></div>"
            f'<iframe srcdoc="{_e(framed)}" style="position: absolute; top: 600px; left: 0;'
            ' width: 200px; height: 200px; border: 0"></iframe>'
        )
        self._send(HTTPStatus.OK, _page("Animated", body, head=head, header=False))

    # -------------------------------------------------------------------- access-rule table pages
    # One page per row of the lawful-access table (tests/test_access_table.py): public
    # pages the rules once refused wrongly, and walls and challenges they must refuse.

    _ACCESS_ARTICLE = (
        "The council voted on Tuesday night to keep the Pine St footbridge open through the "
        "winter, after more than two hundred residents wrote in to oppose its closure. "
        "Engineers will inspect the deck every month instead, and the bridge will close only "
        "in freezing rain. Councillor Ruth Adeyemi said the crossing is the only safe route "
        "to the station for the families on the east side, and that the repairs planned for "
        "spring will go ahead as budgeted."
    )
    _ACCESS_FOOTER = (
        "About · Help Center · Terms of Service · Privacy Policy · Cookie Policy · "
        "Accessibility · Ads info · Blog · Status · Careers · Brand Resources · Advertising · "
        "Marketing · Sample Social for Business · Developers · Directory · Settings · "
        "Press · Safety · Transparency Center · Community Guidelines · Law enforcement "
        "guidelines · Sitemap · Language: English · Français · Deutsch · Español · "
        "Português · العربية · 日本語 · 한국어 · © 2026 Sample Social, Inc. All rights "
        "reserved. Sample Social is a fixture site: none of these links goes anywhere."
    )
    _ACCESS_SIGN_IN_FORM = (
        '<form class="login" method="post" action="/login">\n'
        '<label>Username <input name="username" autocomplete="username"></label>\n'
        '<label>Password <input type="password" name="password" '
        'autocomplete="current-password"></label>\n'
        '<button type="submit">Sign in</button>\n</form>\n'
    )

    @staticmethod
    def _framed_page(title: str, *, header: str, main: str, footer: str, head: str = "") -> bytes:
        """A page with the site's header and footer beside its main content, not in it."""
        return (
            '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<title>{_e(title)}</title>\n<link rel="stylesheet" href="/static/style.css">\n'
            f'{head}</head>\n<body>\n<header class="site-header">{header}</header>\n'
            f"<main>\n{main}\n</main>\n<footer><p>{footer}</p></footer>\n</body>\n</html>\n"
        ).encode()

    def _access_comment_form(self, widget: str) -> str:
        return (
            '<section class="comments">\n<h2>Comments</h2>\n'
            '<form method="post" action="/comments">\n'
            '<label>Your comment <textarea name="comment"></textarea></label>\n'
            f"{widget}\n</form>\n</section>\n"
        )

    def _access_invisible_recaptcha(self, query: _Query) -> None:
        # A short post, so that were either widget counted it would stand in front of
        # it: one hidden (display:none), one reCAPTCHA v2 invisible as sites use it
        # (data-size=invisible, bound to the form's button, and the corner badge
        # Google's script draws; a local stand-in, so no request leaves).
        comment = self._access_comment_form(
            '<div class="g-recaptcha" data-sitekey="test" style="display:none"></div>\n'
            '<button type="submit">Post comment</button>'
        )
        report = (
            '<form method="post" action="/report">\n'
            '<div class="g-recaptcha" data-sitekey="test" data-size="invisible"></div>\n'
            '<button class="g-recaptcha" data-sitekey="test" data-callback="onSubmit">'
            "Report this post</button>\n</form>\n"
            '<div class="grecaptcha-badge" style="position:fixed;bottom:14px;right:0;'
            'width:256px;height:60px"><iframe title="reCAPTCHA" width="256" height="60" '
            'srcdoc="protected by reCAPTCHA"></iframe></div>\n'
        )
        self._send(
            HTTPStatus.OK,
            _simple_page(
                "Road closed at Pine St",
                "Pine St is closed between 5th and 7th until Friday; buses divert via Elm Ave.",
                head='<script src="/recaptcha/api.js" async defer></script>\n',
                extra=comment + report,
            ),
        )

    def _access_signup_sidebar(self, query: _Query) -> None:
        # A password and its confirmation in one form: counted once, so the article's
        # text beside it stays over the threshold (it was subtracted once per field).
        sidebar = (
            '<div class="sidebar card">\n<h2>Join Sample Social</h2>\n'
            '<form method="post" action="/signup">\n'
            '<label>Email <input type="email" name="email"></label>\n'
            '<label>Password <input type="password" name="password"></label>\n'
            '<label>Confirm password <input type="password" name="confirm"></label>\n'
            "<p>By creating an account you agree to the Terms of Service and the Privacy "
            "Policy, including the use of cookies.</p>\n"
            '<button type="submit">Create account</button>\n</form>\n</div>\n'
        )
        self._send(
            HTTPStatus.OK,
            _simple_page("Footbridge stays open", self._ACCESS_ARTICLE, extra=sidebar),
        )

    def _access_header_login(self, query: _Query) -> None:
        header = (
            '<a href="/" style="color:inherit;text-decoration:none">Sample Social</a>\n'
            f"{self._ACCESS_SIGN_IN_FORM}"
        )
        post = (
            '<article class="post">\n<h1>Dana Whitfield</h1>\n'
            "<p>Jordan is home safe. Thank you all for sharing. 💙</p>\n</article>"
        )
        self._send(
            HTTPStatus.OK,
            self._framed_page(
                "Dana Whitfield on Sample Social", header=header, main=post, footer="© 2026"
            ),
        )

    def _access_comment_recaptcha(self, query: _Query) -> None:
        form = self._access_comment_form(
            '<div class="g-recaptcha" data-sitekey="test"></div>\n'
            '<button type="submit">Post comment</button>'
        )
        self._send(
            HTTPStatus.OK,
            _simple_page(
                "Footbridge stays open",
                self._ACCESS_ARTICLE,
                head='<script src="/recaptcha/api.js" async defer></script>\n',
                extra=form,
            ),
        )

    def _access_robot_article(self, query: _Query) -> None:
        text = (
            "“Are you a robot?” It is the question millions of people answer every day by "
            "ticking a box or picking out traffic lights. Researchers at the university found "
            "that the checks now take the average person nine seconds, and that bots pass "
            "them more often than people do. Sites still ask visitors to verify you are "
            "human, they say, because the checks measure far more than the click: how the "
            "mouse moved, how long the page was open, what the browser says about itself. "
            "The team recommends that public services offer a way through that needs no "
            "puzzle at all."
        )
        self._send(
            HTTPStatus.OK, _simple_page("Are you a robot? The checkbox that watches you", text)
        )

    def _access_talk(self, query: _Query) -> None:
        self._redirect(HTTPStatus.FOUND, "/access/session/keynote-2026")

    def _access_session_keynote(self, query: _Query) -> None:
        self._send(
            HTTPStatus.OK,
            _simple_page(
                "Keynote: Open-source evidence in court (OSINT Summit 2026)",
                "Thursday 9:00, Hall A. How public posts become admissible evidence: "
                "capture, custody and disclosure, with a panel of prosecutors and examiners.",
            ),
        )

    def _access_meta_refresh(self, query: _Query) -> None:
        self._send(
            HTTPStatus.OK,
            _simple_page(
                "Moved",
                "This post has moved.",
                head='<meta http-equiv="refresh" content="0; url=/access/meta-refresh/post">\n',
            ),
        )

    def _access_meta_refresh_post(self, query: _Query) -> None:
        self._send(HTTPStatus.OK, _simple_page("Footbridge stays open", self._ACCESS_ARTICLE))

    def _access_popups(self, query: _Query) -> None:
        if "ad" in query:
            self._send(HTTPStatus.OK, _simple_page("Advertisement", "You have won a prize."))
            return
        script = (
            "<script>\naddEventListener('load', () => {\n"
            "  for (let i = 0; i < 500; i++) window.open('/access/popups?ad=' + i, '_blank');\n"
            "});\n</script>\n"
        )
        self._send(
            HTTPStatus.OK,
            _simple_page("Footbridge stays open", self._ACCESS_ARTICLE, extra=script),
        )

    def _access_login_page(self, query: _Query) -> None:
        # A real sign-in page is framed by the site's header and a long footer: their
        # text is not the page's own, so they do not make it a public page.
        header = (
            '<a href="/" style="color:inherit;text-decoration:none">Sample Social</a>\n'
            '<nav><a href="/explore">Explore</a> · <a href="/about">About</a> · '
            '<a href="/signup">Sign up</a></nav>'
        )
        main = (
            '<section class="card">\n<h1>Log in to Sample Social</h1>\n'
            f"{self._ACCESS_SIGN_IN_FORM}"
            '<p><a href="/reset">Forgot your password?</a> · '
            '<a href="/signup">Create an account</a></p>\n</section>'
        )
        self._send(
            HTTPStatus.OK,
            self._framed_page(
                "Log in · Sample Social", header=header, main=main, footer=self._ACCESS_FOOTER
            ),
        )

    def _access_cloudflare(self, query: _Query) -> None:
        # Cloudflare's current interstitial: its title and element ids, no widget yet.
        body = (
            '<div class="main-wrapper" role="main">\n<h1>sample.example</h1>\n'
            '<h2 id="challenge-running">Checking if the site connection is secure</h2>\n'
            "<p>sample.example needs to review the security of your connection before "
            "proceeding.</p>\n</div>\n"
            "<footer><p>Ray ID: 8a1f2c3d4e5f6a7b · Performance &amp; security by Cloudflare"
            "</p></footer>"
        )
        self._send(
            HTTPStatus.FORBIDDEN,
            _page("Just a moment...", body, header=False),
            headers=[("cf-mitigated", "challenge")],
        )

    def _access_captcha_gate(self, query: _Query) -> None:
        main = (
            '<section class="card challenge">\n<h1>Before you continue</h1>\n'
            "<p>Tick the box to see this post.</p>\n"
            '<form method="post" action="/access/captcha-gate">\n'
            '<div class="g-recaptcha" data-sitekey="test"></div>\n'
            '<button type="submit">Continue</button>\n</form>\n</section>'
        )
        self._send(
            HTTPStatus.OK,
            self._framed_page(
                "Sample Social",
                header="Sample Social",
                main=main,
                footer=self._ACCESS_FOOTER,
                head='<script src="/recaptcha/api.js" async defer></script>\n',
            ),
        )

    def _access_members_only(self, query: _Query) -> None:
        self._redirect(HTTPStatus.FOUND, "/access/sessions/new?return_to=/access/members-only")

    def _access_sessions_new(self, query: _Query) -> None:
        self._send(
            HTTPStatus.OK,
            _page(
                "Sign in · Sample Social",
                '<section class="card">\n<h1>Sign in to continue</h1>\n'
                f"{self._ACCESS_SIGN_IN_FORM}</section>",
            ),
        )

    def _access_hidden_sign_in(self, query: _Query) -> None:
        # A sign-in page whose script makes the page's own DOM calls deny its password
        # box and claim a long text: only a check the page cannot reach sees the wall.
        script = (
            "<script>\n(() => {\n"
            "  const isPassword = (el) => el instanceof HTMLInputElement && "
            "el.getAttribute('type') === 'password';\n"
            "  const hide = (list) => [...list].filter((el) => !isPassword(el));\n"
            "  for (const proto of [Document.prototype, Element.prototype]) {\n"
            "    const all = proto.querySelectorAll;\n"
            "    proto.querySelectorAll = function (s) { return hide(all.call(this, s)); };\n"
            "    proto.querySelector = function (s) {\n"
            "      return hide(all.call(this, s))[0] || null;\n    };\n"
            "  }\n"
            "  const rects = Element.prototype.getClientRects;\n"
            "  Element.prototype.getClientRects = function () {\n"
            "    return isPassword(this) ? [] : rects.call(this);\n  };\n"
            "  const box = Element.prototype.getBoundingClientRect;\n"
            "  Element.prototype.getBoundingClientRect = function () {\n"
            "    return isPassword(this) ? new DOMRect(0, 0, 0, 0) : box.call(this);\n  };\n"
            "  Element.prototype.checkVisibility = function () { return !isPassword(this); };\n"
            "  for (const name of ['offsetWidth', 'offsetHeight']) {\n"
            "    Object.defineProperty(HTMLElement.prototype, name, {get() { return 0; }});\n"
            "  }\n"
            "  Object.defineProperty(HTMLElement.prototype, 'innerText', {\n"
            "    get() { return 'A long public post. '.repeat(300); }\n  });\n"
            "})();\n</script>\n"
        )
        self._send(
            HTTPStatus.OK,
            _page(
                "Sign in · Sample Social",
                '<section class="card">\n<h1>Sign in to Sample Social</h1>\n'
                f"{self._ACCESS_SIGN_IN_FORM}</section>",
                head=script,
            ),
        )


_Route = Callable[[_Handler, _Query], None]

_STATIC_TYPES = {
    "app.js": _JS,
    "worker.js": _JS,
    "media.js": _JS,
    "longpoll.js": _JS,
    "captcha-stub.js": _JS,
    "style.css": "text/css; charset=utf-8",
}


@cache
def _static_file(name: str) -> bytes:
    return (resources.files(__name__.rpartition(".")[0]) / "static" / name).read_bytes()


_ROUTES: dict[str, _Route] = {
    "/": _Handler._index,
    "/post/1": _Handler._post,
    "/post/1/media": _Handler._media_page,
    "/api/post/1": _Handler._post_api,
    "/api/comments": _Handler._comments_api,
    "/user/dana": _Handler._user,
    "/static/font.woff2": _Handler._font,
    "/media/big.bin": _Handler._media,
    "/redirect/start": _Handler._redirect_start,
    "/redirect/credentials": _Handler._redirect_credentials,
    "/redirect/middle": _Handler._redirect_middle,
    "/redirect/loop": _Handler._redirect_loop,
    "/redirect/loop2": _Handler._redirect_loop2,
    "/gzip/article": _Handler._gzip_article,
    "/gzip/data.json": _Handler._gzip_data,
    "/chunked/article": _Handler._chunked_article,
    "/slow/longpoll": _Handler._longpoll_page,
    "/api/longpoll": _Handler._longpoll,
    "/slow/trickle": _Handler._trickle_page,
    "/img/trickle.png": _Handler._trickle,
    "/login": _Handler._login,
    "/private/feed": _Handler._private,
    "/auth/basic": _Handler._auth_basic,
    "/auth/proxy": _Handler._auth_proxy,
    "/challenge/recaptcha": _Handler._challenge_recaptcha,
    "/challenge/hcaptcha": _Handler._challenge_hcaptcha,
    "/challenge/turnstile": _Handler._challenge_turnstile,
    "/challenge/human": _Handler._challenge_human,
    "/recaptcha/api.js": _Handler._captcha_script,
    "/hcaptcha/1/api.js": _Handler._captcha_script,
    "/turnstile/v0/api.js": _Handler._captcha_script,
    "/ratelimit/always": _Handler._ratelimit_always,
    "/ratelimit/once": _Handler._ratelimit_once,
    "/robots.txt": _Handler._robots,
    "/nocrawl/post": _Handler._nocrawl,
    "/noindex": _Handler._noindex,
    "/empty": _Handler._empty,
    "/worker": _Handler._worker_page,
    "/returning-visitor": _Handler._returning_visitor,
    "/api/from-worker": _Handler._worker_data,
    "/ws/live": _Handler._worker_data,
    "/broken": _Handler._broken,
}
_ROUTES.update({f"/static/{name}": _Handler._static for name in _STATIC_TYPES})
_ROUTES.update({path: _Handler._image_file for path in _IMAGES})
_ROUTES.update(
    {
        "/robust/deleted": _Handler._deleted,
        "/robust/attachment": _Handler._attachment,
        "/robust/document.pdf": _Handler._pdf_document,
        "/robust/drip": _Handler._drip,
        "/robust/endless": _Handler._endless,
        "/robust/endless-resource": _Handler._endless_resource_page,
        "/robust/okay-status": _Handler._okay_status,
        "/robust/metadata": _Handler._hostile_metadata,
        "/robust/huge-dom": _Handler._huge_dom,
        "/robust/alert-loop": _Handler._alert_loop,
        "/robust/moves": _Handler._moves_itself,
        "/robust/arrived": _Handler._arrived,
        "/robust/late": _Handler._late,
        "/robust/late.json": _Handler._late_json,
        "/robust/animated": _Handler._animated,
        "/robust/out-of-memory": _Handler._out_of_memory,
        "/robust/stuck": _Handler._stuck,
        "/robust/unparsed": _Handler._unparsed,
    }
)
_ROUTES.update(
    {
        "/access/invisible-recaptcha": _Handler._access_invisible_recaptcha,
        "/access/signup-sidebar": _Handler._access_signup_sidebar,
        "/access/header-login": _Handler._access_header_login,
        "/access/comment-recaptcha": _Handler._access_comment_recaptcha,
        "/access/robot-article": _Handler._access_robot_article,
        "/access/talk": _Handler._access_talk,
        "/access/session/keynote-2026": _Handler._access_session_keynote,
        "/access/meta-refresh": _Handler._access_meta_refresh,
        "/access/meta-refresh/post": _Handler._access_meta_refresh_post,
        "/access/popups": _Handler._access_popups,
        "/access/login-page": _Handler._access_login_page,
        "/access/cloudflare": _Handler._access_cloudflare,
        "/access/captcha-gate": _Handler._access_captcha_gate,
        "/access/members-only": _Handler._access_members_only,
        "/access/sessions/new": _Handler._access_sessions_new,
        "/access/hidden-sign-in": _Handler._access_hidden_sign_in,
    }
)
_POST_ROUTES: frozenset[_Route] = frozenset({_Handler._login})


class SampleSite:
    """The sample site on a background thread; use as a context manager.

    ``requests`` logs ``(method, path)`` for every request as it arrives (so a
    pending long-poll is already listed); ``path`` is the request target as sent,
    query string included, e.g. ``("GET", "/api/comments?page=2")``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: ssl.SSLContext | None = None,
        robots: tuple[int, bytes] | None = None,
    ) -> None:
        """``robots``: the (status, body) ``/robots.txt`` answers, instead of ROBOTS_TXT."""
        self._robots = robots
        self._host = host
        self._port = port
        self._tls = tls
        self._log = _RequestLog()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._bound_port: int | None = None
        self._stopped = False

    def start(self) -> SampleSite:
        if self._server is not None or self._stopped:
            raise RuntimeError("a SampleSite can be started only once")
        server = _Server((self._host, self._port), tls=self._tls, log=self._log)
        server.robots = self._robots
        self._bound_port = int(server.server_address[1])
        server.base_url = self.base_url
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sample-site:{self._bound_port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or self._stopped:
            return
        self._stopped = True
        # Release held and trickling responses first, then the accept loop, then
        # any connection still open (idle keep-alive, streaming bodies).
        server.stopping.set()
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> SampleSite:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._bound_port is None:
            raise RuntimeError("the sample site has not been started")
        scheme = "https" if self._tls is not None else "http"
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{scheme}://{host}:{self._bound_port}"

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self._log.entries()

    @property
    def errors(self) -> list[str]:
        """Unexpected handler exceptions (not client disconnects); empty when healthy."""
        return self._log.errors()
