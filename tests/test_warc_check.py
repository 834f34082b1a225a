"""The WARC pass of verification steps 4 and 6 (chain_of_custody.warccheck).

Deliberately broken WARCs, each checked for what the problem says: which record (its
number, WARC-Record-ID, WARC-Target-URI and offset, compared with warcio's own
``get_record_offset()`` on the intact file), and which digest failed or where the file
stops. And the promise behind the speed: verify reads each byte of a WARC once.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from chain_of_custody import warccheck
from chain_of_custody.item import seal_item
from chain_of_custody.signing import Signer, generate_private_key
from chain_of_custody.verify import ItemReport, verify_item
from chain_of_custody.warccheck import WarcCheck, check_warc
from osint_capture.engine.warc import _gzip_level

CASE = "CASE-2026-0042"
ITEM = "20261125T120000Z-0001"
PAGE = "https://example.org/posts/1"
MEDIA = "https://example.org/media/clip.mp4"
SHOT = f"urn:osint-capture:screenshot:{PAGE}"
PAGE_BODY = "<html><body><p>مرحبا 📸</p></body></html>".encode() * 40


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(operator="Det. A. Example", private_key=generate_private_key())


def _sha256(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True)
class Record:
    """Where warcio itself finds a record in the intact file."""

    type: str
    record_id: str
    uri: str
    offset: int
    length: int
    content_length: int


def _warc(
    *,
    gzipped: bool = True,
    media_size: int = 96 << 10,
    wrong_block: str | None = None,
    wrong_payload: str | None = None,
) -> bytes:
    """warcinfo, the page's response, the media response (random, so stored uncompressed
    in its gzip member), a screenshot resource: SHA-256 digests, each record its own gzip
    member. ``wrong_block`` / ``wrong_payload`` names the URI whose digest is to lie."""
    media = os.urandom(media_size)
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=gzipped, warc_version="WARC/1.1")
    info = b"software: osint-capture tests\r\nformat: WARC File Format 1.1\r\n"
    writer.write_record(
        writer.create_warc_record(
            "",
            "warcinfo",
            payload=io.BytesIO(info),
            length=len(info),
            warc_headers_dict={
                "WARC-Block-Digest": _sha256(info),
                "Content-Type": "application/warc-fields",
            },
        )
    )
    for uri, body, mime in ((PAGE, PAGE_BODY, "text/html"), (MEDIA, media, "video/mp4")):
        http = StatusAndHeaders(
            "200 OK",
            [("Content-Type", mime), ("Content-Length", str(len(body)))],
            protocol="HTTP/1.1",
        )
        http.compute_headers_buffer(None)
        block = _sha256(http.headers_buff, body)
        payload = _sha256(body)
        writer.write_record(
            writer.create_warc_record(
                uri,
                "response",
                payload=io.BytesIO(body),
                length=len(body),
                http_headers=http,
                warc_headers_dict={
                    "WARC-Block-Digest": _sha256(b"lie") if wrong_block == uri else block,
                    "WARC-Payload-Digest": _sha256(b"lie") if wrong_payload == uri else payload,
                },
            )
        )
    shot = b"\x89PNG\r\n\x1a\n" + os.urandom(2048)
    writer.write_record(
        writer.create_warc_record(
            SHOT,
            "resource",
            payload=io.BytesIO(shot),
            length=len(shot),
            warc_headers_dict={
                "WARC-Block-Digest": _sha256(b"lie") if wrong_block == SHOT else _sha256(shot),
                "WARC-Payload-Digest": _sha256(shot),
                "Content-Type": "image/png",
            },
        )
    )
    return out.getvalue()


def _records(data: bytes) -> list[Record]:
    iterator = ArchiveIterator(io.BytesIO(data))
    found = []
    for record in iterator:
        headers = record.rec_headers
        found.append(
            Record(
                type=record.rec_type,
                record_id=headers.get_header("WARC-Record-ID"),
                uri=headers.get_header("WARC-Target-URI") or "",
                content_length=int(headers.get_header("Content-Length")),
                offset=iterator.get_record_offset(),
                length=iterator.get_record_length(),
            )
        )
    return found


def _check(tmp_path: Path, data: bytes, *, gzipped: bool = True) -> WarcCheck:
    path = tmp_path / ("archive.warc.gz" if gzipped else "archive.warc")
    path.write_bytes(data)
    return check_warc(path, gzipped=gzipped)


def _names(problem: str, record: Record, number: int) -> bool:
    """``problem`` is about ``record``: its number, offset, type, id and URI."""
    return problem.startswith(
        f"record {number} at offset {record.offset} ({record.type}, "
        f"WARC-Record-ID {record.record_id}, WARC-Target-URI {record.uri}): "
    )


@pytest.fixture(params=[True, False], ids=["gzip", "plain"])
def gzipped(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture(params=["inline", "threaded", "tiny-pieces"])
def reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every check runs three ways: in the calling thread; with a reading thread; and
    reading the file in pieces of a few hundred bytes, so gzip members, their headers and
    their trailers are split across reads, inflated pieces and batches."""
    monkeypatch.setattr(warccheck, "_THREAD_ABOVE", 1 << 40 if request.param == "inline" else 0)
    if request.param == "tiny-pieces":
        monkeypatch.setattr(warccheck, "_READ_CHUNK", 997)
        monkeypatch.setattr(warccheck, "_FIRST_PIECE", 3)
        monkeypatch.setattr(warccheck, "_BATCH", 1500)
    yield str(request.param)


# Valid -------------------------------------------------------------------------------


def test_valid_warc_passes_and_every_byte_is_hashed(
    tmp_path: Path, gzipped: bool, reading: str
) -> None:
    data = _warc(gzipped=gzipped)
    check = _check(tmp_path, data, gzipped=gzipped)
    assert check.problems(hashlib.sha256(data).hexdigest()) == []
    assert check.records == 4
    assert (check.sha256, check.size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_valid_offsets_are_warcios_own(tmp_path: Path, gzipped: bool) -> None:
    # For .warc.gz warcio reports the compressed offset of each record's gzip member; the
    # check inflates members itself and must map back to exactly those offsets.
    data = _warc(gzipped=gzipped, wrong_block=SHOT)
    (problem,) = _check(tmp_path, data, gzipped=gzipped).record_problems
    shot = _records(data)[3]
    assert _names(problem, shot, 4)
    assert shot.offset > 96 << 10  # after the media record: a real offset, not 0


# Invalid: digests ----------------------------------------------------------------------


def test_invalid_payload_digest_names_the_record_and_the_payload_digest(
    tmp_path: Path, gzipped: bool, reading: str
) -> None:
    data = _warc(gzipped=gzipped, wrong_payload=MEDIA)
    check = _check(tmp_path, data, gzipped=gzipped)
    (problem,) = check.record_problems
    assert _names(problem, _records(data)[2], 3)
    assert "payload digest failed" in problem and "block digest" not in problem
    assert f"WARC-Payload-Digest {_sha256(b'lie')}" in problem
    assert check.file_problems == ()


def test_invalid_block_digest_names_the_record_and_the_block_digest(
    tmp_path: Path, gzipped: bool, reading: str
) -> None:
    data = _warc(gzipped=gzipped, wrong_block=PAGE)
    (problem,) = _check(tmp_path, data, gzipped=gzipped).record_problems
    assert _names(problem, _records(data)[1], 2)
    assert "block digest failed" in problem and "payload digest" not in problem
    assert f"WARC-Block-Digest {_sha256(b'lie')}" in problem


def test_invalid_digest_fails_only_step_6_and_step_6_names_the_record(
    tmp_path: Path, signer: Signer
) -> None:
    data = _warc(wrong_payload=MEDIA)
    report = _sealed(tmp_path, signer, data)
    assert _failed_steps(report) == [6]
    media = _records(data)[2]
    assert f"record 3 at offset {media.offset} (response" in report.step(6).detail
    assert media.record_id in report.step(6).detail
    assert "payload digest failed" in report.step(6).detail


# Invalid: cut short ----------------------------------------------------------------------


def test_invalid_plain_warc_cut_mid_record_says_where(tmp_path: Path, reading: str) -> None:
    data = _warc(gzipped=False)
    media = _records(data)[2]
    cut = media.offset + media.length // 2
    check = _check(tmp_path, data[:cut], gzipped=False)
    (problem,) = check.record_problems
    assert _names(problem, media, 3)
    # warcio's record length, uncompressed, is the WARC header and the block.
    header = media.length - media.content_length
    there = cut - media.offset - header
    assert problem.endswith(
        f"it is cut short: {there} of its {media.content_length} block bytes could be read"
    )
    assert check.records == 3  # the screenshot after the cut is simply not there


def test_invalid_gzipped_warc_cut_mid_record_says_where(tmp_path: Path, reading: str) -> None:
    data = _warc()
    media = _records(data)[2]
    cut = media.offset + media.length // 2  # inside the media record's gzip member
    check = _check(tmp_path, data[:cut])
    (problem,) = check.record_problems
    assert _names(problem, media, 3)
    assert "it is cut short:" in problem
    assert check.file_problems == (
        f"the file ends inside a gzip member (member 3, from offset {media.offset}): "
        "it was cut short",
    )


def test_invalid_warc_cut_inside_a_record_header_says_so(tmp_path: Path, gzipped: bool) -> None:
    data = _warc(gzipped=gzipped)
    shot = _records(data)[3]
    plain = gzip.decompress(data[shot.offset :]) if gzipped else data[shot.offset :]
    cut_in_header = plain.index(b"WARC-Record-ID")
    if gzipped:
        # The same record header, cut, as the last gzip member.
        short = data[: shot.offset] + gzip.compress(plain[:cut_in_header])[:-8]
    else:
        short = data[: shot.offset + cut_in_header]
    check = _check(tmp_path, short, gzipped=gzipped)
    assert check.record_problems == (
        f"record 4 at offset {shot.offset} (resource): "
        "the file ends inside its WARC header (cut short)",
    )


def test_invalid_garbage_after_the_last_member_says_where_it_begins(
    tmp_path: Path, reading: str
) -> None:
    data = _warc()
    check = _check(tmp_path, data + b"\0\0 trailing bytes that are not gzip")
    assert check.record_problems == ()
    assert check.records == 4
    assert check.file_problems == (
        f"bytes after gzip member 4, from offset {len(data)}, are not gzip",
    )


# Invalid: gzip framing -------------------------------------------------------------------


def test_invalid_flipped_body_byte_names_the_member_and_the_record(
    tmp_path: Path, reading: str
) -> None:
    # A byte flipped in a stored (uncompressed) member: zlib finds it only by the CRC,
    # in the same call that would hand on the member's last bytes. They are still
    # inflated, so the record itself is checked, and named.
    data = bytearray(_warc())
    media = _records(bytes(data))[2]
    data[media.offset + media.length // 2] ^= 0x01
    check = _check(tmp_path, bytes(data))
    block, payload = check.record_problems
    assert _names(block, media, 3) and _names(payload, media, 3)
    assert "block digest failed" in block and "payload digest failed" in payload
    assert check.file_problems == (
        f"gzip member 3 (from offset {media.offset}) is corrupt "
        "(Error -3 while decompressing data: incorrect data check)",
    )


def test_invalid_records_sharing_one_gzip_member_are_named(tmp_path: Path) -> None:
    # warcio refuses such a file ("non-chunked gzip"); the check, which inflates the file
    # itself, must refuse it too.
    plain = _warc(gzipped=False)
    check = _check(tmp_path, gzip.compress(plain))
    assert len(check.record_problems) == 3
    for number, problem in enumerate(check.record_problems, start=2):
        assert problem.startswith(f"record {number} in the gzip member at offset 0 (")
        assert problem.endswith(
            "it does not begin a gzip member (each record must be its own member)"
        )


def test_invalid_warc_compressed_twice_is_not_read_as_a_warc(tmp_path: Path) -> None:
    check = _check(tmp_path, gzip.compress(_warc()))
    assert check.records == 0
    assert check.record_problems == (
        "gzip member 1 holds gzip data, not a WARC record (compressed twice?)",
    )


# verify reads each WARC byte once ---------------------------------------------------------


def _failed_steps(report: ItemReport) -> list[int]:
    return [step.number for step in report.steps if not step.ok]


def _sealed(tmp_path: Path, signer: Signer, warc: bytes) -> ItemReport:
    item = tmp_path / ITEM
    item.mkdir()
    (item / "archive.warc.gz").write_bytes(warc)
    (item / "text.txt").write_bytes(b"the post's visible text\n")
    seal_item(
        item,
        item_id=ITEM,
        case_id=CASE,
        status="complete",
        provenance={"requested_url": PAGE, "final_url": PAGE},
        signer=signer,
    )
    return verify_item(item)


def _bytes_read() -> int:
    """Bytes this process has read through read(2) and the like, threads included."""
    with open("/proc/self/io") as io_counts:
        for line in io_counts:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="needs Linux /proc/self/io")
@pytest.mark.parametrize("media_mib", [1, 12], ids=["small-inline", "large-threaded"])
def test_verify_reads_each_warc_byte_once(tmp_path: Path, signer: Signer, media_mib: int) -> None:
    warc = _warc(media_size=media_mib << 20)
    report = _sealed(tmp_path, signer, warc)  # verifies once: everything is imported, cached
    assert report.ok, [s.detail for s in report.steps if not s.ok]
    item_dir = tmp_path / ITEM
    before = _bytes_read()
    assert verify_item(item_dir).ok
    read = _bytes_read() - before
    # Besides the WARC, verify reads only a few KiB (the manifest, its signature,
    # SHA256SUMS, text.txt). Reading the WARC twice would be twice its size.
    assert len(warc) <= read < len(warc) + (256 << 10)


def test_flipped_warc_byte_still_fails_step_4_by_name_and_step_6_by_record(
    tmp_path: Path, signer: Signer
) -> None:
    warc = _warc(media_size=6 << 20)
    report = _sealed(tmp_path, signer, warc)
    assert report.ok
    path = tmp_path / ITEM / "archive.warc.gz"
    data = bytearray(path.read_bytes())
    media = _records(bytes(data))[2]
    data[media.offset + media.length // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify_item(tmp_path / ITEM)
    assert _failed_steps(report) == [4, 6]
    assert report.step(4).detail.startswith("archive.warc.gz has SHA-256 ")
    assert report.step(4).detail.endswith(
        ", the manifest lists " + hashlib.sha256(warc).hexdigest()
    )
    block, payload, parsed, member = (
        p.removeprefix("archive.warc.gz: ") for p in report.step(6).problems
    )
    assert _names(block, media, 3) and "block digest failed" in block
    assert _names(payload, media, 3) and "payload digest failed" in payload
    assert parsed.startswith("the bytes parsed are not the bytes the manifest lists")
    assert member.startswith(f"gzip member 3 (from offset {media.offset}) is corrupt")


def test_warc_of_the_wrong_size_is_still_checked_by_step_6(tmp_path: Path, signer: Signer) -> None:
    # Step 4 stops at the size (it does not read the file); step 6 then reads it itself.
    warc = _warc()
    assert _sealed(tmp_path, signer, warc).ok
    path = tmp_path / ITEM / "archive.warc.gz"
    path.write_bytes(warc + b"junk")
    report = verify_item(tmp_path / ITEM)
    assert _failed_steps(report) == [4, 6]
    assert report.step(4).detail == (
        f"archive.warc.gz is {len(warc) + 4} bytes, the manifest lists {len(warc)}"
    )
    assert report.step(6).problems == (
        "archive.warc.gz: the bytes parsed are not the bytes the manifest lists "
        "(the file changed during verification, or differs from the manifest)",
        f"archive.warc.gz: bytes after gzip member 4, from offset {len(warc)}, are not gzip",
    )


@pytest.mark.parametrize(
    ("kind", "level"),
    [
        ("random", 0),
        ("one-zero-byte-in-four", 1),
        ("text", 6),
        ("tiny", 6),
        ("video-with-its-index-first", 0),
    ],
)
def test_each_record_is_deflated_at_the_level_its_body_deserves(
    tmp_path: Path, kind: str, level: int
) -> None:
    # Stored when deflating gains nothing (video), fast when it gains little (a PNG
    # screenshot), thorough for text; judged on a trial of the body's first 64 KiB.
    random = os.urandom(256 * 1024)
    body = {
        "random": random,
        "one-zero-byte-in-four": bytes(b if i % 4 else 0 for i, b in enumerate(random)),
        "text": b"The footbridge over the river stays open through the winter. " * 4000,
        "tiny": b"ok",
        # An MP4 made for streaming starts with its index (the moov box), which compresses.
        "video-with-its-index-first": b"moov" * 40_000 + os.urandom(1024 * 1024),
    }[kind]
    path = tmp_path / "body"
    path.write_bytes(body)
    assert _gzip_level(path) == _gzip_level(body) == level
