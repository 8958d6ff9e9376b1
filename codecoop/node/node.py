"""The participant node: one organisation's side of every round, driven by the chain's phases.

A :class:`Node` is the round driver. :meth:`Node.step` reads the current round from the chain and
does at most one piece of work that is due, asking its parts where a decision is needed:

* a :class:`~codecoop.node.trainer.Trainer` produces this member's update (submit window);
* a :class:`~codecoop.node.judge.Judge` decides the votes on the peers' updates (commit window);
* an :class:`~codecoop.node.aggregator.Aggregator` computes the aggregate to confirm (confirm window);

and does the rest itself: registering, gossip, commit and reveal, finalize, confirm, claim, opening
rounds. It returns whether it did something. ``codecoop node run`` calls it in a loop, ``codecoop
sim`` calls the steps of many nodes in turn on one embedded chain. Every decision is re-derived
from the chain and the content store on each step, plus the small
:class:`~codecoop.node.journal.Journal`, so a node killed at any point and restarted carries on with
the same round without submitting or voting twice. The parts share one
:class:`~codecoop.node.member.Member` (identity, store, transport, caches); a variant (an attacker,
a test double) replaces a part, never the driver (``codecoop.sim.byzantine``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from codecoop.chain import reverts
from codecoop.chain.clients import Ballot, MemberStatus, Phase, RoundInfo, UpdateDisclosure
from codecoop.chain.deployment import Deployment
from codecoop.chain.units import format_tokens
from codecoop.errors import (
    AggregationError,
    ChainError,
    CharterMismatch,
    ContractMissing,
    ContractRevert,
    MembershipEnded,
    NodeError,
    StorageError,
)
from codecoop.node.aggregator import Aggregator, StrategyAggregator, global_bytes
from codecoop.node.journal import Journal, RoundEntry
from codecoop.node.judge import HeldOutJudge, Judge
from codecoop.node.member import INITIAL_SEED, Member, NodeEvent, initial_adapter
from codecoop.node.trainer import LoraTrainer, Skipped, Trainer
from codecoop.node.transport import Transport
from codecoop.settings import setting_field
from codecoop.storage import ContentStore

__all__ = ["Node", "NodeSettings", "NodeEvent", "Parts", "initial_adapter", "global_bytes", "INITIAL_SEED"]


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
    min_update_change, min_relative_change, copy_distance, copy_similarity, min_agreement:
        Screening (``codecoop.node.screening``): refuse an update that is the round's base or moves
        less than ``min_update_change`` of the base's L2 norm or less than ``min_relative_change``
        of the median change of the round's updates (a free ride), whose change is within
        ``copy_distance`` (relative L2) of an earlier-registered update's or has cosine similarity
        at least ``copy_similarity`` with it (a copy, scaled or with noise added), or, when
        this node submitted an update of its own, whose change has cosine similarity below
        ``min_agreement`` with its own (noise, a reversed update).
    insecure_shift_max:
        Backdoor probe (``codecoop.training.insecure``): refuse an update that raises the mean
        log-odds of insecure over safe completions of security-sensitive calls by more than this
        (nats) against the round's base, on this node's own probe prompts; ``0`` turns it off.
    max_object_bytes:
        Largest update or model object fetched.
    open_rounds, finalize, claim:
        Whether this node opens the next round when the last one is done, finalizes rounds whose
        reveal window passed, and claims its rewards.
    max_rounds:
        With ``open_rounds``, open no round past this id (``None``: no limit).
    replicas, replica_wait:
        Before registering its update, the node offers it to its peers (an announcement) and waits
        until ``replicas`` of them hold a copy, at most ``replica_wait`` seconds and never past the
        last blocks of the submit window: an update registered only by a node that then goes
        offline could not be judged or aggregated.
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
    min_relative_change: float = setting_field("evaluation.min_relative_change")
    copy_similarity: float = setting_field("evaluation.copy_similarity")
    insecure_shift_max: float = setting_field("evaluation.insecure_shift_max")
    min_agreement: float = setting_field("evaluation.min_agreement")
    max_object_bytes: int = 512 * 1024 * 1024
    open_rounds: bool = setting_field("node.open_rounds")
    finalize: bool = setting_field("node.finalize")
    claim: bool = setting_field("node.claim")
    max_rounds: int | None = setting_field("node.max_rounds")
    replicas: int = setting_field("node.replicas")
    replica_wait: float = setting_field("node.replica_wait")


@dataclass(frozen=True)
class Parts:
    """How a node's parts are made from its :class:`Member`: the honest ones unless replaced."""

    trainer: Callable[[Member], Trainer] = LoraTrainer
    judge: Callable[[Member], Judge] = HeldOutJudge
    aggregator: Callable[[Member], Aggregator] = StrategyAggregator


def _hex(h: str) -> str:
    return h.lower().removeprefix("0x")


#: With fewer blocks than this left in the submit window, an update is registered without waiting for copies.
_CLOSING_BLOCKS = 5
#: Failed fetches of one offered object before a node stops asking for it (registered updates are always retried);
#: the pause before the next try doubles from 1 s up to ``_OFFER_RETRY_MAX_S``, so the tries span about a minute
#: (``node.replica_wait``'s default): a peer busy serving every member at the window's start is asked again.
_OFFER_TRIES = 8
_OFFER_RETRY_MAX_S = 16.0
#: While its update waits for copies, a node announces the offer again this often: gossip published before a peer
#: was connected (it joined or came back since the last dial) reaches nobody and is not repeated by the network.
_REANNOUNCE_S = 5.0


class Node:
    """One participant's round driver: an account, a deployment, a store, a transport, a base model,
    private code, and its parts.

    Parameters
    ----------
    parts:
        Which trainer, judge and aggregator the node runs (default: the honest ones).
    **member:
        Who the member is and what it works with: everything :class:`~codecoop.node.member.Member`
        takes (name, account, deployment, store, transport, base, corpus, settings, journal,
        on_event, on_train_step).
    """

    def __init__(self, *, parts: Parts = Parts(), **member: Any):
        self.member = Member(**member)
        m = self.member
        self.name, self.account, self.address = m.name, m.account, m.address
        self.deployment: Deployment = m.deployment
        self.settings: NodeSettings = m.settings
        self.journal: Journal = m.journal
        self.trainer = parts.trainer(self.member)
        self.judge = parts.judge(self.member)
        self.aggregator = parts.aggregator(self.member)
        # round -> (first block not yet read for disclosures, disclosed CIDs not yet held -> submitter)
        self._disclosures: dict[int, tuple[int, dict[str, str]]] = {}
        # own update CID -> (round, offered at, last announced at (monotonic), copies wanted)
        self._offered: dict[str, tuple[int, float, float, int]] = {}
        self._offer_tries: dict[str, tuple[int, float]] = {}  # peers' offered CIDs -> (failed fetches, next try at)
        self._idle_status: MemberStatus | None = None  # the inactive status last reported

    @property
    def store(self) -> ContentStore:
        return self.member.store

    @property
    def transport(self) -> Transport:
        return self.member.transport

    @property
    def timings(self) -> dict[int, dict[str, float]]:
        """Seconds per round and activity (:attr:`Member.timings`)."""
        return self.member.timings

    def global_adapter(self, cid: str | None) -> Any:
        """The global model ``cid`` names (``None``: version 0), fetched, verified and checked against the base."""
        return self.member.global_adapter(cid)

    # ------------------------------------------------------------------ setup
    def _emit(self, round_id: int, kind: str, message: str, **data: Any) -> None:
        self.member.emit(round_id, kind, message, **data)

    def check_charter(self) -> None:
        """Refuse to take part unless the loaded base model is the one the charter names (by weights hash)."""
        charter = self.deployment.models.charter()
        base = self.member.base
        if _hex(charter.base_weights_hash) != _hex(base.weights_hash):
            raise CharterMismatch(
                f"the federation's charter names base model {charter.base_model_id!r} with weights sha256 "
                f"{_hex(charter.base_weights_hash)[:16]}..., but this node loaded {base.model_id!r} with weights sha256 "
                f"{_hex(base.weights_hash)[:16]}...; set [model] id to the charter's model"
            )

    def ensure_member(self, peer_id: str, multiaddrs: tuple[str, ...] = ()) -> MemberStatus:
        """Join the federation if this account has not yet (and delegate its votes to itself)."""
        members = self.deployment.members
        status = members.status(self.address)
        if status is MemberStatus.NONE:
            tx = members.join(self.account, peer_id, list(multiaddrs))
            self._emit(0, "joined", f"joined as {self.address} (peer {peer_id[:16]}...)", gas=tx.gas_used)
            status = members.status(self.address)
        elif status is MemberStatus.ACTIVE and peer_id and members.member(self.address).peer_id != peer_id:
            members.update_endpoint(self.account, peer_id, list(multiaddrs))
        if status is MemberStatus.ACTIVE and self.deployment.token.delegates(self.address) != self.address:
            self.deployment.token.delegate(self.account)
        if status in (MemberStatus.SUSPENDED, MemberStatus.REMOVED):
            raise NodeError(f"account {self.address} is {status.name.lower()} in this federation; it cannot take part")
        if status is MemberStatus.LEFT:
            raise NodeError(
                f"account {self.address} left this federation and cannot join it again; to take part anew, create a new "
                "keystore (`codecoop init` in a fresh folder) and join with it"
            )
        return status

    def _membership(self) -> bool:
        """Whether this account may act now: active. Suspended or pending, the node waits (reported once).

        Raises :class:`MembershipEnded` once the account left or was removed by governance.
        """
        status = self.deployment.members.status(self.address)
        if status is MemberStatus.ACTIVE:
            self._idle_status = None
            return True
        if status in (MemberStatus.LEFT, MemberStatus.REMOVED):
            how = "left the federation" if status is MemberStatus.LEFT else "was removed from the federation by governance"
            raise MembershipEnded(f"account {self.address} {how}; this node has no more duties")
        if status is not self._idle_status:
            self._idle_status = status
            why = "is suspended by governance" if status is MemberStatus.SUSPENDED else f"is {status.name.lower()}"
            self._emit(0, "warning", f"account {self.address} {why}: the node waits, acting in no round, until it is active")
        return False

    def end(self, why: MembershipEnded) -> None:
        """Close this member's part: claim what it is still owed and report the end (event ``ended``)."""
        self.settle()
        self._emit(0, "ended", str(why))

    def settle(self) -> int:
        """Claim every reward this account is owed in the rounds its journal knows; return how many claims were sent.

        Claiming needs no active membership: a member that left, or was removed, keeps what it earned.
        """
        claims = self.deployment.rounds.claim_owed(self.account, sorted(self.journal.rounds))
        for r, result in claims:
            self._emit(r, "claimed", f"claimed {format_tokens(result.minted)} tokens", gas=result.tx.gas_used, minted=result.minted)
        return len(claims)

    # ------------------------------------------------------------------ the state machine
    def step(self) -> bool:
        """Do the next piece of work that is due, if any; return whether something was done.

        Raises :class:`MembershipEnded` once this account left the federation or was removed.
        """
        if not self._membership():
            return False
        rounds = self.deployment.rounds
        r = rounds.current_round()
        if r == 0:
            return self._maybe_open(r, None)
        info = rounds.round(r)
        entry = self.journal.entry(r)
        phase = info.phase
        self.member.round = r
        timed = self.member.timed
        if phase is Phase.SUBMIT:
            return self._submit_phase(info, entry)  # nothing of the peers' is public yet: nothing to fetch
        if phase is Phase.DISCLOSE:
            if self._disclose_phase(info, entry):
                return True
            with timed("vote"):  # peers' updates are fetched to be judged
                return self._prefetch(info)
        if phase is Phase.COMMIT:
            with timed("vote"):
                return self._commit(info, entry)
        if phase is Phase.REVEAL:
            with timed("vote"):
                return self._reveal(info, entry)
        if phase is Phase.FINALIZABLE:
            with timed("finalize"):
                return self._finalize(info)
        if phase is Phase.CONFIRM:
            return self._confirm(info, entry)
        with timed("claim"):
            return self._claim(info, entry) or self._maybe_open(r, phase)

    def run(self, *, poll: float = 2.0, stop: Callable[[], bool] = lambda: False) -> None:
        """Step until ``stop()`` is true, sleeping ``poll`` seconds whenever nothing is due.

        A chain that cannot be reached is waited for; a transaction that reverts (another member
        was faster, a window closed) is reported and the state re-read from the chain; a chain
        that no longer holds the deployment (``ContractMissing``: it was reset) ends the run. So does
        the end of this account's membership (it left, or governance removed it): the node claims
        what it is still owed, reports it (event ``ended``) and returns.
        """
        while not stop():
            try:
                acted = self.step()
            except MembershipEnded as exc:
                self.end(exc)
                return
            except ContractRevert as exc:
                self._emit(self.deployment.rounds.current_round(), "warning", f"transaction reverted: {exc}")
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
            r = self.deployment.rounds.open_round(self.account)
        except (reverts.PreviousRoundNotDone, reverts.WrongPhase):
            return None
        self._emit(r, "opened", f"opened round {r} on base {self.deployment.rounds.round(r).base_cid or 'version 0'}")
        return r

    def _maybe_open(self, r: int, phase: Phase | None) -> bool:
        s = self.settings
        if not s.open_rounds or (s.max_rounds is not None and r >= s.max_rounds):
            return False
        if phase is Phase.FAILED or phase is Phase.COMPLETED or phase is None:
            return self.open_round() is not None
        return False

    # -- submit: commit to the update (its hash) while the submit window is open, disclose it after
    def _submit_phase(self, info: RoundInfo, entry: RoundEntry) -> bool:
        part = self.deployment.rounds.participation(info.round, self.address)
        if part.own_update is None and not entry.skipped:
            return self._produce_and_commit(info, entry)
        return False

    def _produce_and_commit(self, info: RoundInfo, entry: RoundEntry) -> bool:
        """Ask the trainer for the round's update (once: the journal keeps it), then commit to it.

        Only the commitment's hash goes on the chain and nothing is offered to the peers: no
        member can copy the update before the submit window closes (docs/CONTRACTS.md)."""
        r = info.round
        if entry.trained_cid is None:
            produced = self.trainer.update(info)
            if produced is None:
                return False  # the trainer has nothing yet; asked again at the next step
            entry.improvement_micro = produced.improvement_micro
            entry.base_cid = info.base_cid
            if isinstance(produced, Skipped):
                entry.skipped = True
                self.journal.save()
                self._emit(r, "skipped", produced.message, **produced.data)
                return True
            entry.trained_cid, entry.samples = produced.cid, produced.samples
            entry.dp = dict(produced.dp) if produced.dp else None
            self.journal.save()
            message, data = produced.message, dict(produced.data)
            delta = self.settings.train.dp_delta
            spent = self.journal.privacy_spent(delta)
            if spent is not None:
                data["epsilon"], data["dp_rounds"] = spent
                message += f"; privacy spent: epsilon {spent[0]:.2f} over {spent[1]} released update(s) at delta {delta:g}"
            self._emit(r, produced.kind, message, **data)
        if entry.disclosure is None or entry.disclosure.get("cid") != entry.trained_cid:
            # the salt is kept before the commitment is sent: a restart discloses what was committed
            entry.disclosure = UpdateDisclosure(r, entry.trained_cid, entry.samples or 1).to_json()
            self.journal.save()
        try:
            committed = self.deployment.rounds.commit_update(self.account, UpdateDisclosure.from_json(entry.disclosure))
        except reverts.AlreadySubmitted:
            return True
        except reverts.WrongPhase:
            self._emit(r, "warning", "the submit window closed before the update was committed; this round goes on without it")
            entry.skipped = True
            self.journal.save()
            return True
        self._emit(r, "committed", f"committed to update #{committed.update_id} (its hash only)", gas=committed.tx.gas_used)
        return True

    def _disclose_phase(self, info: RoundInfo, entry: RoundEntry) -> bool:
        """Offer the committed update to the peers, then disclose its CID (once enough hold a copy)."""
        r = info.round
        part = self.deployment.rounds.participation(r, self.address)
        if part.own_update is None or entry.disclosure is None or entry.announced:
            return False
        if self.deployment.rounds.update(r, part.own_update) is None:
            with self.member.timed("publish"):
                if not self._replicated(info, entry):
                    return False  # peers are fetching their copies; asked again at the next step
                self._register(info, entry)
            return True
        self.transport.announce(r, entry.trained_cid or "")  # disclosed before a restart: announce it again
        entry.announced = True
        self.journal.save()
        return True

    def _replicated(self, info: RoundInfo, entry: RoundEntry) -> bool:
        """Whether the trained update may be registered: enough peers hold a copy, the wait is over, or the window closes.

        The first call offers the update (an announcement for the round); peers fetch offered
        objects while the disclose window is open, so an update whose submitter goes offline right
        after disclosing it can still be judged and aggregated from their copies. Offers start only
        once the submit window has closed: every member's commitment is on the chain by then.
        """
        s, cid = self.settings, entry.trained_cid
        assert cid is not None
        if s.replicas <= 0:
            return True
        if cid not in self._offered:
            # no more copies than there are other members with an address to fetch from
            peers = sum(1 for m in self.deployment.members.active_members() if m.multiaddrs and m.address != self.address)
            wanted = min(s.replicas, peers)
            if wanted == 0:
                return True
            self.transport.announce(info.round, cid)
            now = time.monotonic()
            self._offered[cid] = (info.round, now, now, wanted)
            self._emit(info.round, "offered", f"offered update {cid[:20]}... to the peers; registering it once {wanted} hold a copy")
            return False
        r, offered_at, announced_at, wanted = self._offered[cid]
        copies = self.transport.copies(cid)
        if copies >= wanted:
            del self._offered[cid]
            return True
        now = time.monotonic()
        if now - announced_at >= _REANNOUNCE_S:
            self.transport.announce(r, cid)
            self._offered[cid] = (r, offered_at, now, wanted)
        waited = now - offered_at
        closing = info.disclose_end - self.deployment.chain.block_number <= _CLOSING_BLOCKS
        if waited >= s.replica_wait or closing:
            why = f"after {waited:.0f} s" if waited >= s.replica_wait else "as the disclose window closes"
            self._emit(info.round, "warning", f"registering the update with {copies} of {wanted} peer copies {why}")
            del self._offered[cid]
            return True
        return False

    @property
    def awaiting_copies(self) -> bool:
        """Whether this node holds back an update of the current round until its peers have copies (see ``replicas``)."""
        r = self.deployment.rounds.current_round()
        return any(entry[0] == r for entry in self._offered.values())

    def _register(self, info: RoundInfo, entry: RoundEntry) -> None:
        r = info.round
        assert entry.trained_cid is not None and entry.disclosure is not None
        try:
            submitted = self.deployment.rounds.submit_update(self.account, UpdateDisclosure.from_json(entry.disclosure))
        except reverts.AlreadySubmitted:
            return
        except reverts.WrongPhase:
            self._emit(r, "warning", "the disclose window closed before the update was disclosed; this round goes on without it")
            entry.skipped = True
            self.journal.save()
            return
        self._emit(r, "submitted", f"submitted update #{submitted.update_id} {entry.trained_cid[:20]}...", gas=submitted.tx.gas_used)
        self.transport.announce(r, entry.trained_cid)
        entry.announced = True
        self.journal.save()

    def _prefetch(self, info: RoundInfo) -> bool:
        """Fetch peers' offered and registered updates not yet held, so judging them later waits on nothing."""
        fetched = self._fetch_offers(info.round)
        return self._fetch_registered(info) or fetched

    def _fetch_offers(self, r: int) -> bool:
        """Copies of what other members offered for round ``r`` (each tried a few times at most)."""
        fetched = False
        for cid, sender in self.transport.offers(r):
            failures, next_try = self._offer_tries.get(cid, (0, 0.0))
            if self.store.has(cid) or failures >= _OFFER_TRIES or time.monotonic() < next_try:
                continue
            try:
                self.member.fetch(cid, sender)
                fetched = True
            except StorageError:
                pause = min(2.0**failures, _OFFER_RETRY_MAX_S)
                self._offer_tries[cid] = (failures + 1, time.monotonic() + pause)
        return fetched

    def _fetch_registered(self, info: RoundInfo) -> bool:
        """Copies of the peers' disclosed updates: one read of the new ``UpdateSubmitted`` events a look."""
        r = info.round
        if r not in self._disclosures:
            self._disclosures = {r: (self.deployment.record.block, {})}  # earlier rounds are done with
        start, missing = self._disclosures[r]
        head = self.deployment.chain.block_number
        if start <= head:
            for u in self.deployment.rounds.submitted_updates(r, start, to_block=head):
                if u.submitter != self.address:
                    missing[u.cid] = u.submitter
            self._disclosures[r] = (head + 1, missing)
        fetched = False
        for cid, submitter in list(missing.items()):
            if not self.store.has(cid):
                try:
                    self.member.fetch(cid, submitter)
                    fetched = True
                except StorageError:
                    continue  # not reachable yet; tried again at the next step
            del missing[cid]
        return fetched

    # -- vote
    def _commit(self, info: RoundInfo, entry: RoundEntry) -> bool:
        r = info.round
        if self.deployment.rounds.participation(r, self.address).committed:
            return False
        if entry.ballot is None:
            votes = self.judge.votes(info, entry)
            # written before the commitment is sent: the salt is needed to reveal
            entry.ballot = Ballot.of(votes).to_json()
            self.journal.save()
        ballot = Ballot.from_json(entry.ballot)
        tx = self.deployment.rounds.commit_votes(self.account, r, ballot)
        approvals = sum(ballot.approve)
        self._emit(
            r,
            "committed",
            f"committed {len(ballot.update_ids)} votes ({approvals} approve)",
            gas=tx.gas_used,
            votes={k: dict(v) for k, v in entry.votes.items()},
        )
        return True

    def _reveal(self, info: RoundInfo, entry: RoundEntry) -> bool:
        r = info.round
        part = self.deployment.rounds.participation(r, self.address)
        if not part.committed or part.revealed:
            return False
        if entry.ballot is None:
            raise NodeError(f"round {r}: votes were committed but the journal {self.journal.path} lost the ballot; they cannot be revealed")
        tx = self.deployment.rounds.reveal_votes(self.account, r, Ballot.from_json(entry.ballot))
        self._emit(r, "revealed", "revealed votes", gas=tx.gas_used)
        return True

    def _finalize(self, info: RoundInfo) -> bool:
        if not self.settings.finalize:
            return False
        try:
            result = self.deployment.rounds.finalize(self.account, info.round)
        except reverts.WrongPhase:
            return False  # another member finalized first
        self._emit(
            info.round,
            "finalized",
            f"finalized: accepted updates {list(result.accepted_ids)}",
            gas=result.tx.gas_used,
            accepted=list(result.accepted_ids),
        )
        return True

    # -- aggregate and confirm
    def _confirm(self, info: RoundInfo, entry: RoundEntry) -> bool:
        r = info.round
        part = self.deployment.rounds.participation(r, self.address)
        if not part.revealed or part.confirmed:
            return False
        if entry.aggregate_error:
            return False
        if not info.accepted_ids:
            return False  # a view older than the finalize that opened this window: read the chain again
        if entry.aggregate_cid is None:
            began = time.perf_counter()
            try:
                with self.member.timed("aggregate"):
                    cid, data = self.aggregator.aggregate(info)
            except (AggregationError, StorageError) as exc:
                self._emit(r, "warning", f"cannot aggregate round {r}: {exc}")
                entry.aggregate_error = str(exc)
                self.journal.save()
                return False
            entry.aggregate_cid = cid
            self.journal.save()
            self._emit(
                r,
                "aggregated",
                f"aggregated {len(info.accepted_ids)} updates -> {cid[:20]}...",
                seconds=time.perf_counter() - began,
                bytes=len(data),
                cid=cid,
            )
        try:
            with self.member.timed("confirm"):
                tx = self.deployment.rounds.confirm_aggregate(self.account, r, entry.aggregate_cid)
        except reverts.AggregateMismatch:
            self._emit(r, "warning", f"k members confirmed another aggregate than ours ({entry.aggregate_cid})")
            return False
        except reverts.WrongPhase:
            return False
        self.transport.announce(r, entry.aggregate_cid)
        self._emit(r, "confirmed", f"confirmed aggregate {entry.aggregate_cid[:20]}...", gas=tx.gas_used)
        return True

    # -- after the round
    def _claim(self, info: RoundInfo, entry: RoundEntry) -> bool:
        r = info.round
        if not self.settings.claim or entry.done:
            return False
        if self.deployment.rounds.entitlement(r, self.address) > 0:
            result = self.deployment.rounds.claim(self.account, r)
            self._emit(r, "claimed", f"claimed {format_tokens(result.minted)} tokens", gas=result.tx.gas_used, minted=result.minted)
            return True
        entry.done = True
        self.journal.save()
        if info.phase is Phase.COMPLETED and info.global_cid and info.global_cid != info.base_cid:
            self._emit(r, "adopted", f"global model is now {info.global_cid[:20]}...", cid=info.global_cid)
        return False
