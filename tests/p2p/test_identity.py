"""The persisted libp2p identity: stable peer id across restarts, private file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from codecoop.errors import P2PError
from codecoop.p2p import load_or_create_identity, peer_id_of


def test_the_identity_is_created_once_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "libp2p.key"
    first = peer_id_of(load_or_create_identity(path))
    assert peer_id_of(load_or_create_identity(path)) == first
    assert first.startswith("12D3KooW")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_damaged_key_file_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "libp2p.key"
    path.write_bytes(b"garbage")
    with pytest.raises(P2PError, match="not a libp2p private key"):
        load_or_create_identity(path)
