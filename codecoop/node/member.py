"""What every part of a node shares: who the member is, where it reads and writes, and its caches.

A :class:`Member` is handed to each part of the node (trainer, judge, aggregator) and to the round
driver. It holds no round logic: it fetches verified objects, derives the global model of a
version, scores adapters on the member's own held-out code, emits events and accounts time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from codecoop.chain.deployment import Deployment
from codecoop.node.journal import Journal
from codecoop.node.transport import Transport
from codecoop.storage import ContentStore

__all__ = ["Member", "NodeEvent", "initial_adapter", "INITIAL_SEED", "VERSION_0"]

#: Seed of the federation's initial adapter (version 0): every member derives the same one.
INITIAL_SEED = 0
#: Cache key of version 0, which has no CID (it is never stored: every member derives it).
VERSION_0 = "version-0"


@dataclass(frozen=True)
class NodeEvent:
    """Something a node did or noticed; ``data`` carries figures (gas, losses, CIDs)."""

    node: str
    round: int
    kind: str
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)


def initial_adapter(base: Any, train: Any) -> Any:
    """Version 0 of the global model: fresh LoRA weights from :data:`INITIAL_SEED` (``B = 0``)."""
    import torch

    from codecoop.training import Adapter, LoraSpec, attached
    from codecoop.training.adapter import lora_state

    spec = LoraSpec.for_base(train, base.architecture)
    state = torch.random.get_rng_state()
    torch.manual_seed(INITIAL_SEED)
    try:
        with attached(base, None, spec) as model:
            tensors = lora_state(model)
    finally:
        torch.random.set_rng_state(state)
    return Adapter(tensors, base.model_id, base.weights_hash, spec, {})


class Member:
    """One participant's identity, connections, private data and caches, shared by the node's parts.

    Parameters
    ----------
    name:
        A label for events and logs (e.g. the organisation's name).
    settings:
        The node's :class:`~codecoop.node.node.NodeSettings`.
    journal:
        Its local journal (one per node and deployment).
    on_event:
        Called with every :class:`NodeEvent` (progress display, reports).
    on_train_step:
        Passed to ``train_lora`` as ``on_step``.
    """

    def __init__(
        self,
        *,
        name: str,
        account: Any,
        deployment: Deployment,
        store: ContentStore,
        transport: Transport,
        base: Any,
        corpus: Any,
        settings: Any,
        journal: Journal,
        on_event: Callable[[NodeEvent], None] | None = None,
        on_train_step: Callable[[Any], None] | None = None,
    ):
        self.name = name
        self.account = account
        self.address: str = account.address
        self.deployment = deployment
        self.store = store
        self.transport = transport
        self.base = base
        self.corpus = corpus
        self.settings = settings
        self.journal = journal
        self.skipped_adapters: dict[int, Any] = {}
        """Round -> the adapter this member trained but did not submit (the selective-update rule), kept in
        memory only (never stored, so never served) as its judge's direction reference; the latest round only."""
        journal.network_of = transport.counters.to_json
        self.on_event = on_event
        self.on_train_step = on_train_step
        self.timings: dict[int, dict[str, float]] = {}
        """Seconds per round and activity: train, evaluate (own held-out data), publish, vote (fetch, checks,
        commit, reveal), finalize, aggregate, confirm, claim."""
        self.round = 0
        """The round the node is working on (the one time is accounted to)."""
        self._adapters: dict[str | None, Any] = {}  # global versions by CID (None: version 0)
        self._losses: dict[str, Any] = {}  # own held-out per-block losses by global version CID
        self._nested: list[float] = []

    def emit(self, round_id: int, kind: str, message: str, **data: Any) -> None:
        """Report a :class:`NodeEvent` to ``on_event``."""
        if self.on_event is not None:
            self.on_event(NodeEvent(self.name, round_id, kind, message, data))

    @contextlib.contextmanager
    def timed(self, activity: str) -> Iterator[None]:
        """Add the block's wall time to ``timings[current round][activity]``, minus nested activities."""
        began = time.perf_counter()
        self._nested.append(0.0)
        try:
            yield
        finally:
            inner = self._nested.pop()
            spent = time.perf_counter() - began
            per_round = self.timings.setdefault(self.round, {})
            per_round[activity] = per_round.get(activity, 0.0) + spent - inner
            if self._nested:
                self._nested[-1] += spent

    def fetch(self, cid: str, owner: str | None) -> bytes:
        """The object ``cid`` from the own store, else over the transport from ``owner`` or any holder; verified, size-capped.

        A copy fetched from a peer is pinned and announced: this node then serves it onward, so the
        object stays available when its submitter goes offline. The counters are journaled.
        """
        limit = self.settings.max_object_bytes
        if self.store.has(cid):
            return self.store.get(cid, max_size=limit)
        try:
            data = self.transport.fetch(cid, owner, max_size=limit)
        finally:
            self.journal.save()  # the counters, failures included
        self.store.pin(cid)
        self.transport.announce(self.round, cid)
        return data

    def put(self, data: bytes) -> str:
        """Store and pin ``data``; return its CID."""
        cid = self.store.put(data)
        self.store.pin(cid)
        return cid

    # ------------------------------------------------------------------ models
    def global_adapter(self, cid: str | None) -> Any:
        """The global model ``cid`` names (``None``: version 0), fetched, verified and checked against the base."""
        if cid not in self._adapters:
            if cid is None:
                self._adapters[None] = initial_adapter(self.base, self.settings.train)
            else:
                from codecoop.training import Adapter

                self._adapters[cid] = Adapter.from_bytes(self.fetch(cid, None), self.base)
            while len(self._adapters) > 3:
                self._adapters.pop(next(iter(self._adapters)))
        return self._adapters[cid]

    def own_losses(self, adapter: Any, key: str | None) -> Any:
        """Per-block held-out losses (nats) of the base plus ``adapter`` on this member's validation split.

        ``key`` (the adapter's CID, or ``VERSION_0``) caches the figures; ``None`` does not.
        """
        if key is not None and key in self._losses:
            return self._losses[key]
        with self.timed("evaluate"), self.scorer(adapter) as score:
            losses = score(range(score.n_blocks))
        if key is not None:
            self._losses[key] = losses
            while len(self._losses) > 3:
                self._losses.pop(next(iter(self._losses)))
        return losses

    def own_loss(self, adapter: Any, key: str | None) -> float:
        """Mean held-out loss (nats) of the base plus ``adapter`` on this member's own validation split."""
        return float(self.own_losses(adapter, key).mean())

    def scorer(self, adapter: Any) -> Any:
        """A block scorer of ``adapter`` on the own validation split (``codecoop.training.block_scorer``)."""
        from codecoop.training import block_scorer

        s = self.settings
        return block_scorer(self.base, adapter, self.corpus, block_size=s.eval_block_size, max_blocks=s.eval_max_blocks)

    def scorers(self, spec: Any) -> Any:
        """LoRA layers of shape ``spec`` attached once, scoring any adapter loaded into them (``adapter_scorers``)."""
        from codecoop.training import adapter_scorers

        s = self.settings
        return adapter_scorers(self.base, spec, self.corpus, block_size=s.eval_block_size, max_blocks=s.eval_max_blocks)
