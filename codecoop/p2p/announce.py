"""Signed update announcements and the checks a peer applies before it believes or relays one.

An announcement says "member ``sender`` has put object ``cid`` for round ``round`` of federation
``federation``; fetch it from libp2p peer ``peer``". It is signed with the member's Ethereum key
(EIP-191 ``personal_sign`` over a canonical encoding), so any peer can check it against the address
the chain knows, without trusting the libp2p host that relayed it.

Replays are refused by a random nonce remembered for the accepted clock-skew window, and anything
older than that window is refused as stale, so the nonce memory stays bounded. This module needs
only eth-account: the checks are plain functions, tested without a network.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import is_checksum_address, to_checksum_address

from codecoop.errors import InvalidCID, P2PError
from codecoop.storage.cid import parse_cid

__all__ = [
    "MAX_ANNOUNCEMENT_BYTES",
    "Announcement",
    "MalformedAnnouncement",
    "AnnouncementValidator",
    "Verdict",
    "sign_announcement",
]

MAX_ANNOUNCEMENT_BYTES = 2048
"""Larger gossip payloads are refused before any parsing."""

_DOMAIN = b"codecoop/announcement/v1\n"
#: Round numbers and timestamps are refused from here on: no honest peer sends them, and a
#: timestamp past a float's range would break the clock comparison.
_MAX_INT = 2**64


class MalformedAnnouncement(P2PError, ValueError):
    """A gossip payload is not a well-formed announcement (a ``ValueError`` too, for older callers)."""


_FIELDS = ("federation", "round", "cid", "sender", "peer", "nonce", "timestamp")


@dataclass(frozen=True)
class Announcement:
    """One signed announcement of an update (or aggregate) available for a round.

    Attributes
    ----------
    federation
        Federation name; also names the gossip topic, and is signed so an announcement cannot be
        replayed into another federation.
    round
        Round number on the chain.
    cid
        CID of the announced object.
    sender
        Checksummed Ethereum address of the member that signed.
    peer
        libp2p peer id (base58) of the host that published it: where to fetch the object.
    nonce
        32 hex characters, random per announcement.
    timestamp
        Unix seconds when it was signed.
    signature
        65-byte EIP-191 signature by ``sender`` over :meth:`signing_bytes`.
    """

    federation: str
    round: int
    cid: str
    sender: str
    peer: str
    nonce: str
    timestamp: int
    signature: bytes = b""

    def signing_bytes(self) -> bytes:
        """The canonical bytes the signature covers: every field but the signature."""
        body = {name: getattr(self, name) for name in _FIELDS}
        return _DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def to_bytes(self) -> bytes:
        """Wire encoding (compact JSON) carried in a gossip message."""
        body: dict[str, Any] = {name: getattr(self, name) for name in _FIELDS}
        body["signature"] = "0x" + self.signature.hex()
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Announcement:
        """Parse the wire encoding (the signature unchecked).

        Raises
        ------
        MalformedAnnouncement
            For anything that is not exactly an announcement.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise MalformedAnnouncement(f"an announcement is bytes, not {type(data).__name__}")
        if len(data) > MAX_ANNOUNCEMENT_BYTES:
            raise MalformedAnnouncement(f"announcement of {len(data)} bytes exceeds {MAX_ANNOUNCEMENT_BYTES}")
        try:
            body = json.loads(bytes(data))
        except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON; arrays nested past the stack
            raise MalformedAnnouncement(f"announcement is not JSON: {str(exc)[:120]}") from None
        if not isinstance(body, dict) or set(body) != {*_FIELDS, "signature"}:
            raise MalformedAnnouncement("announcement must be an object with exactly the known fields")
        for name in ("federation", "cid", "sender", "peer", "nonce", "signature"):
            if not isinstance(body[name], str):
                raise MalformedAnnouncement(f"announcement field {name!r} must be a string")
        for name in ("round", "timestamp"):
            if type(body[name]) is not int or not 0 <= body[name] < _MAX_INT:
                raise MalformedAnnouncement(f"announcement field {name!r} must be an integer in [0, 2**64)")
        signature = body.pop("signature")
        if not signature.startswith("0x") or len(signature) != 132:
            raise MalformedAnnouncement("announcement signature must be 65 bytes in 0x-hex")
        try:
            raw_signature = bytes.fromhex(signature[2:])
        except ValueError:
            raise MalformedAnnouncement("announcement signature must be 65 bytes in 0x-hex") from None
        if len(body["nonce"]) != 32 or not all(c in "0123456789abcdef" for c in body["nonce"]):
            raise MalformedAnnouncement("announcement nonce must be 32 lower-case hex characters")
        if not is_checksum_address(body["sender"]):
            raise MalformedAnnouncement("announcement sender must be a checksummed Ethereum address")
        return cls(**body, signature=raw_signature)

    def recover_signer(self) -> str:
        """The address that produced :attr:`signature` (anyone's, if it is forged)."""
        message = encode_defunct(primitive=self.signing_bytes())
        return str(Account.recover_message(message, signature=self.signature))


def sign_announcement(
    account: LocalAccount,
    *,
    federation: str,
    round: int,
    cid: str,
    peer: str,
    timestamp: int | None = None,
) -> Announcement:
    """Make and sign an announcement with the member's Ethereum key."""
    unsigned = Announcement(
        federation=federation,
        round=round,
        cid=parse_cid(cid),
        sender=to_checksum_address(account.address),
        peer=peer,
        nonce=secrets.token_hex(16),
        timestamp=int(time.time()) if timestamp is None else timestamp,
    )
    signed = account.sign_message(encode_defunct(primitive=unsigned.signing_bytes()))
    return replace(unsigned, signature=bytes(signed.signature))


@dataclass(frozen=True)
class Verdict:
    """Outcome of checking one gossip message: the announcement, or why it was dropped."""

    announcement: Announcement | None
    reason: str = "accepted"

    @property
    def accepted(self) -> bool:
        return self.announcement is not None


class AnnouncementValidator:
    """Checks gossip payloads for one federation; remembers nonces to refuse replays.

    Reasons a message is dropped (the keys of :attr:`dropped`):
    ``malformed`` (not an announcement), ``wrong-federation``, ``invalid-cid``, ``forged`` (the
    signature is not the sender's, or the publishing host is not the announced peer),
    ``replayed`` (nonce already seen), ``stale`` (timestamp outside the skew window) and
    ``unauthorized`` (refused by the ``authorize`` hook, e.g. not a registered member).

    Thread-safe: libp2p calls it on its own thread, tests and the node on theirs.

    Parameters
    ----------
    federation
        Only announcements for this federation are accepted.
    max_skew
        Seconds an announcement's timestamp may differ from the local clock.
    authorize
        Optional policy hook (membership in the chain's MemberRegistry, peer id binding); it sees
        only announcements whose signature already checked out.
    clock
        Source of the current Unix time (tests move it).
    """

    def __init__(
        self,
        federation: str,
        *,
        max_skew: float = 300.0,
        authorize: Callable[[Announcement], bool] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.federation = federation
        self.max_skew = max_skew
        self.authorize = authorize
        self.clock = clock
        self.dropped: Counter[str] = Counter()
        self._seen: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def check(self, data: bytes, *, origin_peer: str | None = None) -> Verdict:
        """Decide on one payload; ``origin_peer`` is the libp2p peer that first published it."""
        verdict = self._check(data, origin_peer)
        if not verdict.accepted:
            with self._lock:
                self.dropped[verdict.reason] += 1
        return verdict

    def _check(self, data: bytes, origin_peer: str | None) -> Verdict:
        try:
            announcement = Announcement.from_bytes(data)
        except MalformedAnnouncement:
            return Verdict(None, "malformed")
        if announcement.federation != self.federation:
            return Verdict(None, "wrong-federation")
        try:
            if parse_cid(announcement.cid) != announcement.cid:
                return Verdict(None, "invalid-cid")
        except InvalidCID:
            return Verdict(None, "invalid-cid")
        try:
            signer = announcement.recover_signer()
        except Exception:  # eth-account raises several types for an unusable signature
            return Verdict(None, "forged")
        if signer != announcement.sender:
            return Verdict(None, "forged")
        key = (announcement.sender, announcement.nonce)
        now = self.clock()
        with self._lock:
            if key in self._seen:
                return Verdict(None, "replayed")
        if abs(now - announcement.timestamp) > self.max_skew:
            return Verdict(None, "stale")
        if origin_peer is not None and origin_peer != announcement.peer:
            return Verdict(None, "forged")
        if self.authorize is not None and not self.authorize(announcement):
            return Verdict(None, "unauthorized")
        with self._lock:
            # Checked again under the lock: two copies racing in must not both pass.
            if key in self._seen:
                return Verdict(None, "replayed")
            self._seen[key] = announcement.timestamp
            self._forget_older_than(now - 2 * self.max_skew)
        return Verdict(announcement)

    def _forget_older_than(self, cutoff: float) -> None:
        # Nonces older than the skew window can go: their announcements are refused as stale.
        if len(self._seen) < 1024:
            return
        for key in [k for k, ts in self._seen.items() if ts < cutoff]:
            del self._seen[key]
