"""Read an export bundle (a ``.zip``) without trusting it, and verify the case inside.

A bundle's root is a case folder's layout (``case.json``, ``custody.jsonl``,
``custody.head``, ``items/<ITEM_ID>/…``) with a root ``SHA256SUMS`` covering every other
member. It comes from outside, so before a single member's data is read the whole
central directory is judged: a member with an unsafe name (absolute, ``..``, backslash,
control character, drive letter), a link or other non-regular member, two members that
would land on the same file (exact, by letter case or Unicode normalisation, or a file
and a folder), an encrypted member, a compression method other than stored or deflated,
members whose data overlap, and declared sizes or compression ratios past the limits
(a zip bomb) are all refused, naming the member. Only then are members streamed, in
1 MiB chunks, into a private temporary folder (mode 0700) with fresh modes (0644 files,
0755 folders) and nothing else from the zip applied; every member's real inflated size
is counted against what it declares and its CRC-32 checked. The folder is removed when
:func:`open_bundle`'s block ends, however it ends.

Every refusal is an IntegrityError (exit 1) of one line; a bundle path that does not
exist or is not a file is a UsageError (exit 2).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import stat
import struct
import tempfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from chain_of_custody.bundle_manifest import ManifestCheck, check_bundle_manifest
from chain_of_custody.custody import CUSTODY_LOG_NAME, parse_line
from chain_of_custody.errors import (
    CustodyLogDamaged,
    IntegrityError,
    StorageError,
    UsageError,
    storage_error,
)
from chain_of_custody.hashing import sha256_file
from chain_of_custody.item import CASE_RECORD_NAME, SUMS_NAME
from chain_of_custody.verify import (
    CaseReport,
    ItemReport,
    StepResult,
    is_case_dir,
    normalize_trusted,
    verify_case,
)

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

__all__ = [
    "DEFAULT_MAX_MEMBER",
    "DEFAULT_MAX_MEMBERS",
    "DEFAULT_MAX_RATIO",
    "DEFAULT_MAX_TOTAL",
    "RATIO_FLOOR",
    "BundleReport",
    "open_bundle",
    "verify_bundle",
]

_GIB = 1 << 30
# Generous for evidence (a capture is a page, its WARC and renderings), yet a bound.
DEFAULT_MAX_TOTAL = 64 * _GIB
DEFAULT_MAX_MEMBER = 16 * _GIB
DEFAULT_MAX_MEMBERS = 100_000
# Deflate reaches at most ~1030:1 (on zeros). Evidence is mostly already compressed
# (PNG, PDF, .warc.gz: ~1:1); HTML, text and JSON deflate 3-20:1. 100:1 leaves room.
DEFAULT_MAX_RATIO = 100
# Members (and bundles) declaring at most this much are not held to the ratio: a small
# file of blanks may compress 1000:1 and harms no one.
RATIO_FLOOR = 1 << 20
# Central-directory bytes allowed per member (names here are ~80 bytes; entries ~130).
_CD_BYTES_PER_MEMBER = 512
_MAX_NAME_BYTES = 1024
_MAX_SEGMENT_BYTES = 255
_MAX_FIRST_LINE = 1 << 20
_MAX_CASE_RECORD = 1 << 20
_MAX_SUMS = 64 << 20
_CHUNK = 1 << 20
_TEMP_PREFIX = "osint-capture-bundle-"
_FALLBACK_ROOT = "bundle"
# The CASE_ID shape (cases.case): safe as a folder name.
_CASE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DRIVE_RE = re.compile(r"[A-Za-z]:")
_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")

_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIG = b"PK\x05\x06"
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64_LOCATOR_SIG = b"PK\x06\x07"
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_EOCD64_SIG = b"PK\x06\x06"
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_CENTRAL_SIG = b"PK\x01\x02"
_LOCAL = struct.Struct("<4s2B4HL2L2H")
_LOCAL_SIG = b"PK\x03\x04"
_FLAG_ENCRYPTED = 0x0001
_FLAG_STRONG_ENCRYPTION = 0x0040
_FLAG_UTF8 = 0x0800
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_METHOD_NAMES = {
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "LZMA",
    9: "Deflate64",
    93: "Zstandard",
    99: "AES-encrypted",
}
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_OPEN_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_BINARY", 0)
    | _CLOEXEC
)
_NOTHING_EXTRACTED = "nothing was extracted"
_NOTHING_KEPT = "nothing extracted from it was kept"


@dataclass(frozen=True)
class _Member:
    """One member of the central directory, judged safe, with where its data lie."""

    name: str  # as in the zip: "items/X/manifest.json", "items/" for a folder
    info: zipfile.ZipInfo
    is_dir: bool
    data_start: int = 0


@dataclass(frozen=True)
class _Bundle:
    root: Path
    files: tuple[str, ...]  # file members, in the zip's order


@dataclass(frozen=True)
class BundleReport:
    """The outcome of :func:`verify_bundle`: ok only if nothing is wrong anywhere.

    ``problems`` holds every problem found, each naming its member by its path inside the
    bundle: the root ``SHA256SUMS`` check, then the case's and its items' problems
    (``case`` is the full :class:`CaseReport`, its paths relative to the bundle; None when
    the bundle holds no case). ``members`` counts the bundle's files (folders aside);
    ``checksums`` how many lines of ``SHA256SUMS`` were checked (None: there is none).
    """

    ok: bool
    path: str
    case: CaseReport | None
    problems: tuple[str, ...]
    members: int
    checksums: int | None = None
    # The bundle's own problems (its members, SHA256SUMS, no case), the case's aside.
    member_problems: tuple[str, ...] = ()
    # The signed bundle manifest's verdict (step 11); None only for reports made by hand.
    manifest: ManifestCheck | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "path": self.path,
            "members": self.members,
            "checksums": self.checksums,
            "problems": list(self.problems),
            "bundle_manifest": None if self.manifest is None else self.manifest.to_dict(),
            "case": None if self.case is None else self.case.to_dict(),
        }


@contextlib.contextmanager
def open_bundle(
    path: Path,
    *,
    max_total: int = DEFAULT_MAX_TOTAL,
    max_member: int = DEFAULT_MAX_MEMBER,
    max_ratio: float = DEFAULT_MAX_RATIO,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> Iterator[Path]:
    """Yield the bundle's contents, extracted into a private temporary folder.

    The folder yielded is ``<tmp>/<CASE_ID>/`` — the case id that line 1 of the bundle's
    ``custody.jsonl`` names (else ``case.json``'s, else ``bundle``), so that
    :func:`verify_case` judges it as that case's folder. It and its private parent
    (mode 0700, made by :func:`tempfile.mkdtemp`) are removed when the block ends.

    Limits, all checked against the central directory before any member is read, and
    the real bytes counted again while they are: ``max_total`` and ``max_member`` bound
    the uncompressed bytes of the whole bundle and of one member; ``max_ratio`` bounds
    how many times a member (and the bundle) may inflate, for any declaring more than
    :data:`RATIO_FLOOR` bytes; ``max_members`` bounds the number of members.

    Raises IntegrityError (one line naming the member) for anything refused or
    damaged, UsageError when ``path`` does not exist, is not a file or cannot be read,
    and StorageError when the temporary folder's disk is too full to hold the bundle.
    """
    with _open(
        path,
        max_total=max_total,
        max_member=max_member,
        max_ratio=max_ratio,
        max_members=max_members,
    ) as bundle:
        yield bundle.root


def verify_bundle(
    path: Path,
    *,
    trusted_fingerprints: Collection[str] | None = None,
    tsa_roots: Sequence[Certificate] | None = None,
    max_total: int = DEFAULT_MAX_TOTAL,
    max_member: int = DEFAULT_MAX_MEMBER,
    max_ratio: float = DEFAULT_MAX_RATIO,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> BundleReport:
    """Verify a bundle: open it safely (:func:`open_bundle`), check its root
    ``SHA256SUMS`` as ``sha256sum -c`` would — every line, and that it lists every member
    but itself — and its signed bundle manifest, when it has one or holds what only an
    export writes (:func:`~chain_of_custody.bundle_manifest.check_bundle_manifest`), then
    verify the case in it (:func:`verify_case`, with
    ``trusted_fingerprints``).

    Integrity problems of the contents are returned in the report; a bundle that cannot
    be opened safely raises, as :func:`open_bundle` does. A malformed trusted
    fingerprint is a UsageError, raised before the bundle is read.
    """
    trusted = normalize_trusted(trusted_fingerprints)
    with _open(
        path,
        max_total=max_total,
        max_member=max_member,
        max_ratio=max_ratio,
        max_members=max_members,
    ) as bundle:
        problems: list[str] = []
        digests: dict[str, str] = {}
        checksums = _check_sums(bundle, problems, digests)
        own_problems = len(problems)
        manifest = check_bundle_manifest(
            bundle.root, bundle.files, trusted=trusted, digests=digests
        )
        case: CaseReport | None = None
        if is_case_dir(bundle.root):
            raw = verify_case(bundle.root, trusted_fingerprints=trusted, tsa_roots=tsa_roots)
            case = _relative_case(raw, bundle.root, path)
            if manifest.present and manifest.ok:
                case = _released_only(case, frozenset(manifest.items))
            problems.extend(case.problems)
            for item in case.items:
                problems.extend(_item_problems(item))
        else:
            problems.append(
                "the bundle holds no case: there is no items/ folder and no "
                f"{CUSTODY_LOG_NAME} at its root"
            )
            own_problems = len(problems)
    return BundleReport(
        ok=not problems and manifest.ok and case is not None and case.ok,
        path=str(path),
        case=case,
        problems=(*problems[:own_problems], *manifest.problems, *problems[own_problems:]),
        members=len(bundle.files),
        checksums=checksums,
        member_problems=tuple(problems[:own_problems]),
        manifest=manifest,
    )


# Opening ------------------------------------------------------------------------------


@contextlib.contextmanager
def _open(
    path: Path, *, max_total: int, max_member: int, max_ratio: float, max_members: int
) -> Iterator[_Bundle]:
    fh = _open_file(path)
    with fh:
        members = _read_directory(
            fh,
            path,
            max_total=max_total,
            max_member=max_member,
            max_ratio=max_ratio,
            max_members=max_members,
        )
        _check_free_space(path, members)
        base = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX))  # mode 0700
        try:
            root = base / _root_name(fh, path, members)
            _mkdir(root)
            for member in members:
                _extract(fh, path, member, root)
            files = tuple(m.name for m in members if not m.is_dir)
            yield _Bundle(root=root, files=files)
        finally:
            _remove_tree(base)


def _open_file(path: Path) -> IO[bytes]:
    """The bundle, opened for reading; UsageError unless it is a regular file.

    Checked before it is opened (opening a device can have effects of its own) and
    opened without blocking (a FIFO would wait forever), then checked again.
    """
    not_a_file = UsageError(f"{path} is not a file (give a bundle's .zip)")
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise not_a_file
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | getattr(os, "O_BINARY", 0) | _CLOEXEC)
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    fh = os.fdopen(fd, "rb")
    try:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise not_a_file
    except OSError as exc:
        fh.close()
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UsageError:
        fh.close()
        raise
    return fh


def _not_a_zip(path: Path, reason: str) -> IntegrityError:
    reason = " ".join(reason.split()).rstrip(".")
    reason = reason[:1].lower() + reason[1:]
    return IntegrityError(
        f"{path} is not a readable zip file: {reason}",
        hint="it is not a zip, or it was cut short or damaged; nothing was extracted",
    )


def _refused(path: Path, reasons: list[str]) -> IntegrityError:
    message = f"{path} is refused: {reasons[0]}"
    if len(reasons) > 1:
        message += f"; and {len(reasons) - 1} more refused member(s)"
    return IntegrityError(message, hint=_NOTHING_EXTRACTED)


def _read_directory(
    fh: IO[bytes],
    path: Path,
    *,
    max_total: int,
    max_member: int,
    max_ratio: float,
    max_members: int,
) -> list[_Member]:
    """Every member, judged from the central directory and the local headers alone."""
    size = fh.seek(0, os.SEEK_END)
    try:
        cd_start = _central_directory(fh, path, size, max_members)
        try:
            archive = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, ValueError, EOFError, struct.error) as exc:
            # ValueError covers a member name that is not the UTF-8 it claims to be.
            raise _not_a_zip(path, str(exc) or type(exc).__name__) from None
        except NotImplementedError as exc:
            raise _not_a_zip(path, f"it needs a zip feature this reader lacks ({exc})") from None
        with archive:
            infos = archive.infolist()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    refusals: list[str] = []
    members: list[_Member] = []
    for info in infos:
        problem, member = _judge(info, max_member=max_member, max_ratio=max_ratio)
        if problem is not None:
            refusals.append(problem)
        elif member is not None:
            members.append(member)
    if not refusals:
        refusals.extend(_collisions(members))
    if refusals:
        raise _refused(path, refusals)
    total = sum(m.info.file_size for m in members)
    if total > max_total:
        raise _refused(
            path,
            [
                f"its members declare {total} bytes uncompressed in all, more than the "
                f"limit of {max_total}"
            ],
        )
    if total > RATIO_FLOOR and total > max_ratio * max(size, 1):
        raise _refused(
            path,
            [
                f"its members declare {total} bytes uncompressed in all, "
                f"{total / max(size, 1):.0f} times its {size} bytes, more than the limit of "
                f"{max_ratio:g} times (a zip bomb)"
            ],
        )
    try:
        return _locate_data(fh, path, members, cd_start)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _central_directory(fh: IO[bytes], path: Path, size: int, max_members: int) -> int:
    """Where the central directory starts, its entries counted and bounded before
    :mod:`zipfile` builds a record of each (an attacker's directory may hold millions)."""
    if size < _EOCD.size:
        raise _not_a_zip(path, f"it is only {size} bytes long")
    # Found as zipfile finds it: at the very end, else the last signature in the comment.
    fh.seek(size - _EOCD.size)
    tail = fh.read(_EOCD.size)
    if tail[:4] == _EOCD_SIG and tail[-2:] == b"\x00\x00":
        eocd_at = size - _EOCD.size
        record = tail
    else:
        search_from = max(size - (1 << 16) - _EOCD.size, 0)
        fh.seek(search_from)
        data = fh.read()
        found = data.rfind(_EOCD_SIG)
        record = data[found : found + _EOCD.size] if found >= 0 else b""
        if len(record) != _EOCD.size:
            raise _not_a_zip(
                path, "it has no end-of-central-directory record (the end of every zip)"
            )
        eocd_at = search_from + found
    _, disk, cd_disk, _, declared, cd_size, cd_offset, _ = _EOCD.unpack(record)
    concat = eocd_at - cd_size - cd_offset
    if eocd_at >= _EOCD64_LOCATOR.size:
        fh.seek(eocd_at - _EOCD64_LOCATOR.size)
        locator = fh.read(_EOCD64_LOCATOR.size)
        if locator[:4] == _EOCD64_LOCATOR_SIG and eocd_at >= _EOCD64_LOCATOR.size + _EOCD64.size:
            fh.seek(eocd_at - _EOCD64_LOCATOR.size - _EOCD64.size)
            record64 = fh.read(_EOCD64.size)
            if record64[:4] == _EOCD64_SIG:
                fields = _EOCD64.unpack(record64)
                disk, cd_disk, declared, cd_size, cd_offset = fields[4], fields[5], *fields[7:]
                concat = eocd_at - cd_size - cd_offset - _EOCD64_LOCATOR.size - _EOCD64.size
    if disk != 0 or cd_disk != 0:
        raise _not_a_zip(path, "it is one part of a zip split over several files")
    start = cd_offset + concat
    if start < 0 or start + cd_size > eocd_at:
        raise _not_a_zip(path, "its central directory lies outside the file")
    if declared > max_members:
        raise _refused(
            path, [f"it declares {declared} members, more than the limit of {max_members}"]
        )
    if cd_size > max_members * _CD_BYTES_PER_MEMBER:
        raise _refused(
            path,
            [
                f"its central directory is {cd_size} bytes, more than the limit of "
                f"{max_members * _CD_BYTES_PER_MEMBER}"
            ],
        )
    fh.seek(start)
    directory = fh.read(cd_size)
    if len(directory) != cd_size:
        raise _not_a_zip(path, "its central directory is cut short")
    offset = count = 0
    while offset < cd_size:
        if offset + _CENTRAL.size > cd_size:
            raise _not_a_zip(path, "its central directory is cut short")
        fields = _CENTRAL.unpack_from(directory, offset)
        if fields[0] != _CENTRAL_SIG:
            raise _not_a_zip(path, f"its central directory is damaged at entry {count + 1}")
        offset += _CENTRAL.size + fields[12] + fields[13] + fields[14]
        count += 1
        if count > max_members:
            raise _refused(path, [f"it has more than the limit of {max_members} members"])
    if count != declared:
        raise _not_a_zip(
            path,
            f"its central directory holds {count} entries, its end record declares {declared}",
        )
    return int(start)


def _judge(
    info: zipfile.ZipInfo, *, max_member: int, max_ratio: float
) -> tuple[str | None, _Member | None]:
    """(why the member is refused, None) or (None, the member)."""
    name = info.orig_filename  # zipfile's .filename is cut at a NUL; this is not
    shown = f"member {name!r}"
    problem = _name_problem(name)
    if problem is not None:
        return f"{shown} {problem}", None
    is_dir = name.endswith("/")
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return f"{shown} is a symbolic link (links are never followed or made)", None
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return f"{shown} is a device, FIFO or socket, not a regular file", None
    if kind == stat.S_IFDIR and not is_dir:
        return f"{shown} is marked as a folder but its name does not end in '/'", None
    if kind == stat.S_IFREG and is_dir:
        return f"{shown} is marked as a regular file but its name ends in '/'", None
    if info.flag_bits & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION):
        return f"{shown} is encrypted (an encrypted member cannot be verified)", None
    if info.compress_type not in _METHODS:
        method = _METHOD_NAMES.get(info.compress_type, "unknown")
        return (
            f"{shown} uses compression method {info.compress_type} ({method}); "
            "only stored and deflated members are read",
            None,
        )
    if is_dir and (info.file_size or info.compress_size > 2):
        return f"{shown} is a folder but holds {info.file_size} bytes", None
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        return (
            f"{shown} is stored uncompressed, yet declares {info.compress_size} bytes "
            f"stored and {info.file_size} uncompressed",
            None,
        )
    if info.file_size > max_member:
        return (
            f"{shown} declares {info.file_size} bytes uncompressed, more than the limit "
            f"of {max_member} per member",
            None,
        )
    if info.file_size > RATIO_FLOOR and info.file_size > max_ratio * max(info.compress_size, 1):
        ratio = info.file_size / max(info.compress_size, 1)
        return (
            f"{shown} would inflate {info.compress_size} bytes to {info.file_size} "
            f"({ratio:.0f} times), more than the limit of {max_ratio:g} times (a zip bomb)",
            None,
        )
    return None, _Member(name=name, info=info, is_dir=is_dir)


def _name_problem(name: str) -> str | None:
    """Why a member's name is unsafe to extract, or None."""
    if not name:
        return "has an empty name"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        return "has a control character (or NUL) in its name"
    if "\\" in name:
        return "has a backslash in its name (a Windows path separator)"
    if name.startswith("/"):
        return "has an absolute path (it would be written outside the bundle's folder)"
    if _DRIVE_RE.match(name):
        return "starts with a drive letter (it would be written outside the bundle's folder)"
    segments = name.removesuffix("/").split("/")
    if ".." in segments:
        return "has a '..' segment (it would be written outside the bundle's folder)"
    if any(segment in ("", ".") for segment in segments):
        return "has an empty or '.' segment in its path"
    if len(name.encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES:
        return f"has a name longer than {_MAX_NAME_BYTES} bytes"
    if any(len(s.encode("utf-8", "surrogatepass")) > _MAX_SEGMENT_BYTES for s in segments):
        return f"has a path segment longer than {_MAX_SEGMENT_BYTES} bytes"
    return None


def _fold(name: str) -> str:
    """The key two names share if some file system would make them one file."""
    return unicodedata.normalize("NFC", name).casefold()


def _collisions(members: list[_Member]) -> list[str]:
    """Members that would land on the same file or folder."""
    problems: list[str] = []
    exact: dict[str, str] = {}
    folded: dict[str, str] = {}
    files: dict[str, str] = {}
    folders: dict[str, str] = {}  # folded folder -> a member that is or lies in it
    for member in members:
        bare = member.name.removesuffix("/")
        key = _fold(bare)
        if bare in exact:
            problems.append(f"member {member.name!r} appears twice (as {exact[bare]!r} before)")
            continue
        if key in folded:
            problems.append(
                f"member {member.name!r} and member {folded[key]!r} differ only in letter "
                "case or Unicode form (one file on many systems)"
            )
            continue
        exact[bare] = member.name
        folded[key] = member.name
        if member.is_dir:
            folders.setdefault(key, member.name)
        else:
            files[key] = member.name
        parts = bare.split("/")
        for depth in range(1, len(parts)):
            folders.setdefault(_fold("/".join(parts[:depth])), member.name)
    for key, name in files.items():
        if key in folders:
            problems.append(
                f"member {name!r} is a file, but member {folders[key]!r} makes it a folder"
            )
    return problems


def _locate_data(fh: IO[bytes], path: Path, members: list[_Member], cd_start: int) -> list[_Member]:
    """Members with where their data start, each local header checked against the
    central directory, and no two members' data overlapping (a zip-bomb trick)."""
    located: list[_Member] = []
    refusals: list[str] = []
    previous_end, previous = 0, ""
    for member in sorted(members, key=lambda m: m.info.header_offset):
        info = member.info
        shown = f"member {member.name!r}"
        if not 0 <= info.header_offset <= cd_start - _LOCAL.size:
            refusals.append(f"{shown}: its local header lies outside the file's members")
            continue
        fh.seek(info.header_offset)
        header = fh.read(_LOCAL.size)
        if len(header) != _LOCAL.size or header[:4] != _LOCAL_SIG:
            refusals.append(
                f"{shown}: its local header is not where the central directory says "
                "(bytes are missing or were added)"
            )
            continue
        fields = _LOCAL.unpack(header)
        flags, method, name_length, extra_length = fields[3], fields[4], fields[10], fields[11]
        raw_name = fh.read(name_length)
        encoding = "utf-8" if info.flag_bits & _FLAG_UTF8 else "cp437"
        if raw_name != member.name.encode(encoding, "surrogateescape"):
            refusals.append(
                f"{shown}: its local header names it {raw_name.decode(encoding, 'replace')!r}"
            )
            continue
        if flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION):
            refusals.append(f"{shown} is encrypted (an encrypted member cannot be verified)")
            continue
        if method != info.compress_type:
            refusals.append(
                f"{shown}: its local header says compression method {method}, "
                f"the central directory {info.compress_type}"
            )
            continue
        start = info.header_offset + _LOCAL.size + name_length + extra_length
        if info.header_offset < previous_end:
            refusals.append(f"{shown} overlaps member {previous!r} (a zip-bomb trick)")
            continue
        if start + info.compress_size > cd_start:
            refusals.append(
                f"{shown}: its data run past the end of the members (the file is cut "
                "short or damaged)"
            )
            continue
        previous_end, previous = start + info.compress_size, member.name
        located.append(replace(member, data_start=start))
    if refusals:
        raise _refused(path, refusals)
    order = {id(m.info): n for n, m in enumerate(members)}
    return sorted(located, key=lambda m: order[id(m.info)])


def _check_free_space(path: Path, members: list[_Member]) -> None:
    needed = sum(m.info.file_size for m in members)
    folder = tempfile.gettempdir()
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # the extraction itself will say what is wrong
    if needed > free:
        raise StorageError(
            f"the temporary folder {folder} has {free} bytes free; {path} needs {needed} "
            "to be extracted for verification",
            hint="set TMPDIR to a folder on a disk with more space",
        )


# Reading members ----------------------------------------------------------------------


def _inflate(fh: IO[bytes], path: Path, member: _Member) -> Iterator[bytes]:
    """The member's bytes in chunks of at most 1 MiB, counted against the size it
    declares (never more is produced) and CRC-checked at the end."""
    info = member.info
    shown = f"member {member.name!r}"
    deflated = info.compress_type == zipfile.ZIP_DEFLATED
    inflater = zlib.decompressobj(-zlib.MAX_WBITS) if deflated else None
    left = info.compress_size
    produced = crc = 0

    def counted(out: bytes) -> bytes:
        nonlocal produced, crc
        produced += len(out)
        if produced > info.file_size:
            raise IntegrityError(
                f"{path} is refused: {shown} inflates past the {info.file_size} bytes it "
                "declares (a zip bomb, or a damaged member)",
                hint=_NOTHING_KEPT,
            )
        crc = zlib.crc32(out, crc)
        return out

    def corrupt(why: str) -> IntegrityError:
        return IntegrityError(f"{path} is damaged: {shown} {why}", hint=_NOTHING_KEPT)

    position = member.data_start
    while left > 0:
        try:
            fh.seek(position)
            raw = fh.read(min(_CHUNK, left))
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
        if not raw:
            raise corrupt("is cut short (the file ends inside its data)")
        position += len(raw)
        left -= len(raw)
        if inflater is None:
            yield counted(raw)
            continue
        data = raw
        while True:
            try:
                out = inflater.decompress(data, _CHUNK)
            except zlib.error as exc:
                raise corrupt(f"has corrupt compressed data ({exc})") from None
            if out:
                yield counted(out)
            data = inflater.unconsumed_tail
            if inflater.eof:
                if data or inflater.unused_data or left:
                    raise corrupt("has bytes after the end of its compressed data")
                break
            # A full chunk may leave output pending inside zlib even with no input left.
            if not data and len(out) < _CHUNK:
                break
    if inflater is not None and not inflater.eof:
        raise corrupt("has compressed data that stop before their end (cut short?)")
    if produced != info.file_size:
        raise corrupt(f"holds {produced} bytes, but declares {info.file_size}")
    if crc != info.CRC:
        raise corrupt("fails its CRC-32 check (its bytes were changed or damaged)")


def _root_name(fh: IO[bytes], path: Path, members: list[_Member]) -> str:
    """The case id to name the extracted folder by: line 1 of ``custody.jsonl`` (the
    signed opening; :func:`verify_case` then judges the log as that case's), else
    ``case.json``'s ``case_id``, else ``bundle``."""
    by_name = {m.name: m for m in members if not m.is_dir}
    log = by_name.get(CUSTODY_LOG_NAME)
    if log is not None:
        first = _read_prefix(fh, path, log, _MAX_FIRST_LINE, stop=b"\n")
        with contextlib.suppress(CustodyLogDamaged, RecursionError):
            case_id = parse_line(first.partition(b"\n")[0])["case_id"]
            if isinstance(case_id, str) and _CASE_ID_RE.fullmatch(case_id):
                return case_id
    record = by_name.get(CASE_RECORD_NAME)
    if record is not None and record.info.file_size <= _MAX_CASE_RECORD:
        data = _read_prefix(fh, path, record, _MAX_CASE_RECORD)
        with contextlib.suppress(ValueError, RecursionError):  # hostile nesting
            document = json.loads(data)
            case_id = document.get("case_id") if isinstance(document, dict) else None
            if isinstance(case_id, str) and _CASE_ID_RE.fullmatch(case_id):
                return case_id
    return _FALLBACK_ROOT


def _read_prefix(
    fh: IO[bytes], path: Path, member: _Member, limit: int, stop: bytes | None = None
) -> bytes:
    """Up to ``limit`` bytes from the start of a member (to ``stop`` if it comes first)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in _inflate(fh, path, member):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit or (stop is not None and stop in chunk):
            break
    return b"".join(chunks)[:limit]


# Writing the private copy -------------------------------------------------------------


def _mkdir(folder: Path) -> None:
    os.mkdir(folder, 0o755)
    os.chmod(folder, 0o755)  # whatever the umask


def _extract(fh: IO[bytes], path: Path, member: _Member, root: Path) -> None:
    target = root.joinpath(*member.name.removesuffix("/").split("/"))
    try:
        parent = root
        for part in member.name.removesuffix("/").split("/")[: None if member.is_dir else -1]:
            parent = parent / part
            if not parent.is_dir():  # made by us, in our private folder: never a link
                _mkdir(parent)
        if member.is_dir:
            return
        fd = os.open(target, _OPEN_FLAGS, 0o644)
        with os.fdopen(fd, "wb") as out:
            for chunk in _inflate(fh, path, member):
                out.write(chunk)
        os.chmod(target, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise storage_error(
                exc, f"extracting {member.name} from {path}", place="the temporary folder"
            ) from None
        raise IntegrityError(
            f"{path}: member {member.name!r} cannot be extracted: {exc.strerror or exc}",
            hint=_NOTHING_KEPT,
        ) from None


def _remove_tree(base: Path) -> None:
    def retry(function: Callable[..., object], name: str, _: object) -> None:
        # A folder made read-only while in use: give its owner (us) the right back.
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(name), 0o700)
            os.chmod(name, 0o700)
            function(name)

    shutil.rmtree(base, onerror=retry)
    if os.path.lexists(base):
        shutil.rmtree(base, ignore_errors=True)


# Verifying ----------------------------------------------------------------------------


def _check_sums(bundle: _Bundle, problems: list[str], digests: dict[str, str]) -> int | None:
    """The root SHA256SUMS, line by line as ``sha256sum -c`` reads it; also that every
    member but SHA256SUMS itself is listed. Returns how many lines were checked; the
    SHA-256 of each member it hashed goes into ``digests`` (the bundle manifest's check
    reuses them: a gigabyte is hashed once)."""
    if SUMS_NAME not in bundle.files:
        return None
    sums = bundle.root / SUMS_NAME
    if sums.stat().st_size > _MAX_SUMS:
        problems.append(f"{SUMS_NAME} is larger than {_MAX_SUMS} bytes; it was not read")
        return 0
    try:
        text = sums.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        problems.append(f"{SUMS_NAME} is not UTF-8 text")
        return 0
    files = set(bundle.files)
    folders = {
        "/".join(name.split("/")[:depth])
        for name in bundle.files
        for depth in range(1, name.count("/") + 1)
    }
    listed: dict[str, list[int]] = {}
    checked = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if not line and number == text.count("\n") + 1:
            break  # the end of the last line
        parsed = _sums_line(line.removesuffix("\r"))
        if parsed is None:
            problems.append(f"{SUMS_NAME} line {number} is not '<sha256>  <file>'")
            continue
        digest, name = parsed
        while name.startswith("./"):
            name = name[2:]
        listed.setdefault(name, []).append(number)
        checked += 1
        if name in files:
            if name not in digests:
                digests[name], _ = sha256_file(bundle.root.joinpath(*name.split("/")))
            actual = digests[name]
            if actual != digest.lower():
                problems.append(
                    f"{name} does not match {SUMS_NAME} line {number}: its SHA-256 is "
                    f"{actual}, the line says {digest.lower()}"
                )
        elif name.removesuffix("/") in folders:
            problems.append(f"{SUMS_NAME} line {number} lists {name}, which is a folder")
        elif _name_problem(name) is not None:
            problems.append(f"{SUMS_NAME} line {number} lists {name!r}, a path outside the bundle")
        else:
            problems.append(f"{SUMS_NAME} line {number} lists {name}, which is not in the bundle")
    for name, numbers in listed.items():
        if len(numbers) > 1:
            lines = ", ".join(str(n) for n in numbers)
            problems.append(f"{SUMS_NAME} lists {name} more than once (lines {lines})")
    for name in bundle.files:
        if name != SUMS_NAME and name not in listed:
            problems.append(f"{name} is in the bundle but not listed in {SUMS_NAME}")
    return checked


def _sums_line(line: str) -> tuple[str, str] | None:
    """(digest, file) of a GNU ``sha256sum`` line (``\\`` starts an escaped name)."""
    escaped = line.startswith("\\")
    if escaped:
        line = line[1:]
    digest, rest = line[:64], line[64:]
    if not _SHA256_RE.fullmatch(digest) or rest[:2] not in ("  ", " *") or len(rest) < 3:
        return None
    name = rest[2:]
    if escaped:
        name = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m[1], m[1]), name)
    return digest, name


def _relative_case(report: CaseReport, root: Path, bundle: Path) -> CaseReport:
    """The case report with the temporary folder's paths made paths inside the bundle."""
    prefixes = sorted({str(root), os.path.realpath(root)}, key=len, reverse=True)

    def rel(text: str) -> str:
        for prefix in prefixes:
            text = text.replace(prefix + os.sep, "").replace(prefix, ".")
        return text

    def step(result: StepResult) -> StepResult:
        return replace(
            result, detail=rel(result.detail), problems=tuple(rel(p) for p in result.problems)
        )

    items = tuple(
        replace(item, path=rel(item.path), steps=tuple(step(s) for s in item.steps))
        for item in report.items
    )
    return replace(
        report,
        path=str(bundle),
        items=items,
        problems=tuple(rel(p) for p in report.problems),
        head_stamps=tuple(step(s) for s in report.head_stamps),
    )


_NOT_RELEASED = re.compile(
    re.escape(CUSTODY_LOG_NAME)
    + r" line \d+ records item (\S+) as captured, but items/\S+ is missing"
)


def _released_only(case: CaseReport, released: frozenset[str]) -> CaseReport:
    """The case report of an export that released only some items: the log's other
    captures are absent by design, which the signed bundle manifest (whose item list the
    log's own ``exported`` entry repeats) says; they are not missing evidence."""
    problems = tuple(
        p
        for p in case.problems
        if not ((m := _NOT_RELEASED.fullmatch(p)) and m.group(1) not in released)
    )
    if problems == case.problems:
        return case
    ok = not problems and all(item.ok for item in case.items)
    return replace(case, problems=problems, ok=ok)


def _item_problems(item: ItemReport) -> list[str]:
    """An item's problems, each naming the item's folder inside the bundle."""
    where = item.path or f"items/{item.item_id}"
    return [
        f"{where}: step {result.number} ({result.name}): {problem}"
        for result in item.steps
        if not result.ok
        for problem in result.problems
    ]
