"""Check a WARC file in one read: its SHA-256, its gzip members and every record's digests.

Verification steps 4 and 6 (:mod:`chain_of_custody.verify`) share this pass, so each byte
of a WARC is read from disk once: the bytes are hashed for the manifest check as they
are read, ``.warc.gz`` members are inflated once here (zlib checks each member's CRC-32
and length), and warcio parses the inflated WARC and checks each record's
``WARC-Block-Digest`` and ``WARC-Payload-Digest`` as the record's bytes pass.

For a large file the reading, hashing and inflating run in a second thread while warcio
parses and digests in the calling one; hashlib and zlib release the GIL on large
buffers, so on two cores the two halves overlap. Memory stays bounded: reads and
inflated pieces are at most 1 MiB and at most :data:`_QUEUE_DEPTH` batches wait.

A problem names the record it is about: its number, its offset in the file (for a
``.warc.gz`` the offset of its gzip member, as warcio's
``ArchiveIterator.get_record_offset()`` gives for the compressed file), its type,
``WARC-Record-ID`` and ``WARC-Target-URI``.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import hashlib
import io
import os
import queue
import threading
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.limitreader import LimitReader

from chain_of_custody.hashing import HashingReader
from chain_of_custody.regular import open_regular

__all__ = [
    "WARC_SUFFIXES",
    "WarcCheck",
    "check_warc",
    "hash_regular_file",
    "is_gzipped_warc",
    "is_warc",
    "one_line",
]

WARC_SUFFIXES = (".warc.gz", ".warc")
_WARC_DIGEST_ALGORITHM = "sha256"
_READ_CHUNK = 1 << 20
# warcio asks for this much and takes whatever batch is ready (a batch is under 2 MiB),
# so a batch reaches its buffer without being cut and copied.
_WARCIO_BLOCK = 4 << 20
# A batch of inflated bytes is handed on once it holds this much (an inflated piece of a
# stored member, nearly 1 MiB, goes on alone, without being joined to another).
_BATCH = 512 << 10
_QUEUE_DEPTH = 4
# A member's first inflate call gets at most this much input, each later one twice as
# much (see _GzipMembers.feed).
_FIRST_PIECE = 64 << 10
# Smaller files are read in the calling thread: a thread would cost more than it saves.
_THREAD_ABOVE = 4 << 20
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer, CRC-32 checked
_GZIP_MAGIC = b"\x1f\x8b"


def is_warc(path: str) -> bool:
    """The manifest path names a WARC file (``*.warc.gz`` or ``*.warc``)."""
    return path.endswith(WARC_SUFFIXES)


def is_gzipped_warc(path: str) -> bool:
    return path.endswith(".warc.gz")


def one_line(text: str, limit: int = 200) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# Reading regular files only -----------------------------------------------------------


def hash_regular_file(path: Path) -> tuple[str, int]:
    """Hex SHA-256 and size of the bytes of ``path``, read in 1 MiB pieces.

    Raises OSError if it cannot be read, or is not itself a regular file (a link is not
    followed).
    """
    digest = hashlib.sha256()
    size = 0
    with open_regular(path) as handle:
        while block := handle.read(_READ_CHUNK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


# The result ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WarcCheck:
    """What one read of a WARC file found.

    ``sha256`` and ``size`` describe the bytes read (all of them, unless ``read_error``
    says why not): step 4 compares them with the manifest. ``record_problems`` are about
    records (each names its record), ``file_problems`` about the file as a whole (its
    gzip framing, warcio's warnings, a read error, no records at all).
    """

    sha256: str
    size: int
    records: int
    record_problems: tuple[str, ...] = ()
    file_problems: tuple[str, ...] = ()
    read_error: str | None = None

    def problems(self, manifest_sha256: str) -> list[str]:
        """Step 6's problems for this file, given the SHA-256 the manifest lists."""
        problems = list(self.record_problems)
        if self.read_error is None and self.sha256 != manifest_sha256:
            problems.append(
                "the bytes parsed are not the bytes the manifest lists "
                "(the file changed during verification, or differs from the manifest)"
            )
        problems.extend(self.file_problems)
        return problems


def check_warc(path: Path, *, gzipped: bool) -> WarcCheck:
    """Read the WARC at ``path`` once: hash it, check its gzip members (``gzipped``) and
    every record's digests. Never raises for what the file holds or cannot be read."""
    try:
        raw = open_regular(path)
    except OSError as exc:
        return _unread(exc.strerror or str(exc))
    with raw:
        try:
            threaded = os.fstat(raw.fileno()).st_size > _THREAD_ABOVE
        except OSError:
            threaded = False
        source = _Source(raw, gzipped)
        feed = _Feed(source.batches(), threaded=threaded)
        try:
            stream = _WarcStream(feed.next)
            records, record_problems, warnings = _walk_records(stream, source)
            # Read to the end even where parsing stopped: step 4 needs the whole file's hash,
            # and the gzip framing is checked to the last byte.
            stream.drain()
        finally:
            feed.close()
    file_problems: list[str] = []
    if source.read_error is not None:
        file_problems.append(f"cannot be read: {source.read_error}")
    if source.gzip is not None and (gzip_problem := source.gzip.finish()):
        file_problems.append(gzip_problem)
    if warnings.strip():
        file_problems.append(f"warcio: {one_line(warnings)}")
    if records == 0 and not record_problems and not file_problems:
        file_problems.append("contains no WARC records")
    return WarcCheck(
        sha256=source.hexdigest(),
        size=source.size,
        records=records,
        record_problems=tuple(record_problems),
        file_problems=tuple(file_problems),
        read_error=source.read_error,
    )


def _unread(why: str) -> WarcCheck:
    return WarcCheck("", 0, 0, file_problems=(f"cannot be read: {why}",), read_error=why)


# Reading: hash, inflate, hand on ------------------------------------------------------

# (offset in the inflated WARC, offset in the file) where a gzip member begins.
_MemberStart = tuple[int, int]
_Batch = tuple[bytes, list[_MemberStart]]


class _Source:
    """Reads the file once, in 1 MiB pieces, hashing every byte; for a ``.warc.gz`` it
    inflates the pieces member by member (:class:`_GzipMembers`). :meth:`batches`
    yields the WARC bytes for warcio with the gzip members that begin in them."""

    def __init__(self, raw: BinaryIO, gzipped: bool) -> None:
        self._hashed = HashingReader(raw)
        self.gzip = _GzipMembers() if gzipped else None
        self.read_error: str | None = None

    @property
    def size(self) -> int:
        return self._hashed.bytes_read

    @property
    def inflating(self) -> bool:
        """The WARC bytes are inflated gzip members (offsets must be mapped to the file's)."""
        return self.gzip is not None and not self.gzip.not_gzip

    def hexdigest(self) -> str:
        return self._hashed.hexdigest()

    def batches(self) -> Generator[_Batch, None, None]:
        gz = self.gzip
        pending: list[bytes] = []
        pending_size = 0
        try:
            while chunk := self._hashed.read(_READ_CHUNK):
                if gz is None or gz.not_gzip:
                    yield chunk, []
                    continue
                for piece in gz.feed(chunk):
                    if pending and len(piece) >= _BATCH:  # a big piece goes on alone, uncopied
                        yield b"".join(pending), gz.take_starts()
                        pending, pending_size = [], 0
                    pending.append(piece)
                    pending_size += len(piece)
                    if pending_size >= _BATCH:
                        yield b"".join(pending), gz.take_starts()
                        pending, pending_size = [], 0
                if gz.not_gzip:
                    # Not gzip from its first byte: warcio gets the file's bytes, as it would
                    # reading the file itself (and says what it makes of them).
                    yield chunk, []
        except OSError as exc:
            self.read_error = exc.strerror or str(exc)
        if gz is not None and (pending or gz.has_starts):
            yield b"".join(pending), gz.take_starts()


_END = object()


class _Feed:
    """Batches from a :class:`_Source`, made in a second thread when ``threaded``."""

    def __init__(self, batches: Generator[_Batch, None, None], *, threaded: bool) -> None:
        self._batches = batches
        self._queue: queue.Queue[object] | None = None
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._queue = queue.Queue(maxsize=_QUEUE_DEPTH)
            self._thread = threading.Thread(target=self._run, name="warc-reader", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        assert self._queue is not None
        try:
            for batch in self._batches:
                if not self._put(batch):
                    return
        except BaseException as exc:  # raised again in the thread that parses (next())
            self._failure = exc
        finally:
            with contextlib.suppress(Exception):
                self._batches.close()
        self._put(_END)

    def _put(self, item: object) -> bool:
        assert self._queue is not None
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def next(self) -> _Batch | None:
        if self._queue is None:
            return next(self._batches, None)
        item = self._queue.get()
        if item is _END:
            self._queue.put(_END)  # a later call must see the end too
            if self._failure is not None:
                raise self._failure
            return None
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """Stop the reading thread (if it is still reading) and wait for it."""
        if self._thread is None:
            return
        self._stop.set()
        assert self._queue is not None
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)
        self._thread.join()


class _WarcStream:
    """The WARC bytes as warcio reads them: ``read`` hands on (part of) the next batch,
    ``tell`` counts the bytes handed on. Also maps an offset in these bytes to the file's
    (for a ``.warc.gz``, the offset of the gzip member it lies in)."""

    def __init__(self, next_batch: Callable[[], _Batch | None]) -> None:
        self._next = next_batch
        self._buffer = b""
        self._at = 0
        self._position = 0
        self._end = False
        self._starts: list[_MemberStart] = []

    def _fill(self) -> bool:
        while self._at >= len(self._buffer):
            if self._end:
                return False
            batch = self._next()
            if batch is None:
                self._end = True
                self._buffer, self._at = b"", 0
                return False
            self._buffer, starts = batch
            self._at = 0
            self._starts.extend(starts)
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(_READ_CHUNK), b""))
        if size == 0 or not self._fill():
            return b""
        if self._at == 0 and size >= len(self._buffer):
            data = self._buffer  # the whole batch: no copy
        else:
            data = self._buffer[self._at : self._at + size]
        self._at += len(data)
        self._position += len(data)
        return data

    def peek(self, size: int) -> bytes:
        return self._buffer[self._at : self._at + size] if self._fill() else b""

    def tell(self) -> int:
        return self._position

    def drain(self) -> None:
        while self._fill():
            self._position += len(self._buffer) - self._at
            self._at = len(self._buffer)
            self._starts.clear()

    def member_of(self, offset: int) -> tuple[_MemberStart | None, bool]:
        """The gzip member ``offset`` (in the WARC bytes) lies in, and whether it begins
        there; members before it are forgotten (records come in order)."""
        index = bisect.bisect_right(self._starts, offset, key=lambda start: start[0]) - 1
        if index < 0:
            return None, False
        del self._starts[:index]
        return self._starts[0], self._starts[0][0] == offset

    def members_within(self, start: int, end: int) -> int:
        """How many gzip members begin strictly between ``start`` and ``end``."""
        low = bisect.bisect_right(self._starts, start, key=lambda member: member[0])
        high = bisect.bisect_left(self._starts, end, key=lambda member: member[0])
        return max(0, high - low)


class _GzipMembers:
    """Inflates bytes fed in as whole gzip members with valid CRCs, and nothing else.

    Without this a truncated ``.warc.gz`` would pass step 6: the records before the cut
    still verify. Output is
    produced in pieces of at most 1 MiB, so a small, highly compressed member cannot
    balloon in memory. Where each member begins is noted (in the inflated bytes and in
    the file) for :meth:`take_starts`.
    """

    def __init__(self) -> None:
        self._member: Any = None
        self._members = 0
        self._member_start = 0
        self._piece = _FIRST_PIECE
        self._fed = 0
        self._produced = 0
        self._starts: list[_MemberStart] = []
        self._error: str | None = None
        self.not_gzip = False

    @property
    def has_starts(self) -> bool:
        return bool(self._starts)

    def take_starts(self) -> list[_MemberStart]:
        starts, self._starts = self._starts, []
        return starts

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        base = self._fed
        self._fed += len(chunk)
        view = memoryview(chunk)
        done = 0
        while done < len(chunk) and self._error is None:
            at = base + done  # where the bytes still to inflate begin, in the file
            member = self._member
            if member is None:
                head = chunk[done : done + len(_GZIP_MAGIC)]
                if len(head) == len(_GZIP_MAGIC) and head != _GZIP_MAGIC:
                    self._not_gzip(at)
                    return
                member = self._member = zlib.decompressobj(_GZIP_WBITS)
                self._member_start = at
                self._piece = _FIRST_PIECE
                self._starts.append((self._produced, at))
                before = zlib.decompressobj(_GZIP_WBITS)
            else:
                before = member.copy()
            # Where a member ends, zlib copies the rest of its input into unused_data: for
            # many small members in a chunk that would copy the chunk over and over. So a
            # member is fed a small piece first, and twice as much each call after.
            piece = view[done : done + self._piece]
            self._piece *= 2
            try:
                out = member.decompress(piece, _READ_CHUNK)
            except zlib.error as exc:
                # zlib drops what it inflated in a call that fails (a bad CRC fails the
                # whole last call): inflate it again, up to the damage, so warcio still
                # sees the record the member holds and can say which it is.
                for salvaged in _salvage(before, piece):
                    self._produced += len(salvaged)
                    yield salvaged
                self._corrupt(exc)
                return
            while True:
                if out:
                    self._produced += len(out)
                    yield out
                if member.eof or member.unconsumed_tail or len(out) < _READ_CHUNK:
                    break
                try:
                    out = member.decompress(b"", _READ_CHUNK)
                except zlib.error as exc:
                    self._corrupt(exc)
                    return
            if member.eof:
                done += len(piece) - len(member.unused_data)
                self._members += 1
                self._member = None
            else:
                done += len(piece) - len(member.unconsumed_tail)

    def _corrupt(self, exc: zlib.error) -> None:
        self._error = (
            f"gzip member {self._members + 1} (from offset {self._member_start}) is corrupt ({exc})"
        )

    def _not_gzip(self, at: int) -> None:
        if self._members == 0:
            self._error = "named .warc.gz but not gzip-compressed"
            self.not_gzip = True
        else:
            self._error = f"bytes after gzip member {self._members}, from offset {at}, are not gzip"

    def finish(self) -> str | None:
        if self._error is not None:
            return self._error
        if self._member is not None:
            return (
                f"the file ends inside a gzip member (member {self._members + 1}, "
                f"from offset {self._member_start}): it was cut short"
            )
        if self._members == 0:
            return "named .warc.gz but not gzip-compressed"
        return None


def _salvage(state: Any, data: bytes | memoryview, step: int = 4096) -> Iterator[bytes]:
    """What ``state`` (a gzip decompressor) inflates from ``data`` before it fails."""
    for begin in range(0, len(data), step):
        piece = data[begin : begin + step]
        trial = state.copy()
        try:
            out = trial.decompress(piece)
        except zlib.error:
            for index in range(len(piece)):  # the failing piece, a byte at a time
                try:
                    out = state.decompress(piece[index : index + 1])
                except zlib.error:
                    return
                if out:
                    yield out
            return
        if out:
            yield out
        state = trial
        if state.eof:
            return


# Records ------------------------------------------------------------------------------


def _walk_records(stream: _WarcStream, source: _Source) -> tuple[int, list[str], str]:
    """(records, their problems, what warcio wrote to stderr)."""
    problems: list[str] = []
    count = 0
    end = 0  # where the last record read ends, in the WARC bytes
    in_record = False
    warnings = io.StringIO()
    # warcio writes format warnings straight to stderr; the library must not print, so
    # they are caught and reported. (redirect_stderr is process-wide: fine for the
    # single-threaded verifier; the reading thread never writes there.)
    with contextlib.redirect_stderr(warnings):
        try:
            if source.inflating and stream.peek(2) == _GZIP_MAGIC:
                # warcio would inflate it again, and check a WARC that is not the file's.
                return (
                    0,
                    ["gzip member 1 holds gzip data, not a WARC record (compressed twice?)"],
                    "",
                )
            iterator = ArchiveIterator(stream, check_digests=True, block_size=_WARCIO_BLOCK)
            for record in iterator:
                count += 1
                in_record = True
                found = _record_problems(record)
                offset = iterator.get_record_offset()
                length = iterator.get_record_length()
                member, begins = stream.member_of(offset)
                if source.inflating and member is not None:
                    if begins:
                        where = f"at offset {member[1]}"
                    else:
                        where = f"in the gzip member at offset {member[1]}"
                        found.append(
                            "it does not begin a gzip member (each record must be its own member)"
                        )
                    if stream.members_within(offset, offset + length):
                        found.append("it spans more than one gzip member")
                else:
                    where = f"at offset {offset}"
                if found:
                    prefix = _describe(count, record, where)
                    problems.extend(f"{prefix}: {problem}" for problem in found)
                end = offset + length
                in_record = False
        except Exception as exc:
            # Untrusted bytes through a third-party parser: any failure means "not a valid WARC".
            number = count if in_record else count + 1
            member, _ = stream.member_of(end)
            near = end if member is None or not source.inflating else member[1]
            problems.append(
                f"not a valid WARC from record {number} (near offset {near}: "
                f"{type(exc).__name__}: {one_line(str(exc))})"
            )
    return count, problems, warnings.getvalue()


def _describe(number: int, record: Any, where: str) -> str:
    """``record 3 at offset 1234 (response, WARC-Record-ID <…>, WARC-Target-URI …)``."""
    if record.format != "warc":
        return f"record {number} {where}"
    headers = record.rec_headers
    parts = [one_line(headers.get_header("WARC-Type") or "untyped", 40)]
    for name in ("WARC-Record-ID", "WARC-Target-URI"):
        value = headers.get_header(name)
        if value:
            parts.append(f"{name} {one_line(value)}")
    return f"record {number} {where} ({', '.join(parts)})"


def _record_problems(record: Any) -> list[str]:
    if record.format != "warc":
        # warcio also reads the older ARC format, and reads almost any text line as one.
        return [f"not a WARC record (read as {record.format})"]
    headers = record.rec_headers
    kind = headers.get_header("WARC-Type") or "untyped"
    # Read the raw block to its end: warcio checks the digests as the last byte passes.
    raw = record.raw_stream
    block_bytes = 0
    while data := raw.read(_WARCIO_BLOCK):
        block_bytes += len(data)
    problems = []
    declared = headers.get_header("Content-Length")
    missing = raw.limit if isinstance(raw, LimitReader) else 0
    if declared is None:
        # warcio reads the header to the end of the file when it does not end: a file cut
        # inside a record's header leaves a record with no Content-Length and no block.
        if not block_bytes:
            return ["the file ends inside its WARC header (cut short)"]
        problems.append("it has no Content-Length")
    elif not declared.strip().isdigit():
        problems.append(f"its Content-Length is not a number: {one_line(declared, 40)}")
    elif missing:
        problems.append(
            f"it is cut short: {int(declared) - missing} of its {int(declared)} block bytes "
            "could be read"
        )
    block = headers.get_header("WARC-Block-Digest")
    payload = headers.get_header("WARC-Payload-Digest")
    if not block:
        problems.append("it has no WARC-Block-Digest")
    for name, value in (("WARC-Block-Digest", block), ("WARC-Payload-Digest", payload)):
        if value and value.partition(":")[0].lower() != _WARC_DIGEST_ALGORITHM:
            problems.append(f"its {name} is not {_WARC_DIGEST_ALGORITHM}: {one_line(value)}")
    checker = record.digest_checker
    if checker.passed is False:
        problems.extend(_digest_problem(p, block, payload) for p in checker.problems)
    if record.length == 0 and kind != "revisit" and not missing:
        # warcio never compares the block digest of an empty block; do it here.
        empty = hashlib.sha256(b"").digest()
        for name, value in (("WARC-Block-Digest", block), ("WARC-Payload-Digest", payload)):
            if value and not _digest_is(value, empty):
                which = "block" if name == "WARC-Block-Digest" else "payload"
                problems.append(f"{which} digest failed: {name} of its empty block is wrong")
    elif checker.passed is None and (block or payload) and kind != "revisit" and not problems:
        problems.append("its digests could not be checked")
    return problems


def _digest_problem(problem: str, block: str | None, payload: str | None) -> str:
    """warcio's ``block digest failed: <header>`` as a sentence that says which failed."""
    if problem.startswith("block digest failed"):
        return f"block digest failed: the block does not match its WARC-Block-Digest {block}"
    if problem.startswith("payload digest failed"):
        return (
            f"payload digest failed: the payload does not match its WARC-Payload-Digest {payload}"
        )
    return one_line(problem)


def _digest_is(value: str, expected: bytes) -> bool:
    """``value`` (``algo:`` then hex, base32 or base64, as WARC writers vary) is ``expected``."""
    encoded = value.partition(":")[2].strip()
    decoders: tuple[Callable[[str], bytes], ...] = (
        bytes.fromhex,
        lambda text: base64.b32decode(text.upper()),
        lambda text: base64.b64decode(text, validate=True),
    )
    for decode in decoders:
        with contextlib.suppress(ValueError):
            if decode(encoded) == expected:
                return True
    return False
