"""``IpfsStore``: the content store of a real IPFS daemon (kubo or js-ipfs), over its HTTP API.

Objects are added with ``--cid-version=1 --raw-leaves --chunker=size-262144``, so a daemon gives
them the same CIDs as :class:`~codecoop.storage.LocalStore`; the CID the daemon reports is checked
against the one computed here, and every byte read back is verified here again rather than trusting
the daemon. Every request carries a timeout both ways: the HTTP client's and the daemon's own
``timeout`` argument, because a daemon asked for a block it lacks would otherwise search for it
forever.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from codecoop.errors import (
    IntegrityError,
    ObjectNotFound,
    StorageError,
    StoreUnavailable,
)
from codecoop.storage.base import verified_stream
from codecoop.storage.cid import CHUNK_SIZE, CidBuilder, cid_of, parse_cid

with warnings.catch_warnings():
    # ipfshttpclient 0.8.0a2 warns at import about its alpha status and urllib3 options.
    warnings.simplefilter("ignore")
    import ipfshttpclient
    import ipfshttpclient.exceptions as ipfs_errors

__all__ = ["DEFAULT_API", "IpfsStore"]

DEFAULT_API = "/ip4/127.0.0.1/tcp/5001/http"

_ADD_OPTIONS = {
    "cid-version": 1,
    "raw-leaves": "true",
    "chunker": f"size-{CHUNK_SIZE}",
    "hash": "sha2-256",
    "cid-base": "base32",
    "pin": "false",
}
_UPLOAD_CHUNK = 1024 * 1024
_START_HINT = "start one with `scripts/ipfs-devnet.sh start`, or use store = 'embedded'"


class IpfsStore:
    """Content store backed by an IPFS daemon's HTTP RPC API.

    Parameters
    ----------
    api
        Multiaddr (``/ip4/127.0.0.1/tcp/5001/http``) or URL of the daemon's API.
    timeout
        Seconds any one request may take, end to end, before it fails with a typed error.
    has_timeout
        Seconds :meth:`has` waits for the daemon to find the object's root block; a daemon that
        does not answer ``offline`` lookups at once (js-ipfs) is given this long.
    """

    def __init__(self, api: str = DEFAULT_API, *, timeout: float = 30.0, has_timeout: float = 1.0):
        self.api = api
        self.timeout = timeout
        self.has_timeout = has_timeout
        try:
            self._client = ipfshttpclient.Client(api, timeout=timeout, chunk_size=_UPLOAD_CHUNK)
        except ipfs_errors.AddressError as exc:
            raise StoreUnavailable(f"{api!r} is not an IPFS API address: {exc}") from exc

    def __repr__(self) -> str:
        return f"IpfsStore(api={self.api!r})"

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()

    def version(self) -> str:
        """The daemon's version string; ``StoreUnavailable`` when it is down."""
        return str(self._call("version", lambda: self._client.version(timeout=5))["Version"])

    # --- writes ------------------------------------------------------------------------------
    def put(self, data: bytes | Path) -> str:
        """Add ``data`` (bytes, or the file at a path) to the daemon and return its CID."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            expected = cid_of(data)
            body: Any = bytes(data)
        else:
            expected = _file_cid(Path(data))
            body = _file_chunks(Path(data))
        reply = self._call(
            f"add {expected}",
            lambda: self._client.add_bytes(body, opts=self._opts(_ADD_OPTIONS)),
        )
        actual = parse_cid(reply if isinstance(reply, str) else reply["Hash"])
        if actual != expected:
            raise IntegrityError(
                f"the daemon at {self.api} named the object {actual}, but its bytes are {expected}: "
                "it ignored the add options (cid-version=1, raw-leaves, 256 KiB chunks)"
            )
        return actual

    def pin(self, cid: str) -> None:
        """Pin the object on the daemon; ``ObjectNotFound`` when it cannot be found in time."""
        cid = parse_cid(cid)
        self._call(f"pin {cid}", lambda: self._client.pin.add(cid, opts=self._opts({})), cid=cid)

    def unpin(self, cid: str) -> None:
        """Unpin the object (a no-op when it is not pinned)."""
        cid = parse_cid(cid)
        try:
            self._call(f"unpin {cid}", lambda: self._client.pin.rm(cid, opts=self._opts({})))
        except StorageError as exc:
            if "not pinned" not in str(exc):
                raise

    # --- reads -------------------------------------------------------------------------------
    def get(self, cid: str, *, max_size: int | None = None) -> bytes:
        """Return the object's bytes, verified here against ``cid``."""
        with self.open(cid, max_size=max_size) as stream:
            return stream.read()

    def open(self, cid: str, *, max_size: int | None = None) -> BinaryIO:
        """Return a stream of the object, verified by the read that reaches its end."""
        cid = parse_cid(cid)
        chunks = self._call(
            f"cat {cid}",
            lambda: self._client.cat(cid, stream=True, opts=self._opts({})),
            cid=cid,
        )
        source = _ChunkStream(iter(chunks), lambda exc: self._translate(exc, f"cat {cid}", cid))
        return verified_stream(source, cid, max_size=max_size)

    def has(self, cid: str) -> bool:
        """Whether the daemon holds the object's root block locally."""
        cid = parse_cid(cid)
        opts = {"offline": "true", "timeout": f"{int(self.has_timeout * 1000)}ms"}
        try:
            self._call(
                f"has {cid}",
                lambda: self._client.block.stat(cid, opts=opts, timeout=self.has_timeout + 5),
                cid=cid,
            )
        except ObjectNotFound:
            return False
        except StoreUnavailable:
            raise
        except StorageError:
            # Any other refusal (js-ipfs: "request timed out") means the block is not held here.
            return False
        return True

    # --- helpers -----------------------------------------------------------------------------
    def _opts(self, options: dict[str, Any]) -> dict[str, Any]:
        # The daemon-side timeout makes a daemon stop searching for a missing block; the client's
        # own timeout (a few seconds longer) still covers a daemon that hangs.
        return {**options, "timeout": f"{int(self.timeout * 1000)}ms"}

    def _call(self, what: str, request: Any, *, cid: str | None = None) -> Any:
        try:
            with warnings.catch_warnings():
                # ipfshttpclient hands urllib3 2 an option it warns about on every new connection.
                warnings.filterwarnings("ignore", "The 'strict' parameter", FutureWarning)
                return request()
        except ipfs_errors.Error as exc:
            raise self._translate(exc, what, cid) from exc

    def _translate(self, exc: Exception, what: str, cid: str | None = None) -> StorageError:
        if isinstance(exc, StorageError):
            return exc
        if isinstance(exc, ipfs_errors.ConnectionError):
            return StoreUnavailable(f"no IPFS daemon answers at {self.api} ({what}): {_START_HINT}")
        message = str(exc)
        timed_out = isinstance(exc, ipfs_errors.TimeoutError) or "timed out" in message
        if cid is not None and (timed_out or "not found" in message.lower()):
            if timed_out and not self._alive():
                return StoreUnavailable(f"the IPFS daemon at {self.api} stopped answering ({what}): {_START_HINT}")
            return ObjectNotFound(f"the IPFS daemon at {self.api} could not find {cid} within {self.timeout:g}s")
        if timed_out:
            return StoreUnavailable(f"the IPFS daemon at {self.api} did not answer {what} within {self.timeout:g}s")
        return StorageError(f"the IPFS daemon at {self.api} refused {what}: {message}")

    def _alive(self) -> bool:
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "The 'strict' parameter", FutureWarning)
                self._client.version(timeout=2)
        except ipfs_errors.Error:
            return False
        return True


class _ChunkStream(io.RawIOBase):
    """A raw stream over an iterator of byte chunks (the HTTP response body)."""

    def __init__(self, chunks: Iterator[bytes], translate: Any) -> None:
        super().__init__()
        self._chunks = chunks
        self._translate = translate
        self._rest = memoryview(b"")

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        # Closing early (e.g. an oversized object) must drop the HTTP response, not drain it.
        close = getattr(self._chunks, "close", None)
        if close is not None and not self.closed:
            close()
        super().close()

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._rest:
            try:
                self._rest = memoryview(next(self._chunks))
            except StopIteration:
                return 0
            except ipfs_errors.Error as exc:
                raise self._translate(exc) from exc
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


def _file_cid(path: Path) -> str:
    builder = CidBuilder()
    for chunk in _file_chunks(path):
        builder.update(chunk)
    return builder.finish()


def _file_chunks(path: Path) -> Iterator[bytes]:
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_UPLOAD_CHUNK):
                yield chunk
    except OSError as exc:
        raise StorageError(f"cannot read {path} to store it: {exc}") from exc
