"""verify_item / verify_case and ``python -m chain_of_custody verify`` on real item directories.

Each broken fixture must fail at the step that describes its damage, and only there.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from chain_of_custody.custody import build_entry, build_head
from chain_of_custody.errors import IntegrityError, UsageError
from chain_of_custody.hashing import HashingReader
from chain_of_custody.item import (
    MANIFEST_FORMAT,
    FileEntry,
    build_manifest,
    load_manifest,
    write_signed_manifest,
)
from chain_of_custody.signing import Signer, generate_private_key
from chain_of_custody.verify import ItemReport, verify_case, verify_item

CASE = "CASE-2026-0042"
ITEM = "20261125T120000Z-0001"
POST_URL = "https://example.org/posts/1"
POST_BODY = "<html><body><p>مرحبا 📸</p></body></html>".encode()
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
# What a real case's first custody entry records (FORMAT.md section 10).
CASE_OPENED = {
    "title": "Threats posted to a school forum",
    "category": "online-crime",
    "investigator": "DC Jane Doe",
    "authority": "DI R. Patel, approval 26-031",
}


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(operator="DC Jane Doe", private_key=generate_private_key())


@pytest.fixture(scope="module")
def other_signer() -> Signer:
    return Signer(operator="Someone Else", private_key=generate_private_key())


def _sha256(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return "sha256:" + digest.hexdigest()


def _warc_bytes(*, corrupt_block_digest: bool = False) -> bytes:
    """A gzipped WARC/1.1 with a warcinfo, a request and a response record, SHA-256 digests.

    Digests are passed in (with explicit lengths) because warcio computes SHA-1 by default.
    """
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
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
    request_headers = StatusAndHeaders(
        "GET /posts/1 HTTP/1.1", [("Host", "example.org")], is_http_request=True
    )
    request_head = request_headers.to_bytes()
    writer.write_record(
        writer.create_warc_record(
            POST_URL,
            "request",
            payload=io.BytesIO(b""),
            length=0,
            http_headers=request_headers,
            warc_headers_dict={
                "WARC-Block-Digest": _sha256(request_head),
                "WARC-Payload-Digest": _sha256(b""),
            },
        )
    )
    response_headers = StatusAndHeaders(
        "200 OK",
        [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(POST_BODY)))],
        protocol="HTTP/1.1",
    )
    response_head = response_headers.to_bytes()
    block = _sha256(response_head, POST_BODY)
    if corrupt_block_digest:
        block = _sha256(response_head, POST_BODY, b"x")
    writer.write_record(
        writer.create_warc_record(
            POST_URL,
            "response",
            payload=io.BytesIO(POST_BODY),
            length=len(POST_BODY),
            http_headers=response_headers,
            warc_headers_dict={
                "WARC-Block-Digest": block,
                "WARC-Payload-Digest": _sha256(POST_BODY),
            },
        )
    )
    return out.getvalue()


@dataclass(frozen=True)
class Capture:
    home: Path
    case_dir: Path
    item_dir: Path
    log: Path
    manifest_sha256: str


def _make_capture(
    tmp_path: Path,
    signer: Signer,
    *,
    warc: bytes | None = None,
    record_in_log: bool = True,
) -> Capture:
    """A case home with one complete item and a custody log (opened by ``signer``, with
    its signed head) recording its capture."""
    case_dir = tmp_path / "home" / CASE
    item_dir = case_dir / "items" / ITEM
    (item_dir / "assets").mkdir(parents=True)
    (item_dir / "capture.warc.gz").write_bytes(_warc_bytes() if warc is None else warc)
    (item_dir / "screenshot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2048))
    (item_dir / "page.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(1024))
    (item_dir / "assets" / "manifest.json").write_bytes(b'{"name":"a web app manifest"}')
    files = [
        FileEntry.from_file(item_dir, "capture.warc.gz", "application/warc"),
        FileEntry.from_file(item_dir, "screenshot.png", "image/png"),
        FileEntry.from_file(item_dir, "page.pdf", "application/pdf"),
        FileEntry.from_file(item_dir, "assets/manifest.json", "application/manifest+json"),
    ]
    manifest = build_manifest(
        item_id=ITEM,
        case_id=CASE,
        status="complete",
        provenance={"url": POST_URL, "final_url": POST_URL, "title": "مرحبا", "http_status": 200},
        files=files,
        signer=signer,
        created="2026-11-25T12:00:05.000000Z",
    )
    write_signed_manifest(item_dir, manifest, signer)
    manifest_sha256 = hashlib.sha256(manifest).hexdigest()
    lines = [
        build_entry(
            case_id=CASE,
            prev_line=None,
            seq=1,
            time="2026-11-25T11:00:00.000000Z",
            actor=signer.operator,
            action="case-opened",
            item_id=None,
            details=CASE_OPENED,
            signer=signer,
        )
    ]
    if record_in_log:
        lines.append(
            build_entry(
                case_id=CASE,
                prev_line=lines[-1],
                seq=2,
                time="2026-11-25T12:00:06.000000Z",
                actor=signer.operator,
                action="captured",
                item_id=ITEM,
                details={"manifest_sha256": manifest_sha256, "url": POST_URL},
                signer=signer,
            )
        )
    log = case_dir / "custody.jsonl"
    log.write_bytes(b"".join(lines))
    (case_dir / "custody.head").write_bytes(
        build_head(
            case_id=CASE,
            seq=len(lines),
            last_line=lines[-1],
            time="2026-11-25T12:00:07.000000Z",
            signer=signer,
        )
    )
    return Capture(tmp_path / "home", case_dir, item_dir, log, manifest_sha256)


@pytest.fixture
def valid_capture(tmp_path: Path, signer: Signer) -> Capture:
    return _make_capture(tmp_path, signer)


def _failed_steps(report: ItemReport) -> list[int]:
    return [step.number for step in report.steps if not step.ok]


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# The valid item ------------------------------------------------------------------------


def test_valid_item_passes_all_seven_steps(valid_capture: Capture, signer: Signer) -> None:
    report = verify_item(valid_capture.item_dir)
    assert report.ok, [s.detail for s in report.steps if not s.ok]
    assert report.item_id == ITEM
    assert [s.number for s in report.steps] == [1, 2, 3, 4, 5, 6, 7]
    assert not any(s.skipped for s in report.steps)
    assert "3 records in 1 WARC file(s)" in report.step(6).detail
    assert "line 2 records this manifest" in report.step(7).detail
    trusted = verify_item(valid_capture.item_dir, trusted_fingerprints=[signer.fingerprint])
    assert trusted.ok


def test_valid_manifest_content(valid_capture: Capture, signer: Signer) -> None:
    document = load_manifest((valid_capture.item_dir / "manifest.json").read_bytes())
    assert document["manifest_format"] == MANIFEST_FORMAT
    assert [f["path"] for f in document["files"]] == [
        "assets/manifest.json",
        "capture.warc.gz",
        "page.pdf",
        "screenshot.png",
    ]
    assert document["signer"]["fingerprint"] == signer.fingerprint
    assert document["signer"]["algorithm"] == "ECDSA-P384-SHA256"
    assert document["provenance"]["title"] == "مرحبا"


@pytest.mark.skipif(not Path(OPENSSL).exists(), reason="openssl not installed")
def test_valid_manifest_signature_verifies_with_openssl(
    valid_capture: Capture, tmp_path: Path
) -> None:
    document = load_manifest((valid_capture.item_dir / "manifest.json").read_bytes())
    pub = tmp_path / "pub.pem"
    pub.write_text(document["signer"]["public_key"])
    result = subprocess.run(
        [
            OPENSSL,
            "dgst",
            "-sha256",
            "-verify",
            str(pub),
            "-signature",
            str(valid_capture.item_dir / "manifest.json.sig"),
            str(valid_capture.item_dir / "manifest.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == "Verified OK"


def test_valid_item_outside_a_case_folder_without_log_skips_step_7(
    valid_capture: Capture,
) -> None:
    # Nothing of a case is left beside items/: neither case.json nor the log nor its head.
    valid_capture.log.unlink()
    (valid_capture.case_dir / "custody.head").unlink()
    report = verify_item(valid_capture.item_dir)
    assert report.ok
    assert report.step(7).skipped and report.step(7).ok


def test_invalid_case_folder_whose_log_was_deleted_fails_step_7(valid_capture: Capture) -> None:
    (valid_capture.case_dir / "case.json").write_text("{}")
    valid_capture.log.unlink()
    report = verify_item(valid_capture.item_dir)
    assert _failed_steps(report) == [7]
    assert "custody log" in report.step(7).detail and "missing" in report.step(7).detail


def test_invalid_item_renamed_inside_its_case_fails_step_1(valid_capture: Capture) -> None:
    (valid_capture.case_dir / "case.json").write_text("{}")
    renamed = valid_capture.item_dir.parent / "20990101T000000Z-deadbeef"
    valid_capture.item_dir.rename(renamed)
    report = verify_item(renamed)
    assert 1 in _failed_steps(report)
    assert "the folder is named 20990101T000000Z-deadbeef" in report.step(1).detail


def test_valid_item_with_an_explicit_log_elsewhere(valid_capture: Capture, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere.jsonl"
    valid_capture.log.rename(moved)
    report = verify_item(valid_capture.item_dir, custody_log=moved)
    assert report.ok and not report.step(7).skipped


# Each kind of damage fails at its step -------------------------------------------------


def test_invalid_flipped_byte_in_a_file_fails_step_4(valid_capture: Capture) -> None:
    _flip_byte(valid_capture.item_dir / "screenshot.png", 100)
    report = verify_item(valid_capture.item_dir)
    assert _failed_steps(report) == [4]
    assert "screenshot.png has SHA-256" in report.step(4).detail


def test_invalid_truncated_file_fails_step_4(valid_capture: Capture) -> None:
    path = valid_capture.item_dir / "page.pdf"
    path.write_bytes(path.read_bytes()[:-1])
    report = verify_item(valid_capture.item_dir)
    assert _failed_steps(report) == [4]
    assert "page.pdf is 1032 bytes, the manifest lists 1033" in report.step(4).detail


def test_invalid_missing_file_fails_step_4(valid_capture: Capture) -> None:
    (valid_capture.item_dir / "assets" / "manifest.json").unlink()
    report = verify_item(valid_capture.item_dir)
    assert _failed_steps(report) == [4]
    assert "assets/manifest.json is missing" in report.step(4).detail


def test_invalid_extra_file_fails_step_5(valid_capture: Capture) -> None:
    (valid_capture.item_dir / "assets" / "planted.js").write_bytes(b"alert(1)")
    report = verify_item(valid_capture.item_dir)
    assert _failed_steps(report) == [5]
    assert report.step(5).problems == ("assets/planted.js is not listed in the manifest",)


def _write_sums(item_dir: Path) -> Path:
    import hashlib

    lines = []
    for path in sorted(p for p in item_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(item_dir).as_posix()
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {rel}\n")
    sums = item_dir / "SHA256SUMS"
    sums.write_text("".join(lines))
    return sums


def test_valid_sha256sums_next_to_the_manifest_is_allowed(valid_capture: Capture) -> None:
    _write_sums(valid_capture.item_dir)
    assert verify_item(valid_capture.item_dir).ok


def test_invalid_sha256sums_that_disagrees_fails_step_5(valid_capture: Capture) -> None:
    sums = _write_sums(valid_capture.item_dir)
    sums.write_text(sums.read_text().replace("page.pdf", "page.PDF"))
    report = verify_item(valid_capture.item_dir)
    assert _failed_steps(report) == [5]
    assert "SHA256SUMS disagrees" in report.step(5).detail


def test_invalid_symlink_in_item_fails_step_5(valid_capture: Capture, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (valid_capture.item_dir / "linked").symlink_to(outside)
    report = verify_item(valid_capture.item_dir)
    assert _failed_steps(report) == [5]
    assert "linked is a symbolic link" in report.step(5).detail


def test_invalid_signature_fails_step_2(valid_capture: Capture) -> None:
    _flip_byte(valid_capture.item_dir / "manifest.json.sig", 20)
    report = verify_item(valid_capture.item_dir)
    assert _failed_steps(report) == [2]


def test_invalid_missing_signature_fails_step_2(valid_capture: Capture) -> None:
    (valid_capture.item_dir / "manifest.json.sig").unlink()
    report = verify_item(valid_capture.item_dir)
    assert _failed_steps(report) == [2]
    assert "manifest.json.sig is missing" in report.step(2).detail


def test_invalid_edited_manifest_fails_steps_2_and_7(valid_capture: Capture) -> None:
    path = valid_capture.item_dir / "manifest.json"
    path.write_bytes(path.read_bytes().replace(b'"status":"complete"', b'"status":"partial"'))
    report = verify_item(valid_capture.item_dir)
    assert _failed_steps(report) == [2, 7]
    assert "hashes to" in report.step(7).detail


def test_invalid_non_canonical_manifest_fails_step_1_and_skips_the_rest(
    valid_capture: Capture,
) -> None:
    path = valid_capture.item_dir / "manifest.json"
    path.write_bytes(path.read_bytes() + b"\n")
    report = verify_item(valid_capture.item_dir)
    assert report.step(1).ok is False
    assert "not canonical JSON" in report.step(1).detail
    assert all(step.skipped and not step.ok for step in report.steps[1:])
    assert report.item_id == ITEM  # falls back to the directory name


def test_invalid_untrusted_signer_fails_step_3(
    valid_capture: Capture, other_signer: Signer
) -> None:
    report = verify_item(valid_capture.item_dir, trusted_fingerprints=[other_signer.fingerprint])
    # The custody log is signed by the same untrusted key, so step 7 fails as well.
    assert _failed_steps(report) == [3, 7]
    assert "is not among the trusted keys" in report.step(3).detail


def test_invalid_item_resigned_by_another_key_fails_only_trust(
    tmp_path: Path, signer: Signer, other_signer: Signer
) -> None:
    capture = _make_capture(tmp_path, other_signer)
    assert verify_item(capture.item_dir).ok
    report = verify_item(capture.item_dir, trusted_fingerprints=[signer.fingerprint.upper()])
    assert 3 in _failed_steps(report)


def test_invalid_warc_record_digest_fails_step_6(tmp_path: Path, signer: Signer) -> None:
    # The manifest hashes this WARC as it is, so only the record-level check sees the lie.
    capture = _make_capture(tmp_path, signer, warc=_warc_bytes(corrupt_block_digest=True))
    report = verify_item(capture.item_dir)
    assert _failed_steps(report) == [6]
    assert "block digest failed" in report.step(6).detail
    assert "record 3" in report.step(6).detail


def test_invalid_warc_that_is_not_a_warc_fails_step_6(tmp_path: Path, signer: Signer) -> None:
    capture = _make_capture(tmp_path, signer, warc=b"this is not a WARC file at all\n")
    report = verify_item(capture.item_dir)
    assert _failed_steps(report) == [6]
    assert "not a WARC record" in report.step(6).detail


def test_invalid_truncated_warc_fails_step_6_even_when_the_manifest_matches(
    tmp_path: Path, signer: Signer
) -> None:
    # Cut inside the last gzip member: warcio alone reads the earlier records and stops.
    full = _warc_bytes()
    capture = _make_capture(tmp_path, signer, warc=full[: len(full) - 10])
    report = verify_item(capture.item_dir)
    assert _failed_steps(report) == [6]
    assert "ends inside a gzip member" in report.step(6).detail


def test_invalid_uncompressed_warc_named_warc_gz_fails_step_6(
    tmp_path: Path, signer: Signer
) -> None:
    capture = _make_capture(tmp_path, signer, warc=gzip.decompress(_warc_bytes()))
    report = verify_item(capture.item_dir)
    assert _failed_steps(report) == [6]
    assert "not gzip-compressed" in report.step(6).detail


def test_invalid_sha1_record_digests_fail_step_6(tmp_path: Path, signer: Signer) -> None:
    # warcio's own default digest; this format requires SHA-256.
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
    writer.write_record(
        writer.create_warc_record(
            POST_URL,
            "resource",
            payload=io.BytesIO(POST_BODY),
            length=len(POST_BODY),
            warc_headers_dict={"Content-Type": "text/html"},
        )
    )
    capture = _make_capture(tmp_path, signer, warc=out.getvalue())
    report = verify_item(capture.item_dir)
    assert _failed_steps(report) == [6]
    assert "WARC-Block-Digest is not sha256: sha1:" in report.step(6).detail


def _empty_resource_warc(block_digest: str) -> bytes:
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True, warc_version="WARC/1.1")
    writer.write_record(
        writer.create_warc_record(
            POST_URL,
            "resource",
            payload=io.BytesIO(b""),
            length=0,
            warc_headers_dict={
                "WARC-Block-Digest": block_digest,
                "WARC-Payload-Digest": _sha256(b""),
                "Content-Type": "text/plain",
            },
        )
    )
    return out.getvalue()


def test_empty_warc_records_have_their_digest_checked(tmp_path: Path, signer: Signer) -> None:
    valid = _make_capture(tmp_path / "valid", signer, warc=_empty_resource_warc(_sha256(b"")))
    assert verify_item(valid.item_dir).ok
    invalid = _make_capture(
        tmp_path / "invalid", signer, warc=_empty_resource_warc(_sha256(b"not empty"))
    )
    report = verify_item(invalid.item_dir)
    assert _failed_steps(report) == [6]
    assert "WARC-Block-Digest of its empty block is wrong" in report.step(6).detail


def test_invalid_warc_flipped_byte_fails_steps_4_and_6(valid_capture: Capture) -> None:
    path = valid_capture.item_dir / "capture.warc.gz"
    _flip_byte(path, len(path.read_bytes()) // 2)
    report = verify_item(valid_capture.item_dir)
    assert _failed_steps(report) == [4, 6]


def test_invalid_log_without_the_capture_fails_step_7(tmp_path: Path, signer: Signer) -> None:
    capture = _make_capture(tmp_path, signer, record_in_log=False)
    report = verify_item(capture.item_dir)
    assert _failed_steps(report) == [7]
    assert f"no 'captured' entry for item {ITEM}" in report.step(7).detail


def test_invalid_tampered_log_fails_step_7(valid_capture: Capture) -> None:
    data = valid_capture.log.read_bytes()
    valid_capture.log.write_bytes(data.replace(b"case-opened", b"case-closed"))
    report = verify_item(valid_capture.item_dir)
    assert _failed_steps(report) == [7]
    assert "does not verify as the log of case" in report.step(7).detail


def test_not_an_item_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a captured item"):
        verify_item(tmp_path)
    with pytest.raises(UsageError):
        verify_item(tmp_path / "does-not-exist")


def test_missing_explicit_log_is_a_usage_error(valid_capture: Capture, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        verify_item(valid_capture.item_dir, custody_log=tmp_path / "nope.jsonl")


def test_malformed_trusted_fingerprint_is_a_usage_error(valid_capture: Capture) -> None:
    with pytest.raises(UsageError, match="fingerprint"):
        verify_item(valid_capture.item_dir, trusted_fingerprints=["abc"])


# Cases ------------------------------------------------------------------------------


def test_valid_case(valid_capture: Capture) -> None:
    report = verify_case(valid_capture.case_dir)
    assert report.ok, report.problems
    assert report.case_id == CASE
    assert report.chain is not None and report.chain.entries == 2
    assert [item.item_id for item in report.items] == [ITEM]


def test_invalid_case_with_a_deleted_item(valid_capture: Capture) -> None:
    shutil.rmtree(valid_capture.item_dir)
    report = verify_case(valid_capture.case_dir)
    assert not report.ok
    assert report.problems == (
        f"custody.jsonl line 2 records item {ITEM} as captured, but items/{ITEM} is missing",
    )


def test_invalid_case_with_an_abandoned_item_dir(valid_capture: Capture) -> None:
    (valid_capture.case_dir / "items" / "half-done").mkdir()
    report = verify_case(valid_capture.case_dir)
    assert not report.ok
    assert any("items/half-done has no manifest.json" in p for p in report.problems)


# Manifest building -----------------------------------------------------------------


def test_build_manifest_validates(tmp_path: Path, signer: Signer) -> None:
    entry = FileEntry(path="a.txt", size=1, sha256="0" * 64, media_type="text/plain")

    def build(files: list[FileEntry], status: str = "complete") -> bytes:
        return build_manifest(
            item_id=ITEM,
            case_id=CASE,
            status=status,
            provenance={},
            files=files,
            signer=signer,
        )

    assert load_manifest(build([entry]))["status"] == "complete"
    with pytest.raises(ValueError, match="status"):
        build([entry], status="done")
    with pytest.raises(ValueError, match="twice"):
        build([entry, entry])
    with pytest.raises(ValueError, match="twice"):
        build([entry, FileEntry("A.TXT", 1, "0" * 64, "text/plain")])
    with pytest.raises(ValueError, match="own manifest"):
        build([FileEntry("manifest.json.sig", 1, "0" * 64, "application/octet-stream")])
    for invalid_path in ("/etc/passwd", "../x", "a/../b", "a//b", "./a", "a\\b", ""):
        with pytest.raises(ValueError):
            FileEntry(invalid_path, 1, "0" * 64, "text/plain")
    with pytest.raises(TypeError, match="float"):
        build_manifest(
            item_id=ITEM,
            case_id=CASE,
            status="complete",
            provenance={"zoom": 1.5},
            files=[entry],
            signer=signer,
        )


def test_load_manifest_rejects_malformed(signer: Signer) -> None:
    with pytest.raises(IntegrityError, match="not canonical"):
        load_manifest(b'{"a": 1}')
    with pytest.raises(IntegrityError, match="missing field"):
        load_manifest(b'{"item_id":"x"}')


def test_write_signed_manifest_never_overwrites(valid_capture: Capture, signer: Signer) -> None:
    manifest = (valid_capture.item_dir / "manifest.json").read_bytes()
    with pytest.raises(UsageError, match="never rewritten"):
        write_signed_manifest(valid_capture.item_dir, manifest, signer)


def test_from_file_refuses_symlinks(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("x")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")
    with pytest.raises(UsageError, match="not a regular file"):
        FileEntry.from_file(tmp_path, "link.txt", "text/plain")


def test_hashing_reader_sees_the_bytes_warcio_parses() -> None:
    data = _warc_bytes()
    reader = HashingReader(io.BytesIO(data))
    records = [r.rec_type for r in ArchiveIterator(reader, check_digests=True)]
    reader.drain()
    assert records == ["warcinfo", "request", "response"]
    assert reader.hexdigest() == hashlib.sha256(data).hexdigest()


# The command line ------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chain_of_custody", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_verifies_an_item(valid_capture: Capture) -> None:
    result = _cli("verify", str(valid_capture.item_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("VERIFIED")
    assert "7. custody log records this capture" in result.stdout


def test_cli_verifies_a_case_as_json(valid_capture: Capture, signer: Signer) -> None:
    result = _cli("verify", str(valid_capture.case_dir), "--trust", signer.fingerprint, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["kind"] == "case"
    assert document["target"] == str(valid_capture.case_dir)
    item_checks = [c for c in document["checks"] if c["target"].endswith(f"items/{ITEM}")]
    assert [c["step"] for c in item_checks] == [1, 2, 3, 4, 5, 6, 7]
    assert [c["step"] for c in document["checks"][:2]] == [8, 9]
    assert set(document["checks"][0]) == {"step", "check", "target", "ok", "detail"}


def test_cli_reports_integrity_failure_with_exit_1(valid_capture: Capture) -> None:
    _flip_byte(valid_capture.item_dir / "page.pdf", 50)
    result = _cli("verify", str(valid_capture.item_dir))
    assert result.returncode == 1
    assert "FAIL" in result.stdout and result.stdout.strip().endswith("FAILED")


def test_cli_usage_errors_are_one_line_with_exit_2(tmp_path: Path, valid_capture: Capture) -> None:
    for args in (
        ("verify", str(tmp_path / "missing")),
        ("verify", str(tmp_path)),
        ("verify", str(valid_capture.item_dir), "--trust", "not-a-fingerprint"),
        ("verify",),
        ("frobnicate",),
    ):
        result = _cli(*args)
        assert result.returncode == 2, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
