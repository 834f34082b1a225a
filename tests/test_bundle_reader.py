"""Reading a bundle (.zip) handed to an examiner: hostile zips are refused, naming the
member, before anything is extracted, and nothing is ever written outside a private
temporary folder that is gone afterwards; a real case's bundle verifies, and a changed,
missing or added member is found.

Hand-made zips: with :mod:`zipfile` where it can write them, byte by byte (``_raw_zip``)
where it cannot or would not (encrypted flags, lying sizes, overlapping members, bombs).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import tempfile
import time
import unicodedata
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cases.actions import open_case, publish_capture
from cases.store import EvidenceStore
from chain_of_custody.bundle import (
    DEFAULT_MAX_RATIO,
    BundleReport,
    open_bundle,
    verify_bundle,
)
from chain_of_custody.errors import EXIT_INTEGRITY, EXIT_USAGE, IntegrityError, UsageError
from chain_of_custody.item import seal_item
from chain_of_custody.signing import Signer, generate_private_key

CASE = "2026-0142"
OPERATOR = "Det. A. Example"
URL = "https://social.example/post/1"
CASE_FIELDS = {
    "title": "Missing teenager, Riverside",
    "category": "missing-person",
    "investigator": "Det. A. Example",
    "authority": "Policy IV.B.1(a); supervisor approval 2026-11-20",
}
GIB = 1 << 30


# -- where things may be written -----------------------------------------------------------


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """tempfile's folder for this test, and an empty working directory: both must hold
    nothing when the test ends (no leftover extraction, nothing written beside it)."""
    tmp = tmp_path / "tmp"
    cwd = tmp_path / "cwd"
    tmp.mkdir()
    cwd.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.chdir(cwd)
    yield tmp
    assert list(tmp.iterdir()) == [], "a temporary folder was left behind"
    assert list(cwd.iterdir()) == [], "something was written into the working directory"


# -- a real case, and zips of it -----------------------------------------------------------


@dataclass(frozen=True)
class CaseFolder:
    path: Path
    item_id: str
    signer: Signer

    def files(self) -> dict[str, bytes]:
        """The case folder's files by bundle path (lock files are not evidence)."""
        return {
            p.relative_to(self.path).as_posix(): p.read_bytes()
            for p in sorted(self.path.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")
        }


@pytest.fixture(scope="module")
def case_folder(tmp_path_factory: pytest.TempPathFactory) -> CaseFolder:
    signer = Signer(operator=OPERATOR, private_key=generate_private_key())
    store = EvidenceStore(tmp_path_factory.mktemp("home") / "evidence")
    open_case(store, CASE, signer=signer, **CASE_FIELDS)
    staging = store.new_item(CASE)
    (staging.path / "text.txt").write_text("the post's visible text\n", encoding="utf-8")
    (staging.path / "dom.html").write_text("<html><body>post</body></html>\n", encoding="utf-8")
    (staging.path / "screenshot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(4096))
    sealed = seal_item(
        staging.path,
        item_id=staging.item_id,
        case_id=CASE,
        status="partial",
        provenance={"requested_url": URL, "final_url": URL},
        signer=signer,
    )
    publish_capture(
        store,
        CASE,
        staging,
        manifest_sha256=sealed.manifest_sha256,
        requested_url=URL,
        final_url=URL,
        status="partial",
        files=3,
        signer=signer,
    )
    return CaseFolder(path=store.case_dir(CASE), item_id=staging.item_id, signer=signer)


def _sums(files: dict[str, bytes]) -> bytes:
    return "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items())
    ).encode()


def _write_zip(path: Path, files: dict[str, bytes], *, sums: bytes | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            method = zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED
            zf.writestr(name, data, compress_type=method)
        if sums is not None:
            zf.writestr("SHA256SUMS", sums, compress_type=zipfile.ZIP_DEFLATED)
    return path


def _bundle(tmp_path: Path, case: CaseFolder, name: str = "bundle.zip") -> Path:
    files = case.files()
    return _write_zip(tmp_path / name, files, sums=_sums(files))


# -- zips byte by byte ---------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """One member as written: ``data`` are the bytes stored (compressed if ``method`` 8)."""

    name: str
    data: bytes = b""
    method: int = zipfile.ZIP_STORED
    file_size: int | None = None  # default: len(data)
    crc: int | None = None  # default: CRC-32 of data
    flags: int = 0
    local_flags: int | None = None  # default: flags
    mode: int = stat.S_IFREG | 0o644

    def sizes(self) -> tuple[int, int, int]:
        size = len(self.data) if self.file_size is None else self.file_size
        crc = zlib.crc32(self.data) if self.crc is None else self.crc
        return crc, len(self.data), size


def _local(member: Raw) -> bytes:
    name = member.name.encode("utf-8")
    flags = (member.flags if member.local_flags is None else member.local_flags) | 0x800
    crc, csize, size = member.sizes()
    header = struct.pack(
        "<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, flags, member.method, 0, 0x21,
        crc, csize, size, len(name), 0,
    )  # fmt: skip
    return header + name + member.data


def _central(member: Raw, offset: int) -> bytes:
    name = member.name.encode("utf-8")
    crc, csize, size = member.sizes()
    header = struct.pack(
        "<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, member.flags | 0x800, member.method,
        0, 0x21, crc, csize, size, len(name), 0, 0, 0, 0, member.mode << 16, offset,
    )  # fmt: skip
    return header + name


def _end(count: int, cd_size: int, cd_offset: int) -> bytes:
    return struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, cd_size, cd_offset, 0)


def _raw_zip(path: Path, members: list[Raw]) -> Path:
    body = bytearray()
    central = bytearray()
    for member in members:
        central += _central(member, len(body))
        body += _local(member)
    path.write_bytes(bytes(body + central) + _end(len(members), len(central), len(body)))
    return path


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def _deflated_zeros(total: int) -> tuple[bytes, int]:
    """Raw deflate of ``total`` zero bytes, and their CRC-32, made in about a second.

    A 64 MiB block of zeros is compressed once and ended with a full flush (byte-aligned,
    referring to nothing before it), so copies of it chain into one valid stream.
    """
    chunk = 64 << 20
    assert total % chunk == 0
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(chunk)
    segment = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()  # an empty last block
    crc = 0
    for _ in range(total // chunk):
        crc = zlib.crc32(zeros, crc)
    return segment * (total // chunk) + final, crc


def _refused(path: Path, *fragments: str, **limits: int) -> IntegrityError:
    """The bundle is refused with an IntegrityError of one line containing ``fragments``;
    both entry points agree."""
    with pytest.raises(IntegrityError) as opened, open_bundle(path, **limits):
        pytest.fail("the bundle was opened")
    with pytest.raises(IntegrityError) as verified:
        verify_bundle(path, **limits)
    assert opened.value.one_line() == verified.value.one_line()
    error = opened.value
    assert error.exit_code == EXIT_INTEGRITY
    line = error.one_line()
    assert "\n" not in line
    assert str(path) in line
    for fragment in fragments:
        assert fragment in line, line
    return error


# -- not a zip, or a damaged one -----------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"PK",
        b"this is not a zip file, it is a note\n" * 20,
        os.urandom(5000),
        b"PK\x05\x06" + b"\xff" * 18,  # an end record pointing nowhere
    ],
    ids=["empty", "two-bytes", "text", "random", "bogus-end-record"],
)
def test_garbage_is_not_a_readable_zip(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.zip"
    path.write_bytes(content)
    _refused(path, "is not a readable zip file")


def test_a_bundle_cut_short_anywhere_is_one_clear_line(
    tmp_path: Path, case_folder: CaseFolder
) -> None:
    whole = _bundle(tmp_path, case_folder).read_bytes()
    cd_start = struct.unpack("<L", whole[-6:-2])[0]
    with zipfile.ZipFile(tmp_path / "bundle.zip") as zf:
        first_data = zf.infolist()[0].header_offset + 30 + len(zf.infolist()[0].filename)
    cuts = {
        "in a local header": 10,
        "mid-member data": first_data + 5,
        "half way": len(whole) // 2,
        "at the central directory": cd_start,
        "mid-central-directory": cd_start + (len(whole) - 22 - cd_start) // 2,
        "mid-end-record": len(whole) - 10,
        "one byte short": len(whole) - 1,
    }
    for where, size in cuts.items():
        path = tmp_path / f"cut-{size}.zip"
        path.write_bytes(whole[:size])
        error = _refused(path, "is not a readable zip file")
        assert error.exit_code == EXIT_INTEGRITY, where


def test_bytes_missing_from_the_middle_are_refused(tmp_path: Path, case_folder: CaseFolder) -> None:
    whole = _bundle(tmp_path, case_folder).read_bytes()
    path = tmp_path / "holed.zip"
    path.write_bytes(whole[:200] + whole[300:])
    _refused(path, "is refused: member 'case.json': its local header")


def test_a_changed_byte_in_member_data_fails_its_crc(
    tmp_path: Path, case_folder: CaseFolder
) -> None:
    bundle = _bundle(tmp_path, case_folder)
    with zipfile.ZipFile(bundle) as zf:
        png = next(i for i in zf.infolist() if i.filename.endswith("screenshot.png"))
    data = bytearray(bundle.read_bytes())
    data[png.header_offset + 30 + len(png.filename) + 100] ^= 0x01  # stored: the file's byte
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(data))
    _refused(damaged, png.filename, "fails its CRC-32 check")


def test_corrupt_deflate_data_are_refused(tmp_path: Path) -> None:
    good = _deflate(b"hello " * 1000)
    bad = good[:5] + bytes(b ^ 0xFF for b in good[5:15]) + good[15:]
    path = _raw_zip(
        tmp_path / "corrupt.zip",
        [Raw("a.txt", bad, zipfile.ZIP_DEFLATED, file_size=6000, crc=zlib.crc32(b"hello " * 1000))],
    )
    _refused(path, "'a.txt'")


# -- names that would escape ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil", "'..' segment"),
        ("../../../evil", "'..' segment"),
        ("a/../../evil", "'..' segment"),
        ("items/../../evil", "'..' segment"),
        ("/abs-evil", "absolute path"),
        ("//abs-evil", "absolute path"),
        ("C:/evil", "drive letter"),
        ("C:evil", "drive letter"),
        ("..\\..\\evil", "backslash"),
        ("items\\evil", "backslash"),
        ("ok.txt\x00../../evil", "control character"),
        ("line\nbreak", "control character"),
        ("a//b", "empty or '.' segment"),
        ("./a", "empty or '.' segment"),
        ("a/./b", "empty or '.' segment"),
        ("x" * 300, "longer than 255 bytes"),
    ],
)
def test_zip_slip_names_are_refused_and_nothing_is_written(
    tmp_path: Path, private_tmp: Path, name: str, why: str
) -> None:
    path = _raw_zip(tmp_path / "slip.zip", [Raw("case.json", b"{}"), Raw(name, b"owned\n")])
    with zipfile.ZipFile(path) as zf:
        assert zf.infolist()[1].orig_filename == name  # the zip really holds that name
    _refused(path, repr(name), why, "nothing was extracted")
    for place in (tmp_path, private_tmp, tmp_path / "cwd", tmp_path.parent):
        assert not (place / "evil").exists()
    assert not Path("/abs-evil").exists()


def test_an_absolute_name_aimed_at_a_real_folder_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "planted.txt"
    path = _raw_zip(tmp_path / "abs.zip", [Raw(str(target), b"owned\n")])
    _refused(path, "absolute path")
    assert not target.exists()


# -- links and other non-files -------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        (stat.S_IFLNK | 0o777, "symbolic link"),
        (stat.S_IFIFO | 0o644, "device, FIFO or socket"),
        (stat.S_IFCHR | 0o644, "device, FIFO or socket"),
        (stat.S_IFSOCK | 0o644, "device, FIFO or socket"),
    ],
    ids=["symlink", "fifo", "device", "socket"],
)
def test_links_and_special_files_are_refused(tmp_path: Path, mode: int, why: str) -> None:
    path = tmp_path / "link.zip"
    info = zipfile.ZipInfo("items/X/archive.warc.gz")
    info.create_system = 3
    info.external_attr = mode << 16
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(info, str(tmp_path / "secret").encode())
    _refused(path, "'items/X/archive.warc.gz'", why)


def test_a_folder_entry_must_look_like_one(tmp_path: Path) -> None:
    path = _raw_zip(tmp_path / "dir.zip", [Raw("items", mode=stat.S_IFDIR | 0o755)])
    _refused(path, "'items'", "marked as a folder")
    path = _raw_zip(tmp_path / "file.zip", [Raw("items/", b"data")])
    _refused(path, "'items/'", "marked as a regular file")


# -- two members, one file -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "why"),
    [
        ("case.json", "case.json", "appears twice"),
        ("items/X/manifest.json", "items/X/manifest.json", "appears twice"),
        ("case.json", "Case.JSON", "letter case"),
        ("items/x/a.txt", "ITEMS/X/A.TXT", "letter case"),
        ("straße.txt", "STRASSE.txt", "letter case"),
        (
            unicodedata.normalize("NFC", "café.txt"),
            unicodedata.normalize("NFD", "café.txt"),
            "Unicode form",
        ),
        ("items", "items/X/manifest.json", "makes it a folder"),
        ("items/X/manifest.json", "Items", "makes it a folder"),
    ],
)
def test_members_landing_on_the_same_file_are_refused(
    tmp_path: Path, first: str, second: str, why: str
) -> None:
    path = tmp_path / "dup.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(first, b"one")
            zf.writestr(second, b"two")
    _refused(path, why)


def test_a_file_and_a_folder_entry_of_one_name_are_refused(tmp_path: Path) -> None:
    path = _raw_zip(
        tmp_path / "dirfile.zip", [Raw("items/", mode=stat.S_IFDIR | 0o755), Raw("items", b"x")]
    )
    _refused(path, "'items'", "appears twice")


# -- encryption and unsupported methods ----------------------------------------------------


def test_an_encrypted_member_is_refused(tmp_path: Path) -> None:
    path = _raw_zip(tmp_path / "enc.zip", [Raw("case.json", b"\x00" * 12 + b"{}", flags=0x1)])
    _refused(path, "'case.json'", "is encrypted")


def test_encryption_flagged_only_in_the_local_header_is_refused(tmp_path: Path) -> None:
    path = _raw_zip(tmp_path / "enc.zip", [Raw("case.json", b"{}", local_flags=0x1)])
    _refused(path, "'case.json'", "is encrypted")


def test_an_unsupported_compression_method_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bz.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as zf:
        zf.writestr("case.json", b"{}")
    _refused(path, "'case.json'", "compression method 12 (bzip2)")


# -- zip bombs and lying sizes -------------------------------------------------------------


@pytest.fixture(scope="module")
def three_gib_of_zeros() -> tuple[bytes, int]:
    return _deflated_zeros(3 * GIB)


def test_a_3_gib_zip_bomb_is_refused_within_seconds(
    tmp_path: Path, private_tmp: Path, three_gib_of_zeros: tuple[bytes, int]
) -> None:
    data, crc = three_gib_of_zeros
    path = _raw_zip(
        tmp_path / "bomb.zip",
        [Raw("items/X/archive.warc.gz", data, zipfile.ZIP_DEFLATED, file_size=3 * GIB, crc=crc)],
    )
    assert path.stat().st_size < 4 << 20
    started = time.monotonic()
    _refused(path, "'items/X/archive.warc.gz'", f"{3 * GIB}", "zip bomb")
    assert time.monotonic() - started < 3
    assert list(private_tmp.iterdir()) == []


def test_a_bomb_within_the_ratio_is_still_bounded_by_size(
    tmp_path: Path, three_gib_of_zeros: tuple[bytes, int]
) -> None:
    data, crc = three_gib_of_zeros
    path = _raw_zip(
        tmp_path / "bomb.zip",
        [Raw("a.bin", data, zipfile.ZIP_DEFLATED, file_size=3 * GIB, crc=crc)],
    )
    started = time.monotonic()
    _refused(path, "'a.bin'", "per member", max_ratio=10_000, max_member=GIB)
    _refused(path, "in all", "more than the limit of", max_ratio=10_000, max_total=2 * GIB)
    assert time.monotonic() - started < 3


def test_many_small_bombs_are_refused_by_the_bundle_ratio(tmp_path: Path) -> None:
    size = 1 << 20  # each at the ratio floor: not one of them is refused on its own
    zeros = _deflate(bytes(size))
    members = [
        Raw(f"m{n}.bin", zeros, zipfile.ZIP_DEFLATED, file_size=size, crc=zlib.crc32(bytes(size)))
        for n in range(300)
    ]
    path = _raw_zip(tmp_path / "bombs.zip", members)
    _refused(path, "in all", f"limit of {DEFAULT_MAX_RATIO} times (a zip bomb)")


def test_a_member_inflating_past_its_declared_size_is_refused(tmp_path: Path) -> None:
    real = b"A" * 200_000
    declared = real[:1000]  # the header claims 1000 bytes (with their CRC)
    path = _raw_zip(
        tmp_path / "liar.zip",
        [
            Raw(
                "items/X/text.txt",
                _deflate(real),
                zipfile.ZIP_DEFLATED,
                file_size=len(declared),
                crc=zlib.crc32(declared),
            )
        ],
    )
    _refused(path, "'items/X/text.txt'", "inflates past the 1000 bytes it declares")


def test_a_member_shorter_than_declared_is_refused(tmp_path: Path) -> None:
    real = b"B" * 5000
    path = _raw_zip(
        tmp_path / "short.zip",
        [Raw("t.txt", _deflate(real), zipfile.ZIP_DEFLATED, file_size=6000, crc=zlib.crc32(real))],
    )
    _refused(path, "'t.txt'", "holds 5000 bytes, but declares 6000")


def test_a_stored_member_with_lying_sizes_is_refused(tmp_path: Path) -> None:
    path = _raw_zip(tmp_path / "stored.zip", [Raw("t.txt", b"abc", file_size=3_000_000_000)])
    _refused(path, "'t.txt'", "stored uncompressed")


def test_overlapping_members_are_refused(tmp_path: Path) -> None:
    """Fifield's non-recursive bomb: one member's data hold another member whole."""
    inner = Raw("inner.txt", b"x" * 100)
    outer = Raw("outer.txt", _local(inner))
    outer_local = _local(outer)
    central = _central(outer, 0) + _central(inner, 30 + len(outer.name))
    path = tmp_path / "overlap.zip"
    path.write_bytes(outer_local + central + _end(2, len(central), len(outer_local)))
    _refused(path, "overlaps member 'outer.txt'")


def test_too_many_members_are_refused_before_they_are_listed(tmp_path: Path) -> None:
    path = _raw_zip(tmp_path / "many.zip", [Raw(f"f{n}") for n in range(50)])
    _refused(path, "declares 50 members, more than the limit of 10", max_members=10)


def test_an_end_record_miscounting_its_members_is_refused(tmp_path: Path) -> None:
    path = _raw_zip(tmp_path / "count.zip", [Raw("a"), Raw("b")])
    data = bytearray(path.read_bytes())
    data[-12:-10] = struct.pack("<H", 1)  # total entries: 1, but 2 are there
    data[-14:-12] = struct.pack("<H", 1)
    path.write_bytes(bytes(data))
    _refused(path, "holds 2 entries, its end record declares 1")


# -- the bundle path itself ----------------------------------------------------------------


def test_a_missing_path_a_folder_or_a_fifo_is_a_usage_error(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.zip"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    cases = (
        (tmp_path / "nope.zip", "does not exist"),
        (tmp_path, "is not a file"),
        (fifo, "is not a file"),
    )
    for path, message in cases:
        with pytest.raises(UsageError, match=message) as caught, open_bundle(path):
            pytest.fail("opened")
        assert caught.value.exit_code == EXIT_USAGE
        with pytest.raises(UsageError, match=message):
            verify_bundle(path)


def test_a_malformed_trusted_fingerprint_is_a_usage_error_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "garbage.zip"
    path.write_bytes(b"garbage")
    with pytest.raises(UsageError, match="--trust"):
        verify_bundle(path, trusted_fingerprints=["not-a-fingerprint"])


# -- a real bundle -------------------------------------------------------------------------


def test_a_real_case_bundle_verifies(tmp_path: Path, case_folder: CaseFolder) -> None:
    bundle = _bundle(tmp_path, case_folder)
    report = verify_bundle(bundle)
    assert report.problems == ()
    assert report.ok
    files = case_folder.files()
    assert report.members == len(files) + 1
    assert report.checksums == len(files)
    assert report.case is not None
    assert report.case.ok
    assert report.case.case_id == CASE
    assert report.case.path == str(bundle)
    assert [item.path for item in report.case.items] == [f"items/{case_folder.item_id}"]
    text = json.dumps(report.to_dict())
    assert str(tempfile.gettempdir()) not in text  # no path into the vanished copy
    assert json.loads(text)["case"]["items"][0]["ok"] is True


def test_zip64_records_and_streamed_members_are_read(
    tmp_path: Path, case_folder: CaseFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What big bundles (zip64 end records and extra fields) and zips written to a pipe
    (sizes in data descriptors after the data) look like: both verify."""
    files = case_folder.files()
    sums = _sums(files)
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)  # forces the zip64 end record
    path = tmp_path / "zip64.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            with zf.open(name, "w", force_zip64=True) as member:
                member.write(data)
        zf.writestr("SHA256SUMS", sums)
    assert b"PK\x06\x06" in path.read_bytes()[-200:]
    report = verify_bundle(path)
    assert report.ok, report.problems

    class Pipe:
        def __init__(self, target: Path) -> None:
            self._file = target.open("wb")

        def write(self, data: bytes) -> int:
            return self._file.write(data)

        def flush(self) -> None:
            self._file.flush()

        def close(self) -> None:
            self._file.close()

    streamed = tmp_path / "streamed.zip"
    pipe = Pipe(streamed)
    with zipfile.ZipFile(pipe, "w", zipfile.ZIP_DEFLATED) as zf:  # type: ignore[arg-type]
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("SHA256SUMS", sums)
    pipe.close()
    with zipfile.ZipFile(streamed) as zf:
        assert all(info.flag_bits & 0x08 for info in zf.infolist())  # data descriptors
    report = verify_bundle(streamed)
    assert report.ok, report.problems


def test_it_verifies_under_the_trusted_key_only(tmp_path: Path, case_folder: CaseFolder) -> None:
    bundle = _bundle(tmp_path, case_folder)
    own = case_folder.signer.fingerprint
    assert verify_bundle(bundle, trusted_fingerprints=[own]).ok
    other = Signer(operator="Someone Else", private_key=generate_private_key()).fingerprint
    report = verify_bundle(bundle, trusted_fingerprints=[other])
    assert not report.ok
    assert any("not among the trusted keys" in p for p in report.problems)


def test_a_bundle_without_sha256sums_is_verified_by_its_case(
    tmp_path: Path, case_folder: CaseFolder
) -> None:
    report = verify_bundle(_write_zip(tmp_path / "nosums.zip", case_folder.files()))
    assert report.ok, report.problems
    assert report.checksums is None


def test_open_bundle_gives_a_private_copy_named_after_the_case(
    tmp_path: Path, private_tmp: Path, case_folder: CaseFolder
) -> None:
    files = case_folder.files()
    path = tmp_path / "modes.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1999, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | 0o6777) << 16  # setuid, world-writable
            zf.writestr(info, data)
        folder = zipfile.ZipInfo("items/", date_time=(1999, 1, 1, 0, 0, 0))
        folder.create_system = 3
        folder.external_attr = (stat.S_IFDIR | 0o777) << 16
        zf.writestr(folder, b"")
    started = time.time()
    with open_bundle(path) as root:
        assert root.name == CASE
        assert root.parent.parent == private_tmp
        assert stat.S_IMODE(root.parent.stat().st_mode) == 0o700
        for name, data in files.items():
            extracted = root / name
            assert extracted.read_bytes() == data
            info = extracted.lstat()
            assert stat.S_ISREG(info.st_mode)
            assert stat.S_IMODE(info.st_mode) == 0o644
            assert info.st_mtime >= started - 5  # the zip's 1999 time is not applied
        for folder_path in (root / "items", root / "items" / case_folder.item_id):
            assert stat.S_IMODE(folder_path.stat().st_mode) == 0o755
        kept = root
    assert not kept.exists()
    assert list(private_tmp.iterdir()) == []


def test_the_copy_is_removed_when_the_block_fails(
    tmp_path: Path, private_tmp: Path, case_folder: CaseFolder
) -> None:
    bundle = _bundle(tmp_path, case_folder)
    with pytest.raises(RuntimeError), open_bundle(bundle) as root:
        (root / "items").chmod(0o500)  # even a folder made read-only in the block
        raise RuntimeError("the caller failed")
    assert list(private_tmp.iterdir()) == []


def test_a_member_failing_mid_extraction_leaves_nothing(
    tmp_path: Path, private_tmp: Path, case_folder: CaseFolder
) -> None:
    files = case_folder.files()
    good = _write_zip(tmp_path / "good.zip", files)
    # The last member, after all the others were extracted, fails its CRC.
    with zipfile.ZipFile(good) as zf:
        last = zf.infolist()[-1]
    data = bytearray(good.read_bytes())
    assert last.compress_type == zipfile.ZIP_DEFLATED
    central = data.rfind(b"PK\x01\x02")  # the last member's central directory entry
    data[central + 16] ^= 0xFF  # its CRC-32
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    _refused(bad, repr(last.filename), "CRC-32")
    assert list(private_tmp.iterdir()) == []


# -- a changed, missing or added member ----------------------------------------------------


def _problems(report: BundleReport) -> str:
    assert not report.ok
    return "\n".join(report.problems)


def test_a_changed_member_is_named(tmp_path: Path, case_folder: CaseFolder) -> None:
    files = case_folder.files()
    sums = _sums(files)
    name = f"items/{case_folder.item_id}/text.txt"
    changed = bytearray(files[name])
    changed[0] ^= 0x20
    files[name] = bytes(changed)
    report = verify_bundle(_write_zip(tmp_path / "changed.zip", files, sums=sums))
    problems = _problems(report)
    assert f"{name} does not match SHA256SUMS line" in problems
    assert f"items/{case_folder.item_id}: step 4" in problems
    assert "text.txt has SHA-256" in problems


def test_a_changed_custody_log_is_named(tmp_path: Path, case_folder: CaseFolder) -> None:
    files = case_folder.files()
    sums = _sums(files)
    files["custody.jsonl"] = files["custody.jsonl"].replace(b"Riverside", b"Riverbend")
    report = verify_bundle(_write_zip(tmp_path / "log.zip", files, sums=sums))
    problems = _problems(report)
    assert "custody.jsonl does not match SHA256SUMS line" in problems
    assert "custody.jsonl line 1" in problems
    assert report.case is not None and report.case.case_id == CASE


def test_a_removed_member_is_named(tmp_path: Path, case_folder: CaseFolder) -> None:
    files = case_folder.files()
    sums = _sums(files)
    name = f"items/{case_folder.item_id}/dom.html"
    del files[name]
    report = verify_bundle(_write_zip(tmp_path / "removed.zip", files, sums=sums))
    problems = _problems(report)
    assert f"lists {name}, which is not in the bundle" in problems
    assert "dom.html is missing" in problems


def test_an_added_member_is_named(tmp_path: Path, case_folder: CaseFolder) -> None:
    files = case_folder.files()
    sums = _sums(files)
    files["notes.txt"] = b"added later\n"
    files[f"items/{case_folder.item_id}/extra.js"] = b"alert(1)\n"
    report = verify_bundle(_write_zip(tmp_path / "added.zip", files, sums=sums))
    problems = _problems(report)
    assert "notes.txt is in the bundle but not listed in SHA256SUMS" in problems
    assert f"items/{case_folder.item_id}/extra.js is in the bundle but not listed" in problems
    assert "extra.js is not listed in the manifest" in problems


def test_sha256sums_lines_are_each_checked(tmp_path: Path, case_folder: CaseFolder) -> None:
    files = case_folder.files()
    sums = _sums(files) + (
        b"not a checksum line\n"
        + b"0" * 64 + b"  ../../etc/passwd\n"
        + b"0" * 64 + b"  items\n"
        + _sums({"case.json": files["case.json"]})
    )  # fmt: skip
    report = verify_bundle(_write_zip(tmp_path / "sums.zip", files, sums=sums))
    problems = _problems(report)
    assert "is not '<sha256>  <file>'" in problems
    assert "'../../etc/passwd', a path outside the bundle" in problems
    assert "lists items, which is a folder" in problems
    assert "lists case.json more than once" in problems
    assert report.case is not None and report.case.ok  # the case itself is intact


def test_sha256sum_binary_marker_and_dot_slash_are_read(
    tmp_path: Path, case_folder: CaseFolder
) -> None:
    files = case_folder.files()
    sums = "".join(
        f"{hashlib.sha256(data).hexdigest().upper()} *./{name}\r\n" for name, data in files.items()
    ).encode()
    report = verify_bundle(_write_zip(tmp_path / "binary.zip", files, sums=sums))
    assert report.ok, report.problems


def test_a_bundle_without_a_case_says_so(tmp_path: Path) -> None:
    path = tmp_path / "empty.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", b"hello")
    report = verify_bundle(path)
    assert not report.ok
    assert report.case is None
    assert "the bundle holds no case" in report.problems[0]


def test_the_folder_is_named_from_case_json_without_a_log_and_never_crashes(
    tmp_path: Path, case_folder: CaseFolder
) -> None:
    files = case_folder.files()
    del files["custody.jsonl"]
    report = verify_bundle(_write_zip(tmp_path / "nolog.zip", files))
    assert report.case is not None and report.case.case_id == CASE
    assert "the case has no custody.jsonl" in _problems(report)
    hostile = {"case.json": b"[" * 200_000, "items/X/manifest.json": b"{}"}
    report = verify_bundle(_write_zip(tmp_path / "deep.zip", hostile))
    assert report.case is not None and report.case.case_id == "bundle"
    assert not report.ok
