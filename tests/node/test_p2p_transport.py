"""The node's libp2p transport between three real hosts on 127.0.0.1: where it fetches from, and what it counts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from codecoop.errors import ObjectNotFound
from codecoop.node.transport import FetchCounters, P2PTransport
from codecoop.p2p import P2PConfig, P2PHost
from codecoop.storage import LocalStore, cid_of

pytestmark = pytest.mark.daemon

FED = "transport-test"


class LyingStore(LocalStore):
    """Serves other bytes than it was asked for (a dishonest holder's copy)."""

    def get(self, cid: str, *, max_size: int | None = None) -> bytes:
        data = bytearray(super().get(cid, max_size=max_size))
        data[0] ^= 1
        return bytes(data)


class Net:
    """Hosts a, b, c (and a liar l), each with its own store and transport; ``registry`` is what the chain would list."""

    def __init__(self, root: Path):
        self.hosts: dict[str, P2PHost] = {}
        self.stores: dict[str, LocalStore] = {}
        self.registry: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.transports: dict[str, P2PTransport] = {}
        for name in ("a", "b", "c", "l"):
            store = (LyingStore if name == "l" else LocalStore)(root / name)
            config = P2PConfig(federation=FED, identity_path=root / name / "key", stall_timeout=2.0, fetch_timeout=30.0)
            host = P2PHost(config, Account.create(), store=store).start()
            self.hosts[name], self.stores[name] = host, store
            self.registry[name] = (host.peer_id, tuple(host.addrs))
            self.transports[name] = P2PTransport(host, store, self.peers, counters=FetchCounters())

    def peers(self) -> list[tuple[str, str, tuple[str, ...]]]:
        return [(name, peer, addrs) for name, (peer, addrs) in self.registry.items()]

    def wait_until_known(self, transport: P2PTransport, cid: str, peer: str) -> None:
        """Bounded wait for ``peer``'s announcement of ``cid`` to reach ``transport``."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            transport.candidates(cid, None)
            if peer in transport.holders.get(cid, []):
                return
            time.sleep(0.1)
        raise AssertionError(f"the announcement of {cid} by {peer} never arrived")

    def close(self) -> None:
        for host in self.hosts.values():
            host.stop()


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    n = Net(tmp_path)
    try:
        yield n
    finally:
        n.close()


def test_an_update_is_fetched_from_its_owner_and_counted_on_both_sides(net: Net) -> None:
    data = b"a's adapter" * 1000
    cid = net.stores["a"].put(data)
    got = net.transports["b"].fetch(cid, "a", max_size=1 << 20)  # b is not connected to a yet: dialled by its registered address
    assert got == data and net.stores["b"].has(cid)
    counters = net.transports["b"].counters
    assert (counters.objects, counters.bytes, counters.failures, counters.retries) == (1, len(data), 0, 0)
    assert counters.by_path == {"libp2p": {"objects": 1, "bytes": len(data), "failures": 0}}
    assert counters.by_peer == {net.hosts["a"].peer_id: {"objects": 1, "bytes": len(data), "failures": 0}}
    served = net.transports["a"].counters.served
    deadline = time.monotonic() + 10
    while not served and time.monotonic() < deadline:  # counted on a's loop once the last byte is written
        time.sleep(0.05)
    assert served == {net.hosts["b"].peer_id: {"objects": 1, "bytes": len(data), "failures": 0}}


def test_a_copy_announced_by_another_holder_is_fetched_after_the_owner_left(net: Net) -> None:
    data = b"accepted update"
    cid = net.stores["a"].put(data)
    net.transports["b"].fetch(cid, "a", max_size=1 << 20)
    net.hosts["c"].connect(net.hosts["b"].addrs[0])
    net.hosts["b"].wait_for_mesh(1)
    net.transports["b"].announce(1, cid)  # what a node does with every copy it fetched
    net.wait_until_known(net.transports["c"], cid, net.hosts["b"].peer_id)
    net.hosts["a"].stop()  # the submitter goes offline; the chain still lists it
    assert net.transports["c"].fetch(cid, "a", max_size=1 << 20) == data
    counters = net.transports["c"].counters
    assert counters.by_peer[net.hosts["b"].peer_id]["objects"] == 1 and counters.objects == 1
    assert net.hosts["a"].peer_id not in counters.by_peer or counters.by_peer[net.hosts["a"].peer_id]["objects"] == 0


def test_a_holder_serving_wrong_bytes_is_a_counted_failure_and_another_holder_is_asked(net: Net) -> None:
    data = b"genuine bytes"
    cid = net.stores["l"].put(data)
    net.stores["a"].put(data)
    net.registry = {"l": net.registry["l"], "a": net.registry["a"], "c": net.registry["c"]}  # the liar is asked first; b is no member
    got = net.transports["c"].fetch(cid, "l", max_size=1 << 20)
    assert got == data and net.stores["c"].get(cid) == data
    counters = net.transports["c"].counters
    assert counters.failures == 1 and counters.retries == 1 and counters.objects == 1
    assert counters.by_peer[net.hosts["l"].peer_id] == {"objects": 0, "bytes": 0, "failures": 1}


def test_an_object_nobody_holds_is_not_found_and_counted_as_missed(net: Net) -> None:
    cid = cid_of(b"held by nobody")
    with pytest.raises(ObjectNotFound, match="could not be fetched from 3 peer"):
        net.transports["c"].fetch(cid, None, max_size=1 << 20)
    counters = net.transports["c"].counters
    assert counters.missed == 1 and counters.failures == 3 and counters.objects == 0


def test_counters_survive_a_round_trip_through_json() -> None:
    c = FetchCounters()
    c.fetched("libp2p", "peer-1", 10)
    c.failed("libp2p", "peer-2")
    c.fetched("libp2p", "peer-1", 5, after_failures=1)
    c.sent("peer-3", 7)
    c.missed_one()
    again = FetchCounters.from_json(c.to_json())
    assert again.to_json() == c.to_json()
    assert (again.objects, again.bytes, again.failures, again.retries, again.missed) == (2, 15, 1, 1, 1)
    assert "fetched 2 object(s), 15 B (2 over libp2p) from 1 peer(s)" in again.summary()
    assert FetchCounters.from_json({}).to_json() == FetchCounters().to_json()


class BusyHost:
    """A host whose peer answers BUSY ``busy_times`` times, then serves (no network: the retry rule alone)."""

    peer_id = "me"

    def __init__(self, busy_times: int, data: bytes):
        self.busy_times, self.data, self.calls = busy_times, data, 0

    def next_announcement(self, timeout=None):
        return None

    def peers(self):
        return ["holder"]

    def fetch(self, peer, cid, *, max_size, store):
        from codecoop.errors import PeerBusy

        self.calls += 1
        if self.calls <= self.busy_times:
            raise PeerBusy("busy")
        store.put(self.data)
        return self.data


def test_a_busy_holder_is_asked_again_after_a_pause_a_bounded_number_of_times(tmp_path, monkeypatch):
    import codecoop.node.transport as transport_module

    monkeypatch.setattr(transport_module, "_BUSY_BACKOFF", (0.0, 0.0, 0.0))
    data = b"popular update"
    host = BusyHost(2, data)
    t = P2PTransport(host, LocalStore(tmp_path / "s"), lambda: [("0xH", "holder", ())])
    assert t.fetch(cid_of(data), "0xH", max_size=1 << 20) == data
    assert (t.counters.objects, t.counters.failures, t.counters.retries, host.calls) == (1, 2, 1, 3)

    always_busy = BusyHost(99, data)
    t = P2PTransport(always_busy, LocalStore(tmp_path / "t"), lambda: [("0xH", "holder", ())])
    with pytest.raises(ObjectNotFound, match="from 1 peer.*busy"):
        t.fetch(cid_of(data), "0xH", max_size=1 << 20)
    assert always_busy.calls == 4 and t.counters.missed == 1  # the first try and one per pause


def test_an_offer_reaches_the_peers_who_fetch_it_and_the_offerer_counts_their_copies(net: Net) -> None:
    data = b"an update offered before it is registered"
    cid = net.stores["a"].put(data)
    for other in ("b", "c"):
        net.hosts[other].connect(net.hosts["a"].addrs[0])
    net.hosts["a"].wait_for_mesh(2)
    ta, tb = net.transports["a"], net.transports["b"]
    assert ta.copies(cid) == 0
    ta.announce(7, cid)
    net.wait_until_known(tb, cid, net.hosts["a"].peer_id)
    assert tb.offers(7) == [(cid, net.hosts["a"].account.address)] and tb.offers(8) == []
    tb.fetch(cid, None, max_size=1 << 20)
    deadline = time.monotonic() + 10
    while ta.copies(cid) < 1 and time.monotonic() < deadline:  # counted on a's loop once the last byte is written
        time.sleep(0.05)
    assert ta.copies(cid) == 1
