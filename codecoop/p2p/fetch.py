"""Direct fetch: get an object by CID straight from a peer over a libp2p stream.

Used when no shared IPFS daemon is reachable. Wire format on protocol ``/codecoop/fetch/1.0.0``:

* request: 2-byte big-endian length, then UTF-8 JSON ``{"cid": str, "max_size": int}``
  (at most 512 bytes);
* response: 1 status byte (:class:`Status`), 8-byte big-endian object size, then exactly that
  many bytes when the status is ``OK``; the server then closes the stream.

The server only sends objects it has verified itself (``ContentStore.get``). The client trusts
nothing: it refuses a size above its limit before reading the body, gives up when the peer stalls
or the whole transfer takes too long, hashes what arrives, and returns (or stores) the bytes only
when they match the CID.
"""

from __future__ import annotations

import enum
import json
import logging
import struct
from collections.abc import Callable

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamEOF, StreamError
from libp2p.peer.id import ID
from libp2p.stream_muxer.exceptions import MuxedStreamError

from codecoop.errors import (
    CodecoopError,
    IntegrityError,
    ObjectNotFound,
    ObjectTooLarge,
    P2PError,
    PeerBusy,
    StorageError,
)
from codecoop.storage.base import ContentStore
from codecoop.storage.cid import CidBuilder, parse_cid

__all__ = [
    "FETCH_PROTOCOL",
    "FetchServer",
    "Status",
    "fetch_object",
]

log = logging.getLogger(__name__)

FETCH_PROTOCOL = TProtocol("/codecoop/fetch/1.0.0")
_MAX_REQUEST = 512
_HEADER = struct.Struct(">BQ")
_SLICE = 1024 * 1024


class Status(enum.IntEnum):
    """First byte of a fetch response."""

    OK = 0
    NOT_FOUND = 1
    TOO_LARGE = 2
    BAD_REQUEST = 3
    BUSY = 4


class FetchServer:
    """Answers fetch requests from a content store, a bounded number at a time.

    Parameters
    ----------
    store
        Where objects are served from; every object is verified by ``store.get`` before sending.
    max_size
        Largest object served.
    concurrency
        Requests served at once; others get ``BUSY`` at once rather than queueing.
    io_timeout
        Seconds a client may take to send its request or to accept the next slice of the reply.
    """

    def __init__(
        self,
        store: ContentStore,
        *,
        max_size: int,
        concurrency: int = 4,
        io_timeout: float = 30.0,
    ) -> None:
        self.store = store
        self.max_size = max_size
        self.io_timeout = io_timeout
        self._slots = trio.Semaphore(concurrency)
        self.on_served: Callable[[str, int, str], None] | None = None
        """Called with (peer id, bytes, CID) after each object sent whole (the node counts what it serves)."""

    async def handle(self, stream: INetStream) -> None:
        """libp2p stream handler for :data:`FETCH_PROTOCOL`."""
        try:
            await self._serve(stream)
        except Exception as exc:  # a bad or slow client must never hurt the host
            log.debug("fetch request from %s failed: %s", _remote(stream), exc)
            await _reset(stream)
        else:
            await _close(stream)

    async def _serve(self, stream: INetStream) -> None:
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            await stream.write(_HEADER.pack(Status.BUSY, 0))
            return
        try:
            with trio.fail_after(self.io_timeout):
                request = await _read_request(stream)
            if request is None:
                await stream.write(_HEADER.pack(Status.BAD_REQUEST, 0))
                return
            cid, max_size = request
            limit = min(max_size, self.max_size)
            try:
                data = await trio.to_thread.run_sync(lambda: self.store.get(cid, max_size=limit))
            except ObjectTooLarge:
                await stream.write(_HEADER.pack(Status.TOO_LARGE, 0))
                return
            except StorageError:
                # Missing, or our own copy is damaged: either way nothing trustworthy to send.
                await stream.write(_HEADER.pack(Status.NOT_FOUND, 0))
                return
            view = memoryview(data)
            with trio.fail_after(self.io_timeout):
                await stream.write(_HEADER.pack(Status.OK, len(data)))
            for start in range(0, len(view), _SLICE):
                with trio.fail_after(self.io_timeout):
                    await stream.write(bytes(view[start : start + _SLICE]))
            if self.on_served is not None:
                self.on_served(_remote(stream), len(data), cid)
        finally:
            self._slots.release()


async def fetch_object(
    host: IHost,
    peer: ID,
    cid: str,
    *,
    max_size: int,
    timeout: float,
    stall_timeout: float,
) -> bytes:
    """Fetch ``cid`` from ``peer`` and return its bytes, verified against the CID.

    Raises
    ------
    ObjectNotFound
        The peer does not have the object.
    ObjectTooLarge
        The object is larger than ``max_size`` (known from the header; the body is not read).
    IntegrityError
        The peer sent bytes that do not match the CID, or fewer than it announced.
    PeerBusy
        The peer serves as many fetches as it allows at once (a ``P2PError``: ask again shortly).
    P2PError
        The peer could not be reached, refused, stalled for ``stall_timeout`` seconds, or the
        transfer took longer than ``timeout`` seconds.
    """
    cid = parse_cid(cid)
    who = f"peer {peer.to_base58()}"
    received = 0
    try:
        with trio.fail_after(timeout):
            try:
                stream = await host.new_stream(peer, [FETCH_PROTOCOL])
            except Exception as exc:
                raise P2PError(
                    f"cannot open a fetch stream to {who}: {exc} (dial it first, or pass its full multiaddr …/p2p/<peer id>)"
                ) from exc
            try:
                request = json.dumps({"cid": cid, "max_size": max_size}).encode()
                with trio.fail_after(stall_timeout):
                    await stream.write(struct.pack(">H", len(request)) + request)
                    header = await _read_exactly(stream, _HEADER.size)
                status, size = _HEADER.unpack(header)
                if status == Status.NOT_FOUND:
                    raise ObjectNotFound(f"{who} does not have {cid}")
                if status == Status.TOO_LARGE or (status == Status.OK and size > max_size):
                    raise ObjectTooLarge(f"{who} offers {cid} larger than the {max_size:,} bytes allowed here")
                if status == Status.BUSY:
                    raise PeerBusy(f"{who} is serving as many fetches as it allows; ask again shortly")
                if status != Status.OK:
                    name = Status(status).name if status in Status._value2member_map_ else status
                    raise P2PError(f"{who} refused to send {cid} (status {name})")
                body = bytearray(size)
                view = memoryview(body)
                builder = CidBuilder()
                while received < size:
                    with trio.fail_after(stall_timeout):
                        chunk = await _read_some(stream, min(_SLICE, size - received))
                    if not chunk:
                        raise IntegrityError(
                            f"{who} sent {received:,} of the {size:,} bytes of {cid} and stopped; the truncated copy was discarded"
                        )
                    view[received : received + len(chunk)] = chunk
                    builder.update(chunk)
                    received += len(chunk)
            except CodecoopError:
                await _reset(stream)
                raise
            except (StreamError, MuxedStreamError, OSError) as exc:
                await _reset(stream)
                raise P2PError(f"{who} broke off sending {cid} after {received:,} bytes: {exc}") from exc
            except BaseException:
                await _reset(stream)
                raise
            await _close(stream)
    except trio.TooSlowError:
        raise P2PError(
            f"fetching {cid} from {who} timed out after {received:,} bytes (no progress for "
            f"{stall_timeout:g}s, or more than {timeout:g}s in all)"
        ) from None
    actual = builder.finish()
    if actual != cid:
        raise IntegrityError(f"{who} sent {size:,} bytes for {cid} that hash to {actual}; they were discarded")
    return bytes(body)


async def _read_request(stream: INetStream) -> tuple[str, int] | None:
    (length,) = struct.unpack(">H", await _read_exactly(stream, 2))
    if length > _MAX_REQUEST:
        return None
    try:
        request = json.loads(await _read_exactly(stream, length))
        cid = parse_cid(request["cid"])
        max_size = request["max_size"]
    except (ValueError, KeyError, TypeError, StorageError):
        return None
    if type(max_size) is not int or max_size < 0:
        return None
    return cid, max_size


async def _read_some(stream: INetStream, n: int) -> bytes:
    """Up to ``n`` bytes; ``b""`` at the end of the stream."""
    try:
        return bytes(await stream.read(n))
    except StreamEOF:
        return b""


async def _read_exactly(stream: INetStream, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = await _read_some(stream, n - len(out))
        if not chunk:
            raise P2PError(f"stream from {_remote(stream)} ended after {len(out)} of {n} bytes")
        out += chunk
    return bytes(out)


async def _close(stream: INetStream) -> None:
    with trio.move_on_after(2) as scope:
        scope.shield = True
        try:
            await stream.close()
        except Exception as exc:  # closing a stream the peer already dropped is not an error
            log.debug("closing fetch stream: %s", exc)


async def _reset(stream: INetStream) -> None:
    # Shielded: a reset must still go out when the fetch is being cancelled.
    with trio.move_on_after(2) as scope:
        scope.shield = True
        try:
            await stream.reset()
        except Exception as exc:  # same: the stream may already be gone
            log.debug("resetting fetch stream: %s", exc)


def _remote(stream: INetStream) -> str:
    try:
        return stream.muxed_conn.peer_id.to_base58()
    except AttributeError:
        return "unknown peer"
