"""Three real libp2p hosts on 127.0.0.1: gossip reaches all, forgeries and replays do not,
objects travel by direct fetch verified against their CID."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import trio
from eth_account import Account

from codecoop.errors import IntegrityError, ObjectNotFound, ObjectTooLarge, P2PError
from codecoop.p2p import P2PConfig, P2PHost, sign_announcement
from codecoop.p2p.fetch import FETCH_PROTOCOL
from codecoop.storage import LocalStore, cid_of

pytestmark = pytest.mark.daemon

FED = "test-federation"


class LyingStore(LocalStore):
    """A store that hands out other bytes than it was asked for (a dishonest peer's)."""

    def get(self, cid: str, *, max_size: int | None = None) -> bytes:
        data = bytearray(super().get(cid, max_size=max_size))
        data[len(data) // 2] ^= 1
        return bytes(data)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[P2PHost]]:
    """a (bootstrap), b and c (both dial a); b's store lies about what it serves."""
    root = tmp_path_factory.mktemp("p2p")
    started: list[P2PHost] = []
    try:
        for name in ("a", "b", "c"):
            config = P2PConfig(
                federation=FED,
                identity_path=root / name / "libp2p.key",
                bootstrap=tuple(started[0].addrs) if started else (),
                stall_timeout=2.0,
                fetch_timeout=60.0,
            )
            store_type = LyingStore if name == "b" else LocalStore
            started.append(P2PHost(config, Account.create(), store=store_type(root / name)).start())
        a, b, c = started
        a.wait_for_mesh(2)
        b.wait_for_mesh(1)
        c.wait_for_mesh(1)
        yield started
    finally:
        for host in started:
            host.stop()


def _drain(host: P2PHost) -> None:
    while host.next_announcement(timeout=0) is not None:
        pass


def _inject(host: P2PHost, payload: bytes) -> None:
    """Publish ``payload`` as a modified peer would: with the host's own checks switched off."""

    async def publish() -> None:
        host.pubsub.remove_topic_validator(host.topic)
        try:
            await host.pubsub.publish(host.topic, payload)
        finally:
            host.pubsub.set_topic_validator(host.topic, host._validate, is_async_validator=False)

    host.run_async(publish)


def _settle(sender: P2PHost, hosts: list[P2PHost]) -> None:
    """Wait until a marker from ``sender`` reached everyone: what it sent before was handled too."""
    marker = sender.announce(999, cid_of(b"marker"))
    for host in hosts:
        if host is sender:
            continue
        while (got := host.next_announcement(timeout=5)) is not None and got != marker:
            pytest.fail(f"{host.peer_id} received an announcement it should have dropped: {got}")
        assert got == marker


def test_an_announcement_reaches_every_peer(hosts: list[P2PHost]) -> None:
    a, b, c = hosts
    for host in hosts:
        _drain(host)
    sent = c.announce(1, cid_of(b"update of c"))
    assert sent.sender == c.account.address and sent.peer == c.peer_id
    # a hears it directly, b only through a: the relay checked it and passed it on.
    assert a.next_announcement(timeout=5) == sent
    assert b.next_announcement(timeout=5) == sent


def test_a_forged_announcement_is_dropped_by_every_peer(hosts: list[P2PHost]) -> None:
    a, b, c = hosts
    for host in hosts:
        _drain(host)
    forged_before = [h.dropped.get("forged", 0) for h in (a, b)]
    genuine = sign_announcement(Account.create(), federation=FED, round=2, cid=cid_of(b"x"), peer=c.peer_id)
    # c claims a's address as sender and swaps the CID after signing.
    _inject(c, replace(genuine, sender=a.account.address).to_bytes())
    honest = sign_announcement(c.account, federation=FED, round=2, cid=cid_of(b"honest"), peer=c.peer_id)
    _inject(c, replace(honest, cid=cid_of(b"poisoned")).to_bytes())
    _settle(c, hosts)
    assert a.dropped["forged"] >= forged_before[0] + 2
    # b never even sees them: a dropped them instead of relaying.
    assert b.dropped.get("forged", 0) == forged_before[1]


def test_a_replayed_announcement_is_dropped(hosts: list[P2PHost]) -> None:
    a, b, c = hosts
    for host in hosts:
        _drain(host)
    original = a.announce(3, cid_of(b"update of a"))
    assert b.next_announcement(timeout=5) == original
    assert c.next_announcement(timeout=5) == original
    replays_before = a.dropped.get("replayed", 0)
    _inject(c, original.to_bytes())
    _settle(c, hosts)
    assert a.dropped["replayed"] == replays_before + 1
    assert b.dropped.get("replayed", 0) == 0, "a dropped the replay instead of relaying it"


def test_a_stale_announcement_is_dropped(hosts: list[P2PHost]) -> None:
    a, b, c = hosts
    for host in hosts:
        _drain(host)
    old = sign_announcement(c.account, federation=FED, round=4, cid=cid_of(b"old"), peer=c.peer_id, timestamp=int(time.time()) - 3600)
    _inject(c, old.to_bytes())
    _settle(c, hosts)
    assert a.dropped["stale"] >= 1


def test_a_20_mb_object_is_fetched_directly_with_the_right_cid(hosts: list[P2PHost], tmp_path: Path) -> None:
    a, _, c = hosts
    data = (b"codecoop adapter bytes " * (20_000_000 // 23 + 1))[:20_000_000]
    cid = a.store.put(data)
    received = LocalStore(tmp_path / "received")
    fetched = c.fetch(a.addrs[0], cid, store=received)
    assert fetched == data and cid_of(fetched) == cid
    assert received.get(cid) == data


def test_fetching_an_unknown_cid_is_object_not_found(hosts: list[P2PHost]) -> None:
    a, _, c = hosts
    with pytest.raises(ObjectNotFound):
        c.fetch(a.peer_id, cid_of(b"nobody has this"))


def test_an_object_over_the_limit_is_refused_before_its_body(hosts: list[P2PHost]) -> None:
    a, _, c = hosts
    cid = a.store.put(b"y" * 100_000)
    with pytest.raises(ObjectTooLarge):
        c.fetch(a.peer_id, cid, max_size=10_000)


def test_wrong_bytes_from_a_peer_are_an_integrity_error_and_not_stored(hosts: list[P2PHost], tmp_path: Path) -> None:
    a, b, _ = hosts
    cid = b.store.put(b"z" * 300_000)
    received = LocalStore(tmp_path / "received")
    with pytest.raises(IntegrityError):
        a.fetch(b.peer_id, cid, store=received)
    assert not received.has(cid)


def test_a_stalling_peer_fails_the_fetch_in_bounded_time(hosts: list[P2PHost]) -> None:
    a, b, _ = hosts

    async def stall(stream) -> None:
        await stream.write(bytes([0]) + (1000).to_bytes(8, "big") + b"partial")
        await trio.sleep(30)

    a.run_async(lambda: _set_handler(a, stall))
    try:
        started = time.monotonic()
        with pytest.raises(P2PError, match="timed out"):
            b.fetch(a.peer_id, cid_of(b"anything"))
        # b's own stall timeout is 2 s; it must not wait for the 30 s sleep.
        assert time.monotonic() - started < 10
    finally:
        assert a.fetch_server is not None
        a.run_async(lambda: _set_handler(a, a.fetch_server.handle))


async def _set_handler(host: P2PHost, handler) -> None:
    host.libp2p_host.set_stream_handler(FETCH_PROTOCOL, handler)


def test_hosts_keep_their_peer_id_across_restarts(tmp_path: Path) -> None:
    config = P2PConfig(federation=FED, identity_path=tmp_path / "libp2p.key")
    with P2PHost(config, Account.create()) as first:
        peer_id = first.peer_id
    with P2PHost(config, Account.create()) as second:
        assert second.peer_id == peer_id and second.addrs[0].endswith(peer_id)


def test_a_busy_listen_address_is_a_p2p_error(tmp_path: Path, hosts: list[P2PHost]) -> None:
    taken = hosts[0].addrs[0].split("/p2p/")[0]
    config = P2PConfig(federation=FED, identity_path=tmp_path / "k", listen=taken)
    with pytest.raises(P2PError):
        P2PHost(config, Account.create()).start()


def test_calls_on_a_stopped_host_say_so(tmp_path: Path) -> None:
    host = P2PHost(P2PConfig(federation=FED, identity_path=tmp_path / "k"), Account.create())
    with pytest.raises(P2PError, match="not running"):
        host.announce(1, cid_of(b"x"))


def test_peers_listed_by_the_member_registry_hook_are_dialled(hosts: list[P2PHost], tmp_path: Path) -> None:
    a = hosts[0]
    config = P2PConfig(federation=FED, identity_path=tmp_path / "libp2p.key")
    with P2PHost(config, Account.create(), member_peers=lambda: [a.addrs[0]]) as newcomer:
        newcomer.wait_for_mesh(1)
        assert a.peer_id in newcomer.peers()


def test_a_member_that_joins_after_the_last_dial_is_dialled_on_refresh_not_at_the_next_interval(
    hosts: list[P2PHost], tmp_path: Path
) -> None:
    a = hosts[0]
    registry: list[str] = []  # empty at start: the member registers its address later
    looks: list[int] = []

    def member_peers() -> list[str]:
        looks.append(len(registry))
        return list(registry)

    def wait(condition: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + 20
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)
        return condition()

    config = P2PConfig(federation=FED, identity_path=tmp_path / "libp2p.key", refresh_interval=3600.0)
    with P2PHost(config, Account.create(), member_peers=member_peers) as host:
        assert wait(lambda: len(looks) >= 1)  # the first look found nobody; the next would come in an hour
        registry.append(a.addrs[0])
        assert a.peer_id not in host.peers()
        host.refresh_peers()
        assert wait(lambda: a.peer_id in host.peers())
        assert looks == [0, 1]
