"""Content identifiers: parsing and a pure-Python, kubo-identical CIDv1 builder.

codecoop names every object by the CID that ``ipfs add --cid-version=1 --raw-leaves`` gives it
(kubo and js-ipfs agree): the bytes are cut into 256 KiB chunks, each chunk is a ``raw`` block, and
when there is more than one chunk they are joined by a balanced tree of UnixFS ``dag-pb`` nodes with
at most 174 links each. A single chunk (and the empty object) is its own ``raw`` CID.

Reproducing the recipe here, rather than asking a daemon, lets the embedded store and every reader
verify bytes without a daemon, and lets a reader check a stream as it arrives: leaves are hashed as
the bytes go by, and only the small tree of links is built at the end.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable

from multiformats import CID

from codecoop.errors import InvalidCID

__all__ = [
    "CHUNK_SIZE",
    "MAX_LINKS",
    "CidBuilder",
    "cid_of",
    "cid_of_chunks",
    "parse_cid",
]

CHUNK_SIZE = 256 * 1024
"""Leaf size of kubo's default ``size-262144`` chunker."""

MAX_LINKS = 174
"""Links per UnixFS node in kubo's and js-ipfs's balanced layout."""

_CODEC_RAW = 0x55
_CODEC_DAG_PB = 0x70
_SHA2_256 = 0x12
_UNIXFS_FILE = 2
_CANONICAL_LENGTH = 59  # "b" + base32 of 36 bytes (version, codec, sha2-256 multihash header, digest)


def parse_cid(text: str) -> str:
    """Validate a CID string and return it in canonical form (CIDv1, base32, lower case).

    Only the CIDs codecoop itself produces are accepted: CIDv1, sha2-256, codec ``raw`` or
    ``dag-pb``. Any other CID could never pass verification, so it is refused up front.

    Raises
    ------
    InvalidCID
        The string is not a CID, or not one that codecoop's recipe produces.
    """
    if not isinstance(text, str) or not text or len(text) > 200:
        raise InvalidCID(f"not a CID: {text!r:.80}")
    canonical = _canonical_fast(text)
    if canonical is not None:
        return canonical
    try:
        cid = CID.decode(text.strip())
    except Exception as exc:  # multiformats raises several unrelated types for bad input
        raise InvalidCID(f"not a CID: {text!r:.80} ({exc})") from None
    if cid.version != 1:
        raise InvalidCID(f"{text} is a CIDv{cid.version}; codecoop names objects by CIDv1 (ipfs add --cid-version=1 --raw-leaves)")
    if cid.hashfun.name != "sha2-256" or len(cid.raw_digest) != 32:
        raise InvalidCID(f"{text} uses hash {cid.hashfun.name}; codecoop CIDs use sha2-256")
    if cid.codec.name not in ("raw", "dag-pb"):
        raise InvalidCID(f"{text} has codec {cid.codec.name}; codecoop CIDs are raw or dag-pb")
    return _cid_string(bytes(cid))


def _canonical_fast(text: str) -> str | None:
    """Recognise an already canonical CID without the general decoder (reads check every CID).

    Returns ``None`` for anything else, which then takes the general path and its error messages.
    """
    if len(text) != _CANONICAL_LENGTH or text[0] != "b" or not text.islower():
        return None
    try:
        binary = base64.b32decode(text[1:].upper() + "=" * (-(len(text) - 1) % 8))
    except ValueError:
        return None
    if binary[0] != 1 or binary[1] not in (_CODEC_RAW, _CODEC_DAG_PB) or binary[2:4] != b"\x12\x20":
        return None
    # base32 ignores the spare bits of the last character: only the one true spelling passes.
    return text if _cid_string(binary) == text else None


def cid_of(data: bytes | bytearray | memoryview) -> str:
    """Return the CID of ``data`` (what ``ipfs add --cid-version=1 --raw-leaves`` prints)."""
    builder = CidBuilder()
    builder.update(data)
    return builder.finish()


def cid_of_chunks(chunks: Iterable[bytes | bytearray | memoryview]) -> str:
    """Return the CID of the concatenation of ``chunks`` (any sizes), without joining them."""
    builder = CidBuilder()
    for chunk in chunks:
        builder.update(chunk)
    return builder.finish()


class CidBuilder:
    """Computes a CID incrementally over bytes fed in any pieces.

    Feeding with :meth:`update` hashes every complete 256 KiB chunk at once, so memory stays at
    one chunk plus 36 bytes per chunk seen; :meth:`finish` builds the link tree and returns the CID.
    """

    __slots__ = ("_pending", "_leaves", "_size", "_done")

    def __init__(self) -> None:
        self._pending = bytearray()
        # One (binary CID, cumulative size, file bytes) triple per leaf.
        self._leaves: list[tuple[bytes, int, int]] = []
        self._size = 0
        self._done = False

    @property
    def size(self) -> int:
        """Bytes fed so far."""
        return self._size

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next bytes of the object."""
        if self._done:
            raise RuntimeError("CidBuilder.update() after finish()")
        view = memoryview(data).cast("B")
        self._size += len(view)
        if self._pending:
            need = CHUNK_SIZE - len(self._pending)
            self._pending += view[:need]
            view = view[need:]
            if len(self._pending) < CHUNK_SIZE:
                return
            self._add_leaf(self._pending)
            self._pending = bytearray()
        whole = len(view) - len(view) % CHUNK_SIZE
        for start in range(0, whole, CHUNK_SIZE):
            self._add_leaf(view[start : start + CHUNK_SIZE])
        if whole < len(view):
            self._pending += view[whole:]

    def finish(self) -> str:
        """Return the CID of everything fed; the builder cannot be fed afterwards."""
        if self._done:
            raise RuntimeError("CidBuilder.finish() called twice")
        self._done = True
        # An empty object, like a trailing partial chunk, is one (possibly short) raw leaf.
        if self._pending or not self._leaves:
            self._add_leaf(self._pending)
            self._pending = bytearray()
        return _cid_string(_balanced_root(self._leaves)[0])

    def _add_leaf(self, chunk: bytes | bytearray | memoryview) -> None:
        digest = hashlib.sha256(chunk).digest()
        self._leaves.append((_binary_cid(_CODEC_RAW, digest), len(chunk), len(chunk)))


def _balanced_root(leaves: list[tuple[bytes, int, int]]) -> tuple[bytes, int, int]:
    """Join leaves into kubo's balanced tree and return the root's (CID, tsize, file size).

    Grouping each level into runs of 174 gives the same tree as kubo's depth-first builder: every
    node but the last on a level is full, and a lone trailing child still gets its own parent.
    """
    level = leaves
    while len(level) > 1:
        level = [_parent(level[i : i + MAX_LINKS]) for i in range(0, len(level), MAX_LINKS)]
    return level[0]


def _parent(children: list[tuple[bytes, int, int]]) -> tuple[bytes, int, int]:
    """Encode one UnixFS file node over ``children``; return its (CID, tsize, file size)."""
    file_size = sum(child[2] for child in children)
    unixfs = bytearray(b"\x08" + _varint(_UNIXFS_FILE))
    unixfs += b"\x18" + _varint(file_size)
    for child in children:
        unixfs += b"\x20" + _varint(child[2])
    # dag-pb's canonical form writes Links (field 2) before Data (field 1); each link carries an
    # empty Name, as both kubo and js-ipfs write it.
    node = bytearray()
    for cid, tsize, _ in children:
        link = b"\x0a" + _varint(len(cid)) + cid + b"\x12\x00" + b"\x18" + _varint(tsize)
        node += b"\x12" + _varint(len(link)) + link
    node += b"\x0a" + _varint(len(unixfs)) + unixfs
    tsize = len(node) + sum(child[1] for child in children)
    return _binary_cid(_CODEC_DAG_PB, hashlib.sha256(node).digest()), tsize, file_size


def _binary_cid(codec: int, sha256_digest: bytes) -> bytes:
    return b"\x01" + _varint(codec) + b"\x12\x20" + sha256_digest


def _cid_string(binary: bytes) -> str:
    # Multibase base32 (prefix "b"): RFC 4648 alphabet, lower case, no padding.
    return "b" + base64.b32encode(binary).decode("ascii").lower().rstrip("=")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
