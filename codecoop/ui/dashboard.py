"""The dashboard server's state: one chain follower for all clients, the page cache, the signer, audits.

Every page reads the same :class:`~codecoop.token.ledger.Ledger`, kept current by one thread that
folds only the events of new blocks (:class:`~codecoop.token.ledger.LedgerFollower`). Page data is
cached per head block, so a page costs its rendering once per block however many clients ask for
it. Each new block is pushed to every open page as a server-sent event (:class:`EventHub`).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codecoop.errors import CodecoopError, ConfigError
from codecoop.token.ledger import LedgerFollower

__all__ = ["Dashboard", "EventHub", "AuditJob"]

#: Recent chain events kept for the overview's live list.
_RECENT_EVENTS = 50
#: Most queued messages per client before the oldest are dropped (a stalled browser tab).
_CLIENT_QUEUE = 100


class EventHub:
    """Fans messages out from the follower thread to every connected browser (one asyncio queue each)."""

    def __init__(self) -> None:
        self._clients: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = set()
        self._lock = threading.Lock()

    def subscribe(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Queue]:
        client: tuple[asyncio.AbstractEventLoop, asyncio.Queue] = (asyncio.get_running_loop(), asyncio.Queue(maxsize=_CLIENT_QUEUE))
        with self._lock:
            self._clients.add(client)
        return client

    def unsubscribe(self, client: tuple[asyncio.AbstractEventLoop, asyncio.Queue]) -> None:
        with self._lock:
            self._clients.discard(client)

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def publish(self, message: dict[str, Any]) -> None:
        """Queue ``message`` for every client (called from any thread)."""
        with self._lock:
            clients = list(self._clients)
        for loop, queue in clients:
            with contextlib.suppress(RuntimeError):  # that client's loop has closed
                loop.call_soon_threadsafe(_offer, queue, message)


def _offer(queue: asyncio.Queue, message: dict[str, Any]) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(message)


@dataclass
class AuditJob:
    """A ledger audit run from the page, in a thread; ``stage`` and ``progress`` say how far it got."""

    id: str
    recompute: bool
    stage: str = "queued"
    progress: float = 0.0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    report: Any = None
    plots: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "stage": self.stage,
            "progress": round(self.progress, 3),
            "elapsed_s": round((self.finished or time.monotonic()) - self.started, 1),
            "done": self.finished is not None,
            "error": self.error,
        }


class Dashboard:
    """What ``codecoop ui`` serves: a deployment, optionally a store, a node configuration and a signer.

    ``keystore`` (with ``signer=None``): an encrypted keystore that the page unlocks once per
    server session; the password is posted once, used to decrypt, and dropped (never stored, never
    sent back to the browser). ``poll``: seconds between looks at the chain. ``config``: a node
    configuration (its ``folder`` holds the journal shown on "My node", ``training.dp_delta`` the
    delta its privacy is accounted at).
    """

    def __init__(
        self,
        deployment: Any,
        *,
        store: Any = None,
        config: Any = None,
        signer: Any = None,
        keystore: Path | None = None,
        poll: float = 1.0,
        demo: bool = False,
        node_address: str | None = None,
        log: Callable[[str], None] = lambda message: None,
    ):
        self.deployment = deployment
        self.store = store
        self.config = config
        self.signer = signer
        self.keystore = keystore
        self.poll = poll
        self.demo = demo
        self.node_address = node_address  # the account of the node whose journal 'My node' shows (default: the signer)
        self.log = log
        self.csrf = secrets.token_urlsafe(32)
        self.follower = LedgerFollower(deployment)
        self.hub = EventHub()
        self.recent: deque[dict[str, Any]] = deque(maxlen=_RECENT_EVENTS)
        self.audits: dict[str, AuditJob] = {}
        self.follow_error: str | None = None
        self._cache: dict[tuple, tuple[tuple[int, int | None], Any]] = {}
        self._facts: dict[tuple, tuple[tuple[int, int | None] | None, Any]] = {}
        self._cache_lock = threading.Lock()
        self._catch_up_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.status: str = "ready"  # a demo says what its federation is doing

    # ------------------------------------------------------------------ following the chain
    @property
    def ledger(self) -> Any:
        return self.follower.ledger

    @property
    def head(self) -> int:
        return self.follower.ledger.head

    def catch_up(self) -> list[Any]:
        """Fold the blocks since the last look; publish what they held. Returns the new events."""
        with self._catch_up_lock:  # the follower thread and a request may both find new blocks
            before = self.head
            events = self.follower.advance()
        if self.head != before:
            self._publish(events)
        return events

    def _publish(self, events: list[Any]) -> None:
        for e in events:
            self.recent.appendleft({"block": e.block, "event": e.name, "contract": e.contract})
        self.hub.publish({"type": "block", "head": self.head, "events": [e.name for e in events], "status": self.status})

    def start(self) -> Dashboard:
        """Fold the history so far, then follow the chain in a thread."""
        self.catch_up()
        self._thread = threading.Thread(target=self._follow, name="codecoop-ui-follow", daemon=True)
        self._thread.start()
        return self

    def _follow(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.catch_up()
                self.follow_error = None
            except CodecoopError as exc:  # the chain is unreachable: say so on every page, try again
                self.follow_error = str(exc)
            except Exception as exc:  # noqa: BLE001 - a follower that dies silently would freeze every page
                self.follow_error = f"{type(exc).__name__}: {exc}"
                self.log(traceback.format_exc())

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    # ------------------------------------------------------------------ page data, cached per head block
    def _stamp(self, per_block: bool) -> tuple[int, int | None]:
        """What a kept value was built from: the events folded, and the head when it is per block."""
        return (self.ledger.events, self.head if per_block else None)

    def cached(self, key: tuple, build: Callable[[], Any], *, per_block: bool = True) -> Any:
        """``build()``'s result for ``key`` at the chain's head: rebuilt once per new block, or with
        ``per_block=False`` (a page that shows no block-dependent state: rounds, members, models) once
        per new event, since most blocks carry none.

        A request never shows an older block than the chain has: when the follower has not seen
        the newest blocks yet, the request folds them first.
        """
        with contextlib.suppress(CodecoopError):  # unreachable: serve what was folded (the page says so)
            if self.deployment.chain.block_number != self.head:
                self.catch_up()
        stamp = self._stamp(per_block)
        with self._cache_lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        with self.follower.lock:
            value = build()
        with self._cache_lock:
            if len(self._cache) > 512:
                self._cache.clear()
            self._cache[key] = (stamp, value)
        return value

    def fact(self, key: tuple, read: Callable[[], Any], *, per_block: bool = False, settled: Callable[[Any], bool] | None = None) -> Any:
        """A chain read that only an event can change (a parameter, the charter, the current round id),
        read again only after the follower folded a new event; ``per_block``: also on a new block (a
        proposal's state). Once ``settled(value)`` holds it is never read again (a settled proposal's
        state, a past snapshot's quorum). A chain read costs milliseconds; most blocks carry no event."""
        stamp = self._stamp(per_block)
        hit = self._facts.get(key)
        if hit is not None and (hit[0] is None or hit[0] == stamp):
            return hit[1]
        value = read()
        if len(self._facts) > 4096:
            self._facts.clear()
        self._facts[key] = (None if settled is not None and settled(value) else stamp, value)
        return value

    # ------------------------------------------------------------------ signing
    @property
    def can_unlock(self) -> bool:
        return self.signer is None and self.keystore is not None

    def unlock(self, password: str) -> str:
        """Decrypt the keystore with ``password``; return the account's address."""
        from codecoop.keys import load_keystore

        if self.keystore is None:
            raise ConfigError("this dashboard was started without a keystore: give --keystore or --config")
        self.signer = load_keystore(self.keystore, password)
        return self.signer.address

    def require_signer(self) -> Any:
        if self.signer is None:
            raise ConfigError("read-only: unlock the keystore first (or start `codecoop ui` with --keystore or --config)")
        return self.signer

    # ------------------------------------------------------------------ audits
    def start_audit(self, recompute: bool) -> AuditJob:
        """Run the ledger audit in a thread (recomputing aggregates needs the store)."""
        if recompute and self.store is None:
            raise ConfigError("recomputing aggregates reads the adapters: start `codecoop ui` with --store")
        job = AuditJob(id=secrets.token_hex(6), recompute=recompute)
        self.audits[job.id] = job
        threading.Thread(target=self._audit, args=(job,), name=f"codecoop-ui-audit-{job.id}", daemon=True).start()
        return job

    def _audit(self, job: AuditJob) -> None:
        from codecoop.audit.ledger_audit import audit_ledger
        from codecoop.audit.report import plots
        from codecoop.token.ledger import Ledger

        try:
            job.stage, job.progress = "rebuilding the ledger from the chain's events", 0.1
            ledger = Ledger.from_deployment(self.deployment)
            job.stage, job.progress = (
                "checking every mint, cap, vote and aggregate" + (", recomputing the aggregates from the store" if job.recompute else ""),
                0.4,
            )
            report = audit_ledger(ledger, store=self.store if job.recompute else None, recompute=job.recompute)
            job.stage, job.progress = "drawing the plots", 0.9
            job.plots = plots(report)
            job.report = report
            job.stage, job.progress = "done", 1.0
        except Exception as exc:  # noqa: BLE001 - reported on the page
            job.error = f"{type(exc).__name__}: {exc}"
            job.stage = "failed"
        finally:
            job.finished = time.monotonic()
            self.hub.publish({"type": "audit", "id": job.id, **job.to_json()})
