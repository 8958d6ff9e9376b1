"""How a node announces its objects and fetches other members' objects.

Two implementations of one small protocol: :class:`InProcessNetwork` for many nodes in one process
(the embedded default of ``codecoop sim``: each node keeps its own content store, and a fetch copies
verified bytes from the store of the node that holds them), and :class:`P2PTransport`, which uses a
libp2p host (signed gossip announcements, direct fetch from the announcing peer). The chain, not
the transport, says which CIDs belong to a round; the transport only says where to get them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from codecoop.errors import IntegrityError, ObjectNotFound, P2PError, StorageError
from codecoop.storage import ContentStore

__all__ = ["Transport", "InProcessNetwork", "InProcessTransport", "P2PTransport"]


class Transport(Protocol):
    """What the node needs from the network."""

    def announce(self, round: int, cid: str) -> None:
        """Tell the other members that this node holds ``cid`` for ``round``."""
        ...

    def fetch(self, cid: str, owner: str | None, *, max_size: int) -> bytes:
        """Get ``cid`` (preferably from ``owner``, a member address), verified and put in the node's store.

        Raises ``ObjectNotFound`` when no reachable peer has it.
        """
        ...

    def close(self) -> None:
        """Release network resources."""
        ...


@dataclass
class InProcessNetwork:
    """Nodes of one process, each with its own store; announcements are recorded in order."""

    stores: dict[str, ContentStore] = field(default_factory=dict)
    announcements: list[tuple[int, str, str]] = field(default_factory=list)  # (round, cid, sender)
    bytes_sent: dict[str, int] = field(default_factory=dict)

    def attach(self, address: str, store: ContentStore) -> InProcessTransport:
        """Register a node's store and return its transport."""
        self.stores[address] = store
        self.bytes_sent.setdefault(address, 0)
        return InProcessTransport(self, address, store)


@dataclass
class InProcessTransport:
    """One node's view of an :class:`InProcessNetwork`."""

    network: InProcessNetwork
    address: str
    store: ContentStore

    def announce(self, round: int, cid: str) -> None:
        self.network.announcements.append((round, cid, self.address))

    def fetch(self, cid: str, owner: str | None, *, max_size: int) -> bytes:
        holders = [owner] if owner in self.network.stores else []
        holders += [a for a in self.network.stores if a not in holders and a != self.address]
        for holder in holders:
            store = self.network.stores[holder]
            if not store.has(cid):
                continue
            data = store.get(cid, max_size=max_size)  # verified against the CID by the holder's store
            if self.store.put(data) != cid:
                raise IntegrityError(f"object fetched for {cid} from {holder} does not match its CID")
            self.network.bytes_sent[holder] = self.network.bytes_sent.get(holder, 0) + len(data)
            return data
        raise ObjectNotFound(f"no member of this process holds {cid}")

    def close(self) -> None:
        self.network.stores.pop(self.address, None)


class P2PTransport:
    """A :class:`codecoop.p2p.P2PHost` plus the member registry, as a node transport.

    Announcements received are remembered (CID -> announcing peer), so a fetch first asks the peer
    that announced the object, then the owner's registered peer, then every other active member.
    """

    def __init__(self, host: Any, store: ContentStore, peers_of: Callable[[], Iterable[tuple[str, str]]]):
        self.host = host
        self.store = store
        self.peers_of = peers_of  # () -> [(member address, peer id)] of active members
        self.announced: dict[str, str] = {}

    def _drain(self) -> None:
        while (a := self.host.next_announcement(timeout=0)) is not None:
            self.announced[a.cid] = a.peer

    def announce(self, round: int, cid: str) -> None:
        try:
            self.host.announce(round, cid)
        except P2PError:
            pass  # gossip is a hint; peers also find the owner through the registry

    def fetch(self, cid: str, owner: str | None, *, max_size: int) -> bytes:
        self._drain()
        registered = dict(self.peers_of())
        candidates = [self.announced.get(cid), registered.get(owner) if owner else None, *registered.values()]
        tried: list[str] = []
        errors: list[str] = []
        for peer in candidates:
            if not peer or peer in tried or peer == self.host.peer_id:
                continue
            tried.append(peer)
            try:
                return self.host.fetch(peer, cid, max_size=max_size, store=self.store)
            except (P2PError, StorageError) as exc:
                errors.append(f"{peer[:16]}...: {exc}")
        raise ObjectNotFound(f"{cid} could not be fetched from {len(tried)} peer(s): {'; '.join(errors) or 'none known'}")

    def close(self) -> None:
        self.host.stop()
