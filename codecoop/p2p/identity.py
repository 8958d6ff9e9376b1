"""The node's persisted libp2p identity: an Ed25519 key kept in a file, so the peer id is stable.

The peer id is what a member registers in the chain's MemberRegistry; a node that made a new key on
every start would be unreachable under its registered id. The file holds the key in libp2p's
protobuf encoding (as go-libp2p and kubo write it), readable only by its owner.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.serialization import deserialize_private_key
from libp2p.peer.id import ID

from codecoop.errors import P2PError

__all__ = ["load_or_create_identity", "peer_id_of"]


def load_or_create_identity(path: Path | str) -> KeyPair:
    """Return the key pair stored at ``path``, creating it (mode 0600) on first use."""
    path = Path(path)
    if path.exists():
        try:
            private = deserialize_private_key(path.read_bytes())
        except Exception as exc:  # the decoder raises protobuf and key-type errors alike
            raise P2PError(
                f"{path} is not a libp2p private key file ({exc}); move it away to make a new "
                "identity (the peer id registered on the chain will change)"
            ) from exc
        return KeyPair(private, private.get_public_key())
    key_pair = create_new_key_pair()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name, then renamed: a crash never leaves a half-written key that
    # a later start would refuse.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(key_pair.private_key.serialize())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return key_pair


def peer_id_of(key_pair: KeyPair) -> str:
    """The base58 peer id (``12D3Koo…``) of a key pair."""
    return ID.from_pubkey(key_pair.public_key).to_base58()
