"""The ``ContentStore`` protocol and the verifying reader every backend hands out.

A store never returns bytes it has not checked against the CID they were asked for: ``get`` hashes
the whole object before returning it, and ``open`` returns a :class:`VerifyingReader` that hashes
as the caller reads and raises :class:`~codecoop.errors.IntegrityError` on the read that reaches
the end, so a consumer that reads to the end can never act on unverified bytes without an error.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from codecoop.errors import IntegrityError, ObjectTooLarge
from codecoop.storage.cid import CidBuilder

__all__ = ["ContentStore", "VerifyingReader", "check_size", "verified_stream"]


@runtime_checkable
class ContentStore(Protocol):
    """A content-addressed object store; CIDs are kubo-identical CIDv1 base32 strings.

    Every read verifies the bytes against the CID and raises ``IntegrityError`` on a mismatch.
    ``max_size`` bounds what a read accepts (``ObjectTooLarge`` beyond it) so a hostile or broken
    source cannot make a reader buffer without limit.
    """

    def put(self, data: bytes | Path) -> str:
        """Store ``data`` (bytes, or the contents of a file) and return its CID."""
        ...

    def get(self, cid: str, *, max_size: int | None = None) -> bytes:
        """Return the object's bytes, verified against ``cid``."""
        ...

    def open(self, cid: str, *, max_size: int | None = None) -> BinaryIO:
        """Return a stream of the object's bytes, verified by the end of the read."""
        ...

    def has(self, cid: str) -> bool:
        """Whether the store holds the object (without reading it)."""
        ...

    def pin(self, cid: str) -> None:
        """Keep the object when the store collects garbage."""
        ...

    def unpin(self, cid: str) -> None:
        """Let garbage collection remove the object again; a no-op when it is not pinned."""
        ...


def check_size(cid: str, size: int, max_size: int | None) -> None:
    """Raise ``ObjectTooLarge`` when ``size`` passes ``max_size``."""
    if max_size is not None and size > max_size:
        raise ObjectTooLarge(f"object {cid} is larger than the {max_size:,} bytes allowed here (at least {size:,})")


def verified_stream(source: BinaryIO, cid: str, *, max_size: int | None = None) -> BinaryIO:
    """Wrap a raw stream of an object as a buffered reader that verifies it against ``cid``.

    The :class:`VerifyingReader` underneath is the returned object's ``raw`` attribute.
    """
    reader = VerifyingReader(source, cid, max_size=max_size)
    return io.BufferedReader(reader, buffer_size=1024 * 1024)  # type: ignore[return-value]


class VerifyingReader(io.RawIOBase):
    """Wraps a raw byte stream; hashes what passes through and checks the CID at the end.

    The read that reaches the end of the underlying stream raises ``IntegrityError`` instead of
    returning end-of-file when the bytes do not match ``cid``; passing ``max_size`` raises
    ``ObjectTooLarge`` as soon as more bytes arrive. Closing the reader closes the source.
    """

    def __init__(self, source: BinaryIO, cid: str, *, max_size: int | None = None) -> None:
        super().__init__()
        self._source = source
        self._cid = cid
        self._max_size = max_size
        self._builder = CidBuilder()
        self._verified = False
        self._failure: IntegrityError | None = None

    @property
    def cid(self) -> str:
        """The CID the bytes are checked against."""
        return self._cid

    @property
    def verified(self) -> bool:
        """True once the whole object has been read and matched its CID."""
        return self._verified

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._verified:
            return 0
        view = memoryview(buffer).cast("B")
        n = self._source.readinto(view)  # type: ignore[attr-defined]
        if n is None:
            raise BlockingIOError("source stream is non-blocking and has no data")
        if n == 0:
            self._finish()
            return 0
        self._builder.update(view[:n])
        check_size(self._cid, self._builder.size, self._max_size)
        return n

    def readall(self) -> bytes:
        chunks = bytearray()
        buffer = bytearray(1024 * 1024)
        while True:
            n = self.readinto(buffer)
            if not n:
                return bytes(chunks)
            chunks += memoryview(buffer)[:n]

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()

    def _finish(self) -> None:
        # A caller that reads again after a failure must get the same error, never end-of-file.
        if self._failure is not None:
            raise self._failure
        actual = self._builder.finish()
        if actual != self._cid:
            self._failure = IntegrityError(
                f"object {self._cid} failed verification: its {self._builder.size:,} bytes hash to "
                f"{actual}; the copy is corrupt or truncated and was not used"
            )
            raise self._failure
        self._verified = True
