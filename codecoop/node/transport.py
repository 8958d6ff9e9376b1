"""How a node announces its objects and fetches other members' objects.

Two implementations of one small protocol: :class:`InProcessNetwork` for many nodes in one process
(the embedded default of ``codecoop sim``: each node keeps its own content store, and a fetch copies
verified bytes from the store of the node that holds them), and :class:`P2PTransport`, which uses a
libp2p host (signed gossip announcements, direct fetch from any member known to hold the object).
The chain, not the transport, says which CIDs belong to a round; the transport only says where to
get them. Both count what they fetch (:class:`FetchCounters`): objects and bytes per path and per
peer, failed attempts and fetches that needed another source.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from codecoop.errors import IntegrityError, ObjectNotFound, P2PError, PeerBusy, StorageError
from codecoop.storage import ContentStore

__all__ = ["FetchCounters", "Transport", "InProcessNetwork", "InProcessTransport", "P2PTransport"]

#: How many holders of one object a :class:`P2PTransport` remembers (the newest announcements win).
_MAX_HOLDERS = 16
#: How many objects' holders it remembers (the oldest are forgotten first).
_MAX_OBJECTS = 4096
#: Seconds to wait before asking a busy holder again (bounded: then the fetch fails and the node retries later).
_BUSY_BACKOFF = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
#: Objects one member may offer for one round (its update, and copies of others' it holds); more are ignored.
_MAX_OFFERS_PER_MEMBER = 64
#: Rounds whose offers are remembered.
_OFFER_ROUNDS = 4
#: Seconds a peer that failed (unreachable, stalled, wrong bytes) is asked only after every other candidate.
_FAILED_COOLDOWN_S = 60.0


@dataclass
class FetchCounters:
    """What one node fetched from others (and served them), cumulative over its runs for one deployment.

    ``by_path`` and ``by_peer`` map a path (``"libp2p"``, ``"in-process"``) or a peer (libp2p peer id,
    or member address in process) to ``{"objects", "bytes", "failures"}``. ``failures`` counts
    attempts at one source that did not give a verified object; ``retries`` counts fetches that got
    the object only after another source failed; ``missed`` counts fetches that got it from nobody.
    ``served`` is what this node's own server sent to others, by peer.
    """

    objects: int = 0
    bytes: int = 0
    failures: int = 0
    retries: int = 0
    missed: int = 0
    by_path: dict[str, dict[str, int]] = field(default_factory=dict)
    by_peer: dict[str, dict[str, int]] = field(default_factory=dict)
    served: dict[str, dict[str, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @staticmethod
    def _bump(table: dict[str, dict[str, int]], key: str, **counts: int) -> None:
        row = table.setdefault(key, {"objects": 0, "bytes": 0, "failures": 0})
        for name, n in counts.items():
            row[name] += n

    def fetched(self, path: str, peer: str, size: int, *, after_failures: int = 0) -> None:
        """Count one verified object of ``size`` bytes from ``peer`` over ``path``."""
        with self._lock:
            self._fetched(path, peer, size, after_failures)

    def _fetched(self, path: str, peer: str, size: int, after_failures: int) -> None:
        self.objects += 1
        self.bytes += size
        self.retries += 1 if after_failures else 0
        self._bump(self.by_path, path, objects=1, bytes=size)
        self._bump(self.by_peer, peer, objects=1, bytes=size)

    def failed(self, path: str, peer: str) -> None:
        """Count one attempt at ``peer`` over ``path`` that gave nothing usable."""
        with self._lock:
            self.failures += 1
            self._bump(self.by_path, path, failures=1)
            self._bump(self.by_peer, peer, failures=1)

    def missed_one(self) -> None:
        """Count one fetch that got the object from nobody."""
        with self._lock:
            self.missed += 1

    def sent(self, peer: str, size: int) -> None:
        """Count one object of ``size`` bytes this node served to ``peer`` (called from any thread)."""
        with self._lock:
            self._bump(self.served, peer, objects=1, bytes=size)

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return self._json()

    def _json(self) -> dict[str, Any]:
        return {
            "objects": self.objects,
            "bytes": self.bytes,
            "failures": self.failures,
            "retries": self.retries,
            "missed": self.missed,
            "by_path": {k: dict(v) for k, v in sorted(self.by_path.items())},
            "by_peer": {k: dict(v) for k, v in sorted(self.by_peer.items())},
            "served": {k: dict(v) for k, v in sorted(self.served.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> FetchCounters:
        """Counters as :meth:`to_json` wrote them (``None`` or ``{}``: all zero)."""
        data = data or {}

        def table(key: str) -> dict[str, dict[str, int]]:
            return {k: {name: int(n) for name, n in row.items()} for k, row in (data.get(key) or {}).items()}

        return cls(
            objects=int(data.get("objects", 0)),
            bytes=int(data.get("bytes", 0)),
            failures=int(data.get("failures", 0)),
            retries=int(data.get("retries", 0)),
            missed=int(data.get("missed", 0)),
            by_path=table("by_path"),
            by_peer=table("by_peer"),
            served=table("served"),
        )

    def summary(self) -> str:
        """One line: what was fetched, over which paths, from how many peers, and what was served."""
        paths = ", ".join(f"{row['objects']} over {path}" for path, row in sorted(self.by_path.items()) if row["objects"])
        sources = sum(1 for row in self.by_peer.values() if row["objects"])
        served_objects = sum(row["objects"] for row in self.served.values())
        served_bytes = sum(row["bytes"] for row in self.served.values())
        return (
            f"fetched {self.objects} object(s), {_size(self.bytes)} ({paths or 'none'}) from {sources} peer(s); "
            f"{self.failures} failed attempt(s), {self.retries} fetch(es) after a retry, {self.missed} missed; "
            f"served {served_objects} object(s), {_size(served_bytes)} to {len(self.served)} peer(s)"
        )


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n:,} B"


class Transport(Protocol):
    """What the node needs from the network."""

    counters: FetchCounters
    """What this node fetched and served so far."""

    def announce(self, round: int, cid: str) -> None:
        """Tell the other members that this node holds ``cid`` for ``round`` (its own object, or a copy it fetched)."""
        ...

    def fetch(self, cid: str, owner: str | None, *, max_size: int) -> bytes:
        """Get ``cid`` (preferably from ``owner``, a member address), verified and put in the node's store.

        Raises ``ObjectNotFound`` when no reachable peer has it.
        """
        ...

    def offers(self, round: int) -> list[tuple[str, str]]:
        """``(cid, member address)`` of the objects other members announced for ``round``, oldest first."""
        ...

    def copies(self, cid: str) -> int:
        """How many other members are known to hold a copy of this node's object ``cid``."""
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
    transports: dict[str, InProcessTransport] = field(default_factory=dict)

    def attach(self, address: str, store: ContentStore, counters: FetchCounters | None = None) -> InProcessTransport:
        """Register a node's store and return its transport (counting into ``counters`` if given)."""
        self.stores[address] = store
        self.bytes_sent.setdefault(address, 0)
        transport = InProcessTransport(self, address, store, counters or FetchCounters())
        self.transports[address] = transport
        return transport


@dataclass
class InProcessTransport:
    """One node's view of an :class:`InProcessNetwork`."""

    network: InProcessNetwork
    address: str
    store: ContentStore
    counters: FetchCounters = field(default_factory=FetchCounters)
    path = "in-process"

    def announce(self, round: int, cid: str) -> None:
        self.network.announcements.append((round, cid, self.address))

    def fetch(self, cid: str, owner: str | None, *, max_size: int) -> bytes:
        holders = [owner] if owner in self.network.stores else []
        holders += [a for a in self.network.stores if a not in holders and a != self.address]
        failures = 0
        for holder in holders:
            store = self.network.stores[holder]
            if not store.has(cid):
                continue
            try:
                data = store.get(cid, max_size=max_size)  # verified against the CID by the holder's store
            except StorageError:
                self.counters.failed(self.path, holder)
                failures += 1
                continue
            if self.store.put(data) != cid:
                raise IntegrityError(f"object fetched for {cid} from {holder} does not match its CID")
            self.network.bytes_sent[holder] = self.network.bytes_sent.get(holder, 0) + len(data)
            self.counters.fetched(self.path, holder, len(data), after_failures=failures)
            served = self.network.transports.get(holder)
            if served is not None:
                served.counters.sent(self.address, len(data))
            return data
        self.counters.missed_one()
        if failures:
            raise IntegrityError(f"every member of this process that holds {cid} has a damaged copy")
        raise ObjectNotFound(f"no member of this process holds {cid}")

    def offers(self, round: int) -> list[tuple[str, str]]:
        return [(cid, sender) for r, cid, sender in self.network.announcements if r == round and sender != self.address]

    def copies(self, cid: str) -> int:
        return sum(1 for a, store in self.network.stores.items() if a != self.address and store.has(cid))

    def close(self) -> None:
        self.network.stores.pop(self.address, None)
        self.network.transports.pop(self.address, None)


class P2PTransport:
    """A :class:`codecoop.p2p.P2PHost` plus the member registry, as a node transport.

    Every announcement received is remembered (CID -> the peers that announced it: its submitter, and
    every member that fetched a copy and announced that it holds one), so an object stays available
    after its submitter leaves. A fetch asks, in order: announcers this host is connected to, other
    announcers, the owner's registered peer, every other active member; then, when the node's own
    store is an IPFS daemon (``ipfs``), that daemon, which may find the object on the IPFS network.
    Each attempt is verified against the CID and capped at ``max_size`` before it is stored.

    Parameters
    ----------
    host:
        The started :class:`~codecoop.p2p.P2PHost` (it serves ``store`` to peers).
    store:
        The node's own store: fetched objects are put there.
    peers_of:
        ``() -> [(member address, peer id, multiaddrs)]`` of the active members (the chain's registry);
        a member this host is not connected to is dialled at one of its registered addresses.
    counters:
        Where fetches are counted (a node passes its journal's, so counts survive restarts).
    ipfs:
        A store to read through as the last path (the node's own IPFS daemon), or ``None``.
    """

    path = "libp2p"

    def __init__(
        self,
        host: Any,
        store: ContentStore,
        peers_of: Callable[[], Iterable[tuple[str, str, Sequence[str]]]],
        *,
        counters: FetchCounters | None = None,
        ipfs: ContentStore | None = None,
    ):
        self.host = host
        self.store = store
        self.peers_of = peers_of
        self.counters = counters or FetchCounters()
        self.ipfs = ipfs
        self.holders: OrderedDict[str, list[str]] = OrderedDict()  # CID -> announcing peers, oldest first
        self._offers: OrderedDict[int, dict[str, str]] = OrderedDict()  # round -> CID -> announcing member, newest rounds kept
        self._served_to: dict[str, set[str]] = {}  # CID -> peers this host sent it to (this run)
        self._served_lock = threading.Lock()  # _served runs on the host's loop, copies() on the node's thread
        self._failed_at: dict[str, float] = {}  # peer -> when an attempt at it last failed (monotonic)
        server = getattr(host, "fetch_server", None)
        if server is not None:
            server.on_served = self._served

    def _drain(self) -> None:
        while (a := self.host.next_announcement(timeout=0)) is not None:
            self._remember(a.cid, a.peer)
            offered = self._offers.setdefault(a.round, {})
            if sum(1 for who in offered.values() if who == a.sender) < _MAX_OFFERS_PER_MEMBER:
                offered.setdefault(a.cid, a.sender)
            while len(self._offers) > _OFFER_ROUNDS:
                self._offers.popitem(last=False)

    def _served(self, peer: str, size: int, cid: str) -> None:
        self.counters.sent(peer, size)
        with self._served_lock:
            self._served_to.setdefault(cid, set()).add(peer)

    def offers(self, round: int) -> list[tuple[str, str]]:
        self._drain()
        return list(self._offers.get(round, {}).items())

    def copies(self, cid: str) -> int:
        """Peers this host served ``cid`` to, and other peers that announced holding it."""
        self._drain()
        with self._served_lock:
            holders = set(self._served_to.get(cid, ()))
        holders |= set(self.holders.get(cid, []))
        holders.discard(self.host.peer_id)
        return len(holders)

    def _remember(self, cid: str, peer: str) -> None:
        peers = self.holders.setdefault(cid, [])
        if peer in peers:
            peers.remove(peer)
        peers.append(peer)
        del peers[:-_MAX_HOLDERS]
        self.holders.move_to_end(cid)
        while len(self.holders) > _MAX_OBJECTS:
            self.holders.popitem(last=False)

    def announce(self, round: int, cid: str) -> None:
        self.host.refresh_peers()  # members that joined since the last dial get the next announcement
        try:
            self.host.announce(round, cid)
        except P2PError:
            pass  # gossip is a hint; peers also find the owner through the registry

    def candidates(self, cid: str, owner: str | None, connected: set[str] | None = None) -> list[str]:
        """Peers (ids) to ask for ``cid``, best first (see the class docstring); never this host.

        ``connected``: the peers this host is connected to, when the caller has asked already."""
        self._drain()
        registered = {address: peer for address, peer, _ in self.peers_of()}
        announcers = self.holders.get(cid, [])
        connected = self._connected() if connected is None else connected
        ordered: list[str | None] = [*(p for p in announcers if p in connected), *announcers]
        ordered += [registered.get(owner) if owner else None, *registered.values()]
        out: list[str] = []
        for peer in ordered:
            if peer and peer not in out and peer != self.host.peer_id:
                out.append(peer)
        # a peer that just failed (unreachable, stalled) is asked last: an unreachable one costs a dial timeout
        now = time.monotonic()
        recent = {p for p, at in self._failed_at.items() if now - at < _FAILED_COOLDOWN_S}
        return [p for p in out if p not in recent] + [p for p in out if p in recent]

    def _connected(self) -> set[str]:
        try:
            return set(self.host.peers())
        except P2PError:
            return set()

    def _dial_target(self, peer: str, connected: set[str]) -> str:
        """``peer`` itself when connected, else one of its registered multiaddrs (host.fetch dials it first)."""
        if peer in connected:
            return peer
        for _, registered, addrs in self.peers_of():
            if registered == peer and addrs:
                addr = addrs[0]
                return addr if "/p2p/" in addr else f"{addr}/p2p/{peer}"
        return peer

    def fetch(self, cid: str, owner: str | None, *, max_size: int) -> bytes:
        errors: list[str] = []
        connected = self._connected()
        peers = self.candidates(cid, owner, connected)
        asked = len(peers)
        busy: list[str] = []
        for attempt, delay in enumerate((0.0, *_BUSY_BACKOFF)):
            if attempt:  # only peers that were busy are asked again, after a growing pause
                if not busy:
                    break
                time.sleep(delay)
                peers, busy = busy, []
            for peer in peers:
                try:
                    data = self.host.fetch(self._dial_target(peer, connected), cid, max_size=max_size, store=self.store)
                except PeerBusy as exc:
                    self.counters.failed(self.path, peer)
                    errors.append(f"{peer[:16]}...: {exc}")
                    busy.append(peer)
                    continue
                except (P2PError, StorageError) as exc:
                    self.counters.failed(self.path, peer)
                    errors.append(f"{peer[:16]}...: {exc}")
                    if not isinstance(exc, ObjectNotFound):  # "I don't have it" is an answer, not a failure of the peer
                        self._failed_at[peer] = time.monotonic()
                    continue
                self._failed_at.pop(peer, None)
                self.counters.fetched(self.path, peer, len(data), after_failures=len(errors))
                self._remember(cid, peer)
                return data
        if self.ipfs is not None:
            try:
                data = self.ipfs.get(cid, max_size=max_size)  # verified against the CID by the store
            except StorageError as exc:
                self.counters.failed("ipfs", "ipfs-network")
                errors.append(f"the IPFS network: {exc}")
            else:
                self.counters.fetched("ipfs", "ipfs-network", len(data), after_failures=len(errors))
                return data
        self.counters.missed_one()
        raise ObjectNotFound(f"{cid} could not be fetched from {asked} peer(s): {'; '.join(errors) or 'none known'}")

    def close(self) -> None:
        self.host.stop()
