"""Peer-to-peer layer: one py-libp2p host per node, with a small blocking API.

* :class:`P2PHost` runs the host on trio in its own thread: a persisted identity, a listen
  address, bootstrap and member peers, a gossipsub topic per federation for signed
  announcements, and a direct-fetch protocol that serves objects from a content store.
* :mod:`~codecoop.p2p.announce` holds the announcement format and the checks (signature by the
  member's Ethereum key, replay and staleness), usable without a network.

Importing this package loads libp2p and trio; :mod:`codecoop.storage` never does.
"""

from __future__ import annotations

from codecoop.p2p.announce import (
    Announcement,
    AnnouncementValidator,
    Verdict,
    sign_announcement,
)
from codecoop.p2p.fetch import FETCH_PROTOCOL
from codecoop.p2p.host import P2PConfig, P2PHost, announcement_topic
from codecoop.p2p.identity import load_or_create_identity, peer_id_of

__all__ = [
    "FETCH_PROTOCOL",
    "Announcement",
    "AnnouncementValidator",
    "P2PConfig",
    "P2PHost",
    "Verdict",
    "announcement_topic",
    "load_or_create_identity",
    "peer_id_of",
    "sign_announcement",
]
