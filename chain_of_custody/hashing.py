"""SHA-256 of files, byte strings and streams, without holding large files in memory."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import TracebackType
from typing import Protocol

__all__ = ["HashingReader", "sha256_bytes", "sha256_file"]

_DEFAULT_CHUNK = 1 << 20


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def sha256_file(path: Path, chunk: int = _DEFAULT_CHUNK) -> tuple[str, int]:
    """Hex SHA-256 and size in bytes of the file at ``path``, read in ``chunk``-sized pieces."""
    if chunk <= 0:
        raise ValueError("chunk must be a positive number of bytes")
    digest = hashlib.sha256()
    size = 0
    # The size is counted from the bytes actually hashed, not from stat(), so the two
    # can never describe different states of a file that is being changed underneath us.
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


class HashingReader:
    """A read-only stream that hashes every byte it hands on.

    Wrap a file before giving it to a parser (warcio's ArchiveIterator, for one) and the
    file is read once: the parser sees the bytes and, when it is done, :meth:`drain` plus
    :meth:`hexdigest` give the SHA-256 of exactly the bytes it parsed. Comparing that with
    the recorded hash proves the parser looked at the recorded file, not a later version.

    ``tell()`` counts the bytes passed so far, which is what stream parsers use for offsets.
    Closing the reader does not close the wrapped stream; its opener owns it.
    """

    def __init__(self, stream: _Readable) -> None:
        self._stream = stream
        self._digest = hashlib.sha256()
        self._count = 0
        self._closed = False

    def read(self, size: int | None = -1, /) -> bytes:
        if self._closed:
            raise ValueError("read from a closed HashingReader")
        data = self._stream.read(-1 if size is None else size)
        self._digest.update(data)
        self._count += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview, /) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._count

    @property
    def bytes_read(self) -> int:
        return self._count

    @property
    def closed(self) -> bool:
        return self._closed

    def drain(self, chunk: int = _DEFAULT_CHUNK) -> int:
        """Read (and hash) whatever the consumer left unread; returns how many bytes that was."""
        before = self._count
        while self.read(chunk):
            pass
        return self._count - before

    def hexdigest(self) -> str:
        """Hex SHA-256 of the bytes read so far."""
        return self._digest.hexdigest()

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> HashingReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
