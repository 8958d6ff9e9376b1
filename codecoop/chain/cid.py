"""The on-chain form of a CID (see ``contracts/libraries/CidCodec.sol``).

Contracts take binary CIDv1 with a sha2-256 multihash and codec raw (0x55) or dag-pb (0x70):
36 bytes. These helpers convert between that and the base32 string the stores use, and refuse
anything else with ``InvalidCID``.
"""

from __future__ import annotations

from codecoop.errors import InvalidCID

__all__ = ["cid_to_bytes", "cid_from_bytes", "CODECS"]

CODECS = {0x55: "raw", 0x70: "dag-pb"}


def cid_to_bytes(cid: str) -> bytes:
    """Binary CIDv1 (36 bytes) of a CID string; the exact inverse of :func:`cid_from_bytes`."""
    from multiformats import CID

    try:
        parsed = CID.decode(cid)
    except Exception as exc:  # multiformats raises several unrelated types for bad input
        raise InvalidCID(f"{cid!r} is not a CID: {exc}") from None
    raw = bytes(parsed)
    _check(raw, cid)
    return raw


def cid_from_bytes(raw: bytes) -> str:
    """The base32 CIDv1 string of a binary CID read from the chain."""
    from multiformats import CID

    _check(bytes(raw), raw.hex())
    return CID.decode(bytes(raw)).encode("base32")


def _check(raw: bytes, shown: str) -> None:
    if len(raw) != 36 or raw[0] != 0x01 or raw[1] not in CODECS or raw[2:4] != b"\x12\x20":
        raise InvalidCID(
            f"{shown} is not a CIDv1 with a sha2-256 hash and codec raw or dag-pb, "
            "the only CIDs the contracts accept; add content with `--cid-version=1` (codecoop stores do)"
        )
