"""The participant node: one organisation's side of every round, driven by the chain's phases.

:meth:`Node.step` reads the current round from the chain and does at most one piece of work that
is due (train and submit, judge and commit, reveal, finalize, aggregate and confirm, claim); it
returns whether it did something. ``codecoop node run`` calls it in a loop, ``codecoop sim`` calls
the steps of many nodes in turn on one embedded chain. Every decision is re-derived from the chain
and the content store on each step, plus the small :class:`~codecoop.node.journal.Journal`, so a
node killed at any point and restarted carries on with the same round without submitting or voting
twice.

The global model of a round is an adapter: version 0 is the federation's initial LoRA adapter
(seed 0, ``B = 0``, so it leaves the base model's outputs unchanged), and each completed round's
aggregate, stored as a codecoop adapter file whose header also records how it was aggregated, is
the next round's base. Server-optimiser state travels beside it, named by ``codecoop.state``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from codecoop.chain.clients import Ballot, MemberStatus, Phase, RoundInfo
from codecoop.chain.deployment import Deployment
from codecoop.errors import (
    AdapterMismatch,
    AggregationError,
    ChainError,
    CharterMismatch,
    ContractMissing,
    ContractRevert,
    NodeError,
    StorageError,
    TensorFormatError,
)
from codecoop.node.journal import Journal, RoundEntry
from codecoop.node.transport import Transport
from codecoop.settings import setting_field
from codecoop.storage import ContentStore

__all__ = ["Node", "NodeSettings", "NodeEvent", "initial_adapter", "global_bytes", "INITIAL_SEED"]

#: Seed of the federation's initial adapter (version 0): every member derives the same one.
INITIAL_SEED = 0
#: Cache key of version 0, which has no CID (it is never stored: every member derives it).
VERSION_0 = "version-0"


@dataclass(frozen=True)
class NodeSettings:
    """How a node trains, judges and takes part (the node section of its TOML configuration).

    Defaults are the settings of ``codecoop.settings`` named beside each field (docs/SETTINGS.md).

    Attributes
    ----------
    train:
        The local LoRA run of every round (a ``codecoop.training.TrainConfig``).
    eval_block_size, eval_max_blocks:
        Held-out evaluation: block length and how many blocks of the own validation split to use.
    min_improvement_micro:
        Selective update: submit only when the own held-out loss improves by at least this many
        micro-nats over the round's base.
    approve_min_delta_micro:
        Approve a peer's update when its loss delta on the own held-out data is at least this
        (micro-nats; negative tolerates a small loss on data unlike the peer's).
    eval_early_stop_z, eval_min_blocks:
        A peer's update is scored block by block and judged as soon as its mean loss delta is
        ``eval_early_stop_z`` standard errors from the threshold, after at least ``eval_min_blocks``
        blocks (``codecoop.node.evaluation``); ``0`` scores every block.
    max_update_norm:
        Sanity bound on the L2 distance of an update from the round's base adapter.
    min_update_change, copy_distance, min_agreement:
        Screening (``codecoop.node.screening``): refuse an update that is the round's base or moves
        less than ``min_update_change`` of the base's L2 norm (a free ride), whose change is
        within ``copy_distance`` (relative L2) of an earlier-registered update's (a copy), or, when
        this node submitted an update of its own, whose change has cosine similarity below
        ``min_agreement`` with its own (noise, a reversed update).
    max_object_bytes:
        Largest update or model object fetched.
    open_rounds, finalize, claim:
        Whether this node opens the next round when the last one is done, finalizes rounds whose
        reveal window passed, and claims its rewards.
    max_rounds:
        With ``open_rounds``, open no round past this id (``None``: no limit).
    """

    train: Any
    eval_block_size: int = setting_field("evaluation.block_size")
    eval_max_blocks: int | None = setting_field("evaluation.max_blocks")
    min_improvement_micro: int = setting_field("node.min_improvement")
    approve_min_delta_micro: int = setting_field("evaluation.approve_min_delta")
    eval_early_stop_z: float = setting_field("evaluation.early_stop_z")
    eval_min_blocks: int = setting_field("evaluation.min_blocks")
    max_update_norm: float = setting_field("evaluation.max_update_norm")
    min_update_change: float = setting_field("evaluation.min_update_change")
    copy_distance: float = setting_field("evaluation.copy_distance")
    min_agreement: float = setting_field("evaluation.min_agreement")
    max_object_bytes: int = 512 * 1024 * 1024
    open_rounds: bool = setting_field("node.open_rounds")
    finalize: bool = setting_field("node.finalize")
    claim: bool = setting_field("node.claim")
    max_rounds: int | None = setting_field("node.max_rounds")


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


def global_bytes(aggregate: Any, template: Any, base_model_id: str, state_cid: str | None) -> bytes:
    """The next global model's canonical bytes: a codecoop adapter file that also records its making.

    Every honest node passes the same aggregate, template (the round's base adapter) and charter
    model id, so every honest node writes the same bytes and confirms the same CID.
    """
    from codecoop.tensors import to_safetensors
    from codecoop.training import Adapter

    adapter = Adapter(aggregate.tensors, base_model_id, template.base_weights_hash, template.lora, {})
    metadata = {**aggregate.metadata, **adapter.metadata(include_training=False)}
    if state_cid:
        metadata["codecoop.state"] = state_cid
    return to_safetensors(aggregate.tensors, metadata)


def _hex(h: str) -> str:
    return h.lower().removeprefix("0x")


class Node:
    """One participant: an account, a deployment, a store, a transport, a base model and private code.

    Parameters
    ----------
    name:
        A label for events and logs (e.g. the organisation's name).
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
        settings: NodeSettings,
        journal: Journal,
        on_event: Callable[[NodeEvent], None] | None = None,
        on_train_step: Callable[[Any], None] | None = None,
    ):
        self.name = name
        self.account = account
        self.address: str = account.address
        self.d = deployment
        self.store = store
        self.transport = transport
        self.base = base
        self.corpus = corpus
        self.settings = settings
        self.journal = journal
        self.on_event = on_event
        self.on_train_step = on_train_step
        self._initial: Any = None
        self._adapters: dict[str | None, Any] = {}  # global versions by CID (None: version 0)
        self._losses: dict[str, Any] = {}  # own held-out per-block losses by global version CID
        self._samples: dict[int, dict[int, int]] = {}  # round -> update id -> nSamples
        self._seen_updates: dict[int, int] = {}  # round -> updates already prefetched
        self.timings: dict[int, dict[str, float]] = {}
        """Seconds per round and activity: train, evaluate (own held-out data), publish, vote (fetch, checks,
        commit, reveal), finalize, aggregate, confirm, claim."""
        self._round = 0
        self._nested: list[float] = []

    # ------------------------------------------------------------------ setup
    def _emit(self, round_id: int, kind: str, message: str, **data: Any) -> None:
        if self.on_event is not None:
            self.on_event(NodeEvent(self.name, round_id, kind, message, data))

    def check_charter(self) -> None:
        """Refuse to take part unless the loaded base model is the one the charter names (by weights hash)."""
        charter = self.d.models.charter()
        if _hex(charter.base_weights_hash) != _hex(self.base.weights_hash):
            raise CharterMismatch(
                f"the federation's charter names base model {charter.base_model_id!r} with weights sha256 "
                f"{_hex(charter.base_weights_hash)[:16]}..., but this node loaded {self.base.model_id!r} with weights sha256 "
                f"{_hex(self.base.weights_hash)[:16]}...; set [model] id to the charter's model"
            )

    def ensure_member(self, peer_id: str, multiaddrs: tuple[str, ...] = ()) -> MemberStatus:
        """Join the federation if this account has not yet (and delegate its votes to itself)."""
        members = self.d.members
        status = members.status(self.address)
        if status is MemberStatus.NONE:
            tx = members.join(self.account, peer_id, list(multiaddrs))
            self._emit(0, "joined", f"joined as {self.address} (peer {peer_id[:16]}...)", gas=tx.gas_used)
            status = members.status(self.address)
        elif status is MemberStatus.ACTIVE and peer_id and members.member(self.address).peer_id != peer_id:
            members.update_endpoint(self.account, peer_id, list(multiaddrs))
        if status is MemberStatus.ACTIVE and self.d.token.delegates(self.address) != self.address:
            self.d.token.delegate(self.account)
        if status in (MemberStatus.SUSPENDED, MemberStatus.REMOVED):
            raise NodeError(f"account {self.address} is {status.name.lower()} in this federation; it cannot take part")
        return status

    @contextlib.contextmanager
    def _timed(self, activity: str) -> Iterator[None]:
        """Add the block's wall time to ``timings[current round][activity]``, minus nested activities."""
        began = time.perf_counter()
        self._nested.append(0.0)
        try:
            yield
        finally:
            inner = self._nested.pop()
            spent = time.perf_counter() - began
            per_round = self.timings.setdefault(self._round, {})
            per_round[activity] = per_round.get(activity, 0.0) + spent - inner
            if self._nested:
                self._nested[-1] += spent

    # ------------------------------------------------------------------ models
    def global_adapter(self, cid: str | None) -> Any:
        """The global model ``cid`` names (``None``: version 0), fetched, verified and checked against the base."""
        if cid not in self._adapters:
            if cid is None:
                self._adapters[None] = initial_adapter(self.base, self.settings.train)
            else:
                from codecoop.training import Adapter

                self._adapters[cid] = Adapter.from_bytes(self._fetch(cid, None), self.base)
            while len(self._adapters) > 3:
                self._adapters.pop(next(iter(self._adapters)))
        return self._adapters[cid]

    def own_losses(self, adapter: Any, key: str | None) -> Any:
        """Per-block held-out losses (nats) of the base plus ``adapter`` on this node's validation split.

        ``key`` (the adapter's CID, or ``VERSION_0``) caches the figures; ``None`` does not.
        """
        if key is not None and key in self._losses:
            return self._losses[key]
        with self._timed("evaluate"), self._scorer(adapter) as score:
            losses = score(range(score.n_blocks))
        if key is not None:
            self._losses[key] = losses
            while len(self._losses) > 3:
                self._losses.pop(next(iter(self._losses)))
        return losses

    def own_loss(self, adapter: Any, key: str | None) -> float:
        """Mean held-out loss (nats) of the base plus ``adapter`` on this node's own validation split."""
        return float(self.own_losses(adapter, key).mean())

    def _scorer(self, adapter: Any) -> Any:
        from codecoop.training import block_scorer

        return block_scorer(
            self.base, adapter, self.corpus, block_size=self.settings.eval_block_size, max_blocks=self.settings.eval_max_blocks
        )

    def _scorers(self, spec: Any) -> Any:
        from codecoop.training import adapter_scorers

        return adapter_scorers(
            self.base, spec, self.corpus, block_size=self.settings.eval_block_size, max_blocks=self.settings.eval_max_blocks
        )

    def _fetch(self, cid: str, owner: str | None) -> bytes:
        limit = self.settings.max_object_bytes
        if self.store.has(cid):
            return self.store.get(cid, max_size=limit)
        return self.transport.fetch(cid, owner, max_size=limit)

    # ------------------------------------------------------------------ the state machine
    def step(self) -> bool:
        """Do the next piece of work that is due, if any; return whether something was done."""
        rounds = self.d.rounds
        r = rounds.current_round()
        if r == 0:
            return self._maybe_open(r, None)
        info = rounds.round(r)
        entry = self.journal.entry(r)
        phase = info.phase
        self._round = r
        if phase is Phase.SUBMIT:
            if self._submit_phase(info, entry):
                return True
            with self._timed("vote"):  # peers' updates are fetched to be judged
                return self._prefetch(info)
        if phase is Phase.COMMIT:
            with self._timed("vote"):
                return self._commit(info, entry)
        if phase is Phase.REVEAL:
            with self._timed("vote"):
                return self._reveal(info, entry)
        if phase is Phase.FINALIZABLE:
            with self._timed("finalize"):
                return self._finalize(info)
        if phase is Phase.CONFIRM:
            return self._confirm(info, entry)
        with self._timed("claim"):
            return self._claim(info, entry) or self._maybe_open(r, phase)

    def run(self, *, poll: float = 2.0, stop: Callable[[], bool] = lambda: False) -> None:
        """Step until ``stop()`` is true, sleeping ``poll`` seconds whenever nothing is due.

        A chain that cannot be reached is waited for; a transaction that reverts (another member
        was faster, a window closed) is reported and the state re-read from the chain; a chain
        that no longer holds the deployment (``ContractMissing``: it was reset) ends the run.
        """
        while not stop():
            try:
                acted = self.step()
            except ContractRevert as exc:
                self._emit(self.d.rounds.current_round(), "warning", f"transaction reverted: {exc}")
                acted = False
            except ContractMissing:
                raise  # a reset chain does not come back: waiting would hide it
            except (ChainError, StorageError) as exc:
                self._emit(0, "warning", f"{exc}; retrying in {poll:.0f} s")
                acted = False
            if not acted:
                time.sleep(poll)

    def open_round(self) -> int | None:
        """Open the next round now; ``None`` if the previous one is not done (another member may have opened it)."""
        try:
            r = self.d.rounds.open_round(self.account)
        except ContractRevert as exc:
            if exc.error in ("PreviousRoundNotDone", "WrongPhase"):
                return None
            raise
        self._emit(r, "opened", f"opened round {r} on base {self.d.rounds.round(r).base_cid or 'version 0'}")
        return r

    def _maybe_open(self, r: int, phase: Phase | None) -> bool:
        s = self.settings
        if not s.open_rounds or (s.max_rounds is not None and r >= s.max_rounds):
            return False
        if phase is Phase.FAILED or phase is Phase.COMPLETED or phase is None:
            return self.open_round() is not None
        return False

    # -- submit
    def _submit_phase(self, info: RoundInfo, entry: RoundEntry) -> bool:
        r = info.round
        part = self.d.rounds.participation(r, self.address)
        if part.own_update is None and not entry.skipped:
            self._train_and_submit(info, entry)
            return True
        if part.own_update is not None and entry.trained_cid and not entry.announced:
            with self._timed("publish"):
                self.transport.announce(r, entry.trained_cid)
            entry.announced = True
            self.journal.save()
            return True
        return False

    def _train_and_submit(self, info: RoundInfo, entry: RoundEntry) -> None:
        r = info.round
        if entry.trained_cid is None:
            from codecoop.training import train_lora

            with self._timed("train"):
                start = self.global_adapter(info.base_cid)
                base_loss = self.own_loss(start, info.base_cid or VERSION_0)
                self._emit(r, "training", f"training {self.settings.train.steps} steps from {info.base_cid or 'version 0'}")
                began = time.perf_counter()
                adapter = train_lora(self.base, self.corpus, self.settings.train, start=start, on_step=self.on_train_step)
                train_s = time.perf_counter() - began
                loss = self.own_loss(adapter, None)
            improvement = round((base_loss - loss) * 1e6)
            entry.improvement_micro = improvement
            entry.base_cid = info.base_cid
            data = {"train_s": train_s, "base_loss": base_loss, "loss": loss, "improvement_micro": improvement}
            if improvement < self.settings.min_improvement_micro:
                entry.skipped = True
                self.journal.save()
                self._emit(r, "skipped", f"own loss {base_loss:.4f} -> {loss:.4f}: below the submit threshold, not submitting", **data)
                return
            with self._timed("publish"):
                blob = adapter.to_bytes()
                cid = self.store.put(blob)
                self.store.pin(cid)
                entry.trained_cid, entry.samples = cid, max(adapter.num_samples, 1)
                dp = adapter.training.get("dp")
                if dp:
                    entry.dp = {"noise_multiplier": float(dp["noise_multiplier"]), "delta": float(dp["delta"])}
                self.journal.save()
            message = f"own loss {base_loss:.4f} -> {loss:.4f} in {train_s:.1f} s"
            spent = self.journal.privacy_spent(self.settings.train.dp_delta)
            if spent is not None:
                data["epsilon"], data["dp_rounds"] = spent
                message += f"; privacy spent: epsilon {spent[0]:.2f} over {spent[1]} released update(s) at delta {self.settings.train.dp_delta:g}"
            self._emit(r, "trained", message, bytes=len(blob), **data)
        with self._timed("publish"):
            self._register(info, entry)

    def _register(self, info: RoundInfo, entry: RoundEntry) -> None:
        r = info.round
        assert entry.trained_cid is not None
        try:
            submitted = self.d.rounds.submit_update(self.account, r, entry.trained_cid, entry.samples or 1)
        except ContractRevert as exc:
            if exc.error == "AlreadySubmitted":
                return
            if exc.error == "WrongPhase":
                self._emit(r, "warning", "the submit window closed before the update was registered; this round goes on without it")
                entry.skipped = True
                self.journal.save()
                return
            raise
        self._emit(r, "submitted", f"submitted update #{submitted.update_id} {entry.trained_cid[:20]}...", gas=submitted.tx.gas_used)
        self.transport.announce(r, entry.trained_cid)
        entry.announced = True
        self.journal.save()

    def _prefetch(self, info: RoundInfo) -> bool:
        """Fetch peers' updates registered since the last look, so judging them later waits on nothing."""
        count = info.update_count
        if count <= self._seen_updates.get(info.round, 0):
            return False
        fetched = False
        complete = True
        for u in self.d.rounds.updates(info.round):
            if u.submitter != self.address and not self.store.has(u.cid):
                try:
                    self._fetch(u.cid, u.submitter)
                    fetched = True
                except StorageError:
                    complete = False  # not reachable yet; tried again at the next step
        if complete:
            self._seen_updates[info.round] = count
        return fetched

    # -- vote
    def _sample_counts(self, r: int) -> dict[int, int]:
        if r not in self._samples:
            events = self.d.rounds.events("UpdateSubmitted", from_block=self.d.record.block, round=r)
            self._samples[r] = {int(e.args["updateId"]): int(e.args["nSamples"]) for e in events}
        return self._samples[r]

    def judge(self, info: RoundInfo, entry: RoundEntry) -> dict[int, tuple[bool, int]]:
        """Sanity-check and evaluate every other member's update of the round: ``{id: (approve, lossDelta)}``."""
        from codecoop.aggregation import Update, update_norm
        from codecoop.training import Adapter

        from codecoop.node.evaluation import SequentialTest, block_order, paired_delta
        from codecoop.node.screening import ScreeningError, screen_round

        r = info.round
        glob = self.global_adapter(info.base_cid)
        base_losses = self.own_losses(glob, info.base_cid or VERSION_0)
        test = SequentialTest(z=self.settings.eval_early_stop_z, min_blocks=self.settings.eval_min_blocks)
        order = block_order(len(base_losses))
        threshold = self.settings.approve_min_delta_micro / 1e6
        votes: dict[int, tuple[bool, int]] = {}
        updates = self.d.rounds.updates(r)
        decoded: dict[str, Any] = {}

        def load(u: Any) -> Any:
            """A peer's adapter, fetched (CID verified) and decoded once for screening and evaluation."""
            if u.cid not in decoded:
                decoded[u.cid] = Adapter.from_bytes(self._fetch(u.cid, u.submitter), self.base)
            return decoded[u.cid]

        # free rides, copies of earlier updates (own included) and updates unrelated to the own, before any forward pass
        screened = screen_round(
            updates, lambda u: load(u).tensors, info.base_cid,
            glob.tensors, min_change=self.settings.min_update_change, copy_distance=self.settings.copy_distance,
            reference=self.address, min_agreement=self.settings.min_agreement,
        )
        # LoRA layers are attached once, on the first update that reaches evaluation, and every
        # peer's tensors are loaded into them in turn (a fresh attach per peer cost about a third
        # of the judging time on tiny)
        with contextlib.ExitStack() as layers:
            scorer_for = None
            for u in updates:
                if u.submitter == self.address:
                    continue
                reason = ""
                delta = blocks = 0
                try:
                    adapter = load(u)
                    if not adapter.lora.same_layout(glob.lora):
                        raise AdapterMismatch(f"LoRA shape {adapter.lora} differs from the global model's {glob.lora}")
                    norm = update_norm(Update(u.cid, adapter.tensors, 1), glob.tensors)
                    if norm > self.settings.max_update_norm:
                        raise AdapterMismatch(f"distance {norm:.1f} from the base exceeds the bound {self.settings.max_update_norm}")
                    if u.update_id in screened:
                        raise screened[u.update_id]
                    with self._timed("evaluate"):
                        if scorer_for is None:
                            scorer_for = layers.enter_context(self._scorers(glob.lora))
                        verdict = paired_delta(base_losses, scorer_for(adapter), threshold, test, order)
                    blocks = verdict.blocks
                    if not math.isfinite(verdict.delta):
                        raise AdapterMismatch("it gives a non-finite loss on this node's held-out data")
                    delta = round(verdict.delta * 1e6)
                    approve = delta >= self.settings.approve_min_delta_micro
                    if not approve:
                        reason = f"loss delta {delta} micro-nats on own data"
                except (AdapterMismatch, TensorFormatError, StorageError, ScreeningError) as exc:
                    approve, reason = False, f"refused: {exc}"
                votes[u.update_id] = (approve, delta)
                entry.votes[str(u.update_id)] = {
                    "approve": approve, "delta": delta, "reason": reason, "submitter": u.submitter, "blocks": blocks,
                }
            with self._timed("evaluate"):
                layers.close()
        return votes

    def _commit(self, info: RoundInfo, entry: RoundEntry) -> bool:
        r = info.round
        if self.d.rounds.participation(r, self.address).committed:
            return False
        if entry.ballot is None:
            votes = self.judge(info, entry)
            # written before the commitment is sent: the salt is needed to reveal
            entry.ballot = Ballot.of(votes).to_json()
            self.journal.save()
        ballot = Ballot.from_json(entry.ballot)
        tx = self.d.rounds.commit_votes(self.account, r, ballot)
        approvals = sum(ballot.approve)
        self._emit(
            r, "committed", f"committed {len(ballot.update_ids)} votes ({approvals} approve)", gas=tx.gas_used,
            votes={k: dict(v) for k, v in entry.votes.items()},
        )
        return True

    def _reveal(self, info: RoundInfo, entry: RoundEntry) -> bool:
        r = info.round
        part = self.d.rounds.participation(r, self.address)
        if not part.committed or part.revealed:
            return False
        if entry.ballot is None:
            raise NodeError(f"round {r}: votes were committed but the journal {self.journal.path} lost the ballot; they cannot be revealed")
        tx = self.d.rounds.reveal_votes(self.account, r, Ballot.from_json(entry.ballot))
        self._emit(r, "revealed", "revealed votes", gas=tx.gas_used)
        return True

    def _finalize(self, info: RoundInfo) -> bool:
        if not self.settings.finalize:
            return False
        try:
            result = self.d.rounds.finalize(self.account, info.round)
        except ContractRevert as exc:
            if exc.error == "WrongPhase":
                return False  # another member finalized first
            raise
        self._emit(
            info.round, "finalized", f"finalized: accepted updates {list(result.accepted_ids)}",
            gas=result.tx.gas_used, accepted=list(result.accepted_ids),
        )
        return True

    # -- aggregate and confirm
    def aggregate(self, info: RoundInfo) -> tuple[str, bytes]:
        """Aggregate the round's accepted updates with the federation's strategy; return (CID, bytes), stored and pinned."""
        from codecoop.aggregation import Update
        from codecoop.tensors import from_safetensors

        r = info.round
        samples = self._sample_counts(r)
        by_id = {u.update_id: u for u in self.d.rounds.updates(r)}
        updates = []
        for uid in info.accepted_ids:
            u = by_id[uid]
            updates.append(Update.from_bytes(u.cid, self._fetch(u.cid, u.submitter), samples.get(uid, 1)))
        glob = self.global_adapter(info.base_cid)
        state = None
        if info.base_cid is not None:
            _, meta = from_safetensors(self._fetch(info.base_cid, None))
            if meta.get("codecoop.state"):
                state = self._fetch(meta["codecoop.state"], None)
        from codecoop.aggregation.spec import parse_strategy

        strategy = parse_strategy(self.d.rounds.aggregation_strategy()).build()
        agg = strategy.aggregate(updates, state, base=glob.tensors)
        state_cid = None
        if agg.state is not None:
            state_cid = self.store.put(agg.state)
            self.store.pin(state_cid)
        data = global_bytes(agg, glob, self.d.models.charter().base_model_id, state_cid)
        cid = self.store.put(data)
        self.store.pin(cid)
        return cid, data

    def _confirm(self, info: RoundInfo, entry: RoundEntry) -> bool:
        r = info.round
        part = self.d.rounds.participation(r, self.address)
        if not part.revealed or part.confirmed:
            return False
        if entry.aggregate_error:
            return False
        if entry.aggregate_cid is None:
            began = time.perf_counter()
            try:
                with self._timed("aggregate"):
                    cid, data = self.aggregate(info)
            except (AggregationError, StorageError) as exc:
                self._emit(r, "warning", f"cannot aggregate round {r}: {exc}")
                entry.aggregate_error = str(exc)
                self.journal.save()
                return False
            entry.aggregate_cid = cid
            self.journal.save()
            self._emit(r, "aggregated", f"aggregated {len(info.accepted_ids)} updates -> {cid[:20]}...",
                       seconds=time.perf_counter() - began, bytes=len(data), cid=cid)
        try:
            with self._timed("confirm"):
                tx = self.d.rounds.confirm_aggregate(self.account, r, entry.aggregate_cid)
        except ContractRevert as exc:
            if exc.error == "AggregateMismatch":
                self._emit(r, "warning", f"k members confirmed another aggregate than ours ({entry.aggregate_cid})")
                return False
            if exc.error == "WrongPhase":
                return False
            raise
        self.transport.announce(r, entry.aggregate_cid)
        self._emit(r, "confirmed", f"confirmed aggregate {entry.aggregate_cid[:20]}...", gas=tx.gas_used)
        return True

    # -- after the round
    def _claim(self, info: RoundInfo, entry: RoundEntry) -> bool:
        r = info.round
        if not self.settings.claim or entry.done:
            return False
        if self.d.rounds.entitlement(r, self.address) > 0:
            result = self.d.rounds.claim(self.account, r)
            self._emit(r, "claimed", f"claimed {result.minted / 10**18:,.2f} tokens", gas=result.tx.gas_used, minted=result.minted)
            return True
        entry.done = True
        self.journal.save()
        if info.phase is Phase.COMPLETED and info.global_cid and info.global_cid != info.base_cid:
            self._emit(r, "adopted", f"global model is now {info.global_cid[:20]}...", cid=info.global_cid)
        return False
