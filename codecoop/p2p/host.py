"""``P2PHost``: the node's one libp2p host, run on trio in its own thread behind a blocking API.

The rest of codecoop is synchronous (web3, torch, the round state machine), and py-libp2p is
trio-only, so the host lives in a dedicated thread running ``trio.run``; every public method hands
a coroutine to that loop with ``trio.from_thread.run`` and waits for it under a timeout. Incoming
announcements are checked on the loop (see :mod:`codecoop.p2p.announce`) and queued for
:meth:`P2PHost.next_announcement`.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import multiaddr
import trio
from eth_account.signers.local import LocalAccount
from libp2p import new_host
from libp2p.abc import IHost
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service

from codecoop.errors import CodecoopError, P2PError
from codecoop.p2p.announce import Announcement, AnnouncementValidator, sign_announcement
from codecoop.p2p.fetch import FETCH_PROTOCOL, FetchServer, fetch_object
from codecoop.p2p.identity import load_or_create_identity, peer_id_of
from codecoop.storage.base import ContentStore

__all__ = ["P2PConfig", "P2PHost", "announcement_topic"]

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_MAX_OBJECT = 512 * 1024 * 1024


def announcement_topic(federation: str) -> str:
    """The gossipsub topic that carries one federation's announcements."""
    return f"/codecoop/{federation}/announce/1"


@dataclass(frozen=True)
class P2PConfig:
    """Settings of a node's libp2p host (the ``[p2p]`` part of the node configuration).

    Attributes
    ----------
    federation
        Federation name; selects the gossip topic and is bound into every announcement.
    identity_path
        File holding the host's Ed25519 key (created on first start).
    listen
        Multiaddr to listen on; port 0 picks a free port (see :attr:`P2PHost.addrs`).
    bootstrap
        Full multiaddrs (with ``/p2p/<peer id>``) dialled at start and retried while unreachable.
    max_object_size
        Largest object this host serves or accepts by direct fetch.
    fetch_timeout
        Seconds a whole direct fetch may take.
    stall_timeout
        Seconds a fetch may go without progress before the peer counts as stalled.
    max_clock_skew
        Seconds an announcement's timestamp may differ from the local clock.
    refresh_interval
        Seconds between re-dials of bootstrap and member peers that are not connected.
    heartbeat_interval
        Gossipsub heartbeat in seconds (mesh upkeep; small values form meshes fast).
    call_timeout
        Seconds a blocking call (connect, announce) waits for the host's loop.
    dial_timeout
        Seconds a fetch may spend dialling a peer it is not connected to (an unreachable peer
        answers nothing: without this bound the dial would wait as long as the whole fetch).
    """

    federation: str
    identity_path: Path
    listen: str = "/ip4/127.0.0.1/tcp/0"
    bootstrap: tuple[str, ...] = ()
    max_object_size: int = DEFAULT_MAX_OBJECT
    fetch_timeout: float = 300.0
    stall_timeout: float = 15.0
    max_clock_skew: float = 300.0
    refresh_interval: float = 30.0
    heartbeat_interval: int = 1
    call_timeout: float = 30.0
    dial_timeout: float = 10.0


class P2PHost:
    """One libp2p host: gossip announcements for a federation, and direct object fetch.

    Parameters
    ----------
    config
        Host settings.
    account
        The member's Ethereum account; it signs this host's announcements.
    store
        Content store served to peers by direct fetch (none: this host serves nothing).
    member_peers
        Called (in a worker thread) at start and every ``refresh_interval`` for multiaddrs of
        peers to keep connected, e.g. those registered in the chain's MemberRegistry. A plain
        callable keeps this package independent of the chain package.
    authorize
        Extra policy applied to announcements whose signature is valid (e.g. the sender must be
        an active member whose registered peer id is the announcing peer).

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        config: P2PConfig,
        account: LocalAccount,
        *,
        store: ContentStore | None = None,
        member_peers: Callable[[], Iterable[str]] | None = None,
        authorize: Callable[[Announcement], bool] | None = None,
    ) -> None:
        self.config = config
        self.account = account
        self.store = store
        self.member_peers = member_peers
        self.topic = announcement_topic(config.federation)
        self.validator = AnnouncementValidator(config.federation, max_skew=config.max_clock_skew, authorize=authorize)
        self._key_pair = load_or_create_identity(config.identity_path)
        self.peer_id = peer_id_of(self._key_pair)
        self._inbox: queue.Queue[Announcement] = queue.Queue(maxsize=10_000)
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._refresh: trio.Event | None = None  # set to dial missing peers now instead of at the next interval
        self._startup_error: BaseException | None = None
        self._host: IHost | None = None
        self._pubsub: Pubsub | None = None
        self._router: GossipSub | None = None
        self._addrs: list[str] = []
        self.fetch_server: FetchServer | None = None
        """Serves ``store`` to peers (``None`` without a store); its ``handle`` is the stream handler."""

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> P2PHost:
        """Start the host thread; return once it listens and has joined the topic."""
        if self._thread is not None:
            raise P2PError("this P2PHost was already started; make a new one to restart")
        _check_port_free(self.config.listen)
        self._thread = threading.Thread(target=self._run, name=f"libp2p-{self.peer_id[-6:]}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise P2PError(f"libp2p host did not start within {timeout:g}s on {self.config.listen}")
        if self._startup_error is not None:
            self._thread.join(5)
            raise P2PError(f"libp2p host could not start on {self.config.listen}: {self._startup_error}") from self._startup_error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the host and wait for its thread; safe to call more than once."""
        if self._token is not None and self._stop is not None:
            try:
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("libp2p host %s did not stop within %gs", self.peer_id, timeout)
        self._token = None

    def __enter__(self) -> P2PHost:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- identity and peers ------------------------------------------------------------------
    @property
    def libp2p_host(self) -> IHost:
        """The py-libp2p host, for use inside :meth:`run_async` only (it is not thread-safe)."""
        if self._host is None:
            raise P2PError("the libp2p host is not running: call start() first")
        return self._host

    @property
    def pubsub(self) -> Pubsub:
        """The py-libp2p Pubsub, for use inside :meth:`run_async` only (it is not thread-safe)."""
        if self._pubsub is None:
            raise P2PError("the libp2p host is not running: call start() first")
        return self._pubsub

    @property
    def addrs(self) -> list[str]:
        """Full multiaddrs (``…/p2p/<peer id>``) other peers can dial."""
        return list(self._addrs)

    def connect(self, addr: str, timeout: float | None = None) -> str:
        """Dial a peer by full multiaddr; return its peer id."""
        return self.run_async(lambda: self._connect(addr), timeout=timeout)

    def peers(self) -> list[str]:
        """Peer ids currently connected."""
        return self.run_async(self._connected_peers)

    def refresh_peers(self) -> None:
        """Dial the bootstrap and member peers that are not connected now, in the background.

        Without it they are dialled every ``refresh_interval`` seconds: a member that joined since
        the last look, or came back, would otherwise miss gossip published before then."""
        token = self._token
        if token is None:
            return

        def wake() -> None:  # on the loop: the loop replaces the event after each wake-up
            if self._refresh is not None:
                self._refresh.set()

        try:
            trio.from_thread.run_sync(wake, trio_token=token)
        except trio.RunFinishedError:
            pass

    def wait_for_mesh(self, peers: int, timeout: float = 15.0) -> None:
        """Block until at least ``peers`` peers are in this host's mesh for the topic."""

        async def wait() -> None:
            assert self._router is not None
            while len(self._router.mesh.get(self.topic, ())) < peers:
                await trio.sleep(0.05)

        try:
            self.run_async(wait, timeout=timeout)
        except P2PError as exc:
            raise P2PError(f"fewer than {peers} peers joined the {self.topic} mesh within {timeout:g}s") from exc

    # --- announcements -----------------------------------------------------------------------
    def announce(self, round: int, cid: str) -> Announcement:
        """Sign and gossip an announcement of ``cid`` for ``round``; return it."""
        announcement = sign_announcement(
            self.account,
            federation=self.config.federation,
            round=round,
            cid=cid,
            peer=self.peer_id,
        )
        payload = announcement.to_bytes()

        async def publish() -> None:
            assert self._pubsub is not None
            await self._pubsub.publish(self.topic, payload)

        self.run_async(publish)
        return announcement

    def next_announcement(self, timeout: float | None = None) -> Announcement | None:
        """The next accepted announcement from another member, or ``None`` after ``timeout``."""
        try:
            return self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    @property
    def dropped(self) -> dict[str, int]:
        """How many incoming messages were dropped, by reason (see ``AnnouncementValidator``)."""
        return dict(self.validator.dropped)

    # --- direct fetch ------------------------------------------------------------------------
    def fetch(
        self,
        peer: str,
        cid: str,
        *,
        max_size: int | None = None,
        timeout: float | None = None,
        store: ContentStore | None = None,
    ) -> bytes:
        """Fetch ``cid`` directly from ``peer`` (peer id, or full multiaddr to dial first).

        The bytes are verified against the CID before they are returned, or put in ``store``
        when one is given. Errors: ``ObjectNotFound``, ``ObjectTooLarge``, ``IntegrityError``
        (wrong or truncated bytes) and ``P2PError`` (unreachable, refused, stalled, too slow).
        """
        limit = self.config.max_object_size if max_size is None else max_size
        deadline = self.config.fetch_timeout if timeout is None else timeout

        async def fetch() -> bytes:
            assert self._host is not None
            if "/" in peer:
                try:
                    with trio.fail_after(self.config.dial_timeout):
                        peer_id = await self._connect(peer)
                except trio.TooSlowError:
                    raise P2PError(f"cannot reach {peer}: no answer within {self.config.dial_timeout:g}s") from None
            else:
                peer_id = peer
            return await fetch_object(
                self._host,
                ID.from_base58(peer_id),
                cid,
                max_size=limit,
                timeout=deadline,
                stall_timeout=self.config.stall_timeout,
            )

        # The loop-side deadline is the one that reports; this one only backs it up.
        data = self.run_async(fetch, timeout=deadline + 10)
        if store is not None:
            store.put(data)
        return data

    # --- the bridge to the trio thread -------------------------------------------------------
    def run_async(self, fn: Callable[[], Awaitable[T]], *, timeout: float | None = None) -> T:
        """Run ``await fn()`` on the host's trio loop and return its result (blocking).

        For callers that need a libp2p feature this class does not wrap; ``timeout`` defaults to
        the configured ``call_timeout``.
        """
        token = self._token
        if token is None:
            raise P2PError("the libp2p host is not running: call start() first")
        limit = self.config.call_timeout if timeout is None else timeout

        async def bounded() -> T:
            with trio.fail_after(limit):
                return await fn()

        try:
            return trio.from_thread.run(bounded, trio_token=token)
        except trio.TooSlowError:
            raise P2PError(f"libp2p operation did not finish within {limit:g}s") from None
        except trio.RunFinishedError:
            raise P2PError("the libp2p host stopped during the operation") from None
        except CodecoopError:
            raise
        except Exception as exc:
            raise P2PError(f"libp2p operation failed: {exc}") from exc

    # --- inside the trio thread --------------------------------------------------------------
    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported to start(); the thread must not die silently
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
            else:
                log.exception("libp2p host %s crashed", self.peer_id)
        finally:
            self._token = None
            if not self._ready.is_set():
                self._ready.set()

    async def _main(self) -> None:
        listen = [multiaddr.Multiaddr(self.config.listen)]
        host = new_host(key_pair=self._key_pair, listen_addrs=listen)
        router = GossipSub(
            protocols=[PROTOCOL_ID_V11, PROTOCOL_ID],
            degree=6,
            degree_low=4,
            degree_high=12,
            heartbeat_interval=self.config.heartbeat_interval,
        )
        pubsub = Pubsub(host, router)
        pubsub.set_topic_validator(self.topic, self._validate, is_async_validator=False)
        if self.store is not None:
            self.fetch_server = FetchServer(self.store, max_size=self.config.max_object_size)
            host.set_stream_handler(FETCH_PROTOCOL, self.fetch_server.handle)
        self._host, self._pubsub, self._router = host, pubsub, router
        async with host.run(listen_addrs=listen):
            async with background_trio_service(pubsub), background_trio_service(router):
                await pubsub.wait_until_ready()
                subscription = await pubsub.subscribe(self.topic)
                self._addrs = [str(a) for a in host.get_addrs()]
                self._stop = trio.Event()
                self._refresh = trio.Event()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._deliver, subscription)
                    nursery.start_soon(self._keep_peers_connected)
                    self._token = trio.lowlevel.current_trio_token()
                    self._ready.set()
                    await self._stop.wait()
                    self._token = None
                    nursery.cancel_scope.cancel()

    def _validate(self, forwarder: ID, message: rpc_pb2.Message) -> bool:
        origin = ID(message.from_id).to_base58()
        return self.validator.check(message.data, origin_peer=origin).accepted

    async def _deliver(self, subscription: Any) -> None:
        own = ID.from_base58(self.peer_id).to_bytes()
        while True:
            message = await subscription.get()
            if message.from_id == own:
                continue
            try:
                self._inbox.put_nowait(Announcement.from_bytes(message.data))
            except queue.Full:
                log.warning("announcement inbox full: dropping announcements (nobody reads them)")
                self.validator.dropped["inbox-full"] += 1

    async def _keep_peers_connected(self) -> None:
        while True:
            wanted = list(self.config.bootstrap)
            if self.member_peers is not None:
                try:
                    wanted += list(await trio.to_thread.run_sync(self._member_peers_list))
                except Exception as exc:  # the member list is advisory: keep the known peers
                    log.warning("could not list member peers: %s", exc)
            await self._dial_missing(wanted)
            assert self._refresh is not None
            with trio.move_on_after(self.config.refresh_interval):
                await self._refresh.wait()
            self._refresh = trio.Event()

    def _member_peers_list(self) -> list[str]:
        assert self.member_peers is not None
        return [str(addr) for addr in self.member_peers()]

    async def _dial_missing(self, addrs: Sequence[str]) -> None:
        connected = {p.to_base58() for p in await self._connected_ids()}
        for addr in addrs:
            peer = addr.rsplit("/p2p/", 1)[-1] if "/p2p/" in addr else None
            if peer is None or peer == self.peer_id or peer in connected:
                continue
            try:
                with trio.fail_after(self.config.call_timeout):
                    await self._connect(addr)
            except (Exception, trio.TooSlowError) as exc:
                log.info("peer %s not reachable yet: %s", addr, exc)

    async def _connect(self, addr: str) -> str:
        assert self._host is not None
        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        except Exception as exc:
            raise P2PError(f"{addr!r} is not a full peer multiaddr (…/p2p/<peer id>): {exc}") from exc
        try:
            await self._host.connect(info)
        except Exception as exc:
            raise P2PError(f"cannot connect to {addr}: {exc}") from exc
        return info.peer_id.to_base58()

    async def _connected_ids(self) -> list[ID]:
        assert self._host is not None
        return list(self._host.get_connected_peers())

    async def _connected_peers(self) -> list[str]:
        return sorted(p.to_base58() for p in await self._connected_ids())


def _check_port_free(listen: str) -> None:
    """Refuse a TCP port another process listens on.

    py-libp2p listens with SO_REUSEPORT (for hole punching), so a second node on a taken port
    would start and silently share its connections with the first; a plain bind detects that.
    """
    addr = multiaddr.Multiaddr(listen)
    try:
        port = int(addr.value_for_protocol("tcp"))
    except Exception:  # not a TCP address: nothing to check here
        return
    if port == 0:
        return
    for family, proto in ((socket.AF_INET, "ip4"), (socket.AF_INET6, "ip6")):
        try:
            host = addr.value_for_protocol(proto)
        except Exception:  # this address family is not in the multiaddr
            continue
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # a port left in TIME_WAIT by a node killed a moment ago is free to listen on again;
            # with SO_REUSEADDR (and no SO_REUSEPORT) the bind still fails while anyone listens
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise P2PError(
                    f"cannot listen on {listen}: {exc.strerror}; another node (or program) has "
                    "this port: pick another in the p2p listen address"
                ) from None
