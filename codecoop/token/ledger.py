"""The federation's ledger rebuilt from chain events alone: members, rounds, updates, votes,
decisions, aggregates, reservations, mints, transfers, voting power, governance and releases.

Nothing here trusts a node's own state: :meth:`Ledger.from_deployment` reads every log of the six
contracts once (:mod:`codecoop.chain.logs`) and folds them in chain order. Parameters that a round
or a mint depends on (quorum, rewards, caps, epoch length) are taken from the setter events in
effect at that point, so the ledger holds exactly what the contracts used. Records are filled while
folding and are read-only afterwards.
"""

from __future__ import annotations

import base64
import bisect
from dataclasses import dataclass, field
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak

from codecoop.chain.backend import Chain
from codecoop.chain.cid import cid_from_bytes
from codecoop.chain.clients import MemberStatus, UpdateSubmitted
from codecoop.chain.deployment import Deployment
from codecoop.chain.logs import EventDecoder, LedgerEvent, read_logs
from codecoop.errors import IntegrityError
from codecoop.token.rewards import Decision, RewardRules, Vote

__all__ = [
    "Ledger",
    "LedgerFollower",
    "EpochClock",
    "MemberRecord",
    "UpdateRecord",
    "DecisionRecord",
    "RoundRecord",
    "Confirmation",
    "Reservation",
    "Mint",
    "Transfer",
    "Proposal",
    "ParameterChange",
    "Release",
    "welcome_ref",
    "round_ref",
]

#: Events that change a governed parameter (owner-only setters), per contract.
PARAMETER_EVENTS = frozenset(
    {
        "WindowsSet", "QuorumSet", "ConfirmationsSet", "MaxUpdatesSet", "RewardsSet", "AggregationStrategySet",
        "BaseSet", "EpochLengthSet", "EpochCapSet", "MemberEpochCapSet", "WelcomeGrantSet", "TransfersEnabledSet",
        "MinterSet", "RegistrySet", "AdmissionSet", "CharterSet", "MinImprovementSet",
    }
)  # fmt: skip


def welcome_ref(member: str) -> bytes:
    """The ``ref`` of a welcome grant: keccak256(abi.encode("welcome", member))."""
    return keccak(abi_encode(["string", "address"], ["welcome", member]))


def round_ref(round_id: int) -> bytes:
    """The ``ref`` of a round's reward claims: bytes32(round)."""
    return round_id.to_bytes(32, "big")


def _required_cid(raw: bytes) -> str:
    """:func:`_cid` of a CID the contract refuses to leave empty (an update's, a confirmation's, a release's)."""
    cid = _cid(raw)
    if cid is None:
        raise IntegrityError("an event that always carries a CID carries none: the log is not this deployment's")
    return cid


def _cid(raw: bytes) -> str | None:
    """The base32 string of an on-chain CID (None for empty bytes).

    A valid on-chain CID (CIDv1, raw or dag-pb, sha2-256) is "b" + its bytes in lower-case unpadded
    base32; encoding it here directly is 100x cheaper than parsing it with multiformats, which matters
    for ledgers of thousands of updates. Anything else goes through ``cid_from_bytes``, which refuses it.
    """
    if not raw:
        return None
    raw = bytes(raw)
    if len(raw) == 36 and raw[0] == 0x01 and raw[1] in (0x55, 0x70) and raw[2:4] == b"\x12\x20":
        return "b" + base64.b32encode(raw).decode().lower().rstrip("=")
    return cid_from_bytes(raw)


class EpochClock:
    """``ContributionToken.epochOf`` for any block, from the ``EpochLengthSet`` history."""

    def __init__(self) -> None:
        self._from: list[int] = []
        self._anchors: list[tuple[int, int]] = []  # (first epoch, length)

    def set(self, from_block: int, new_epoch: int, length: int) -> None:
        self._from.append(from_block)
        self._anchors.append((new_epoch, length))

    def epoch_of(self, block: int) -> int:
        i = bisect.bisect_right(self._from, block) - 1
        if i < 0:
            return 0
        first, length = self._anchors[i]
        return first + (block - self._from[i]) // length

    def last_block_of(self, epoch: int) -> int | None:
        """The last block of ``epoch`` (None when it is still open-ended: after the last anchor)."""
        for i in range(len(self._from) - 1, -1, -1):
            first, length = self._anchors[i]
            if epoch >= first:
                end = self._from[i] + (epoch - first + 1) * length - 1
                if i + 1 < len(self._from):
                    end = min(end, self._from[i + 1] - 1)
                return end
        return None


@dataclass
class MemberRecord:
    address: str
    peer_id: str
    joined_block: int
    status: MemberStatus
    #: (block, tx index) of each admission (joining as active, or approval of a pending member).
    admissions: list[tuple[int, int]] = field(default_factory=list)
    status_changes: list[tuple[int, MemberStatus, MemberStatus]] = field(default_factory=list)


#: A registered update, as the chain layer reads its ``UpdateSubmitted`` event.
UpdateRecord = UpdateSubmitted


#: An ``UpdateDecided`` event: the mirrored reward rule's :class:`~codecoop.token.rewards.Decision`, read from the chain.
DecisionRecord = Decision


@dataclass(frozen=True)
class Confirmation:
    member: str
    cid: str
    count: int
    block: int


@dataclass
class RoundRecord:
    round: int
    opened_block: int
    base_cid: str | None
    rules: RewardRules
    strategy: str
    confirmations_needed: int
    updates: list[UpdateRecord] = field(default_factory=list)
    #: Update id -> submitter of every update commitment (``UpdateCommitted``), disclosed or not.
    update_commitments: dict[int, str] = field(default_factory=dict)
    committed: list[str] = field(default_factory=list)
    #: Revealed ballots in reveal order.
    ballots: dict[str, tuple[Vote, ...]] = field(default_factory=dict)
    decisions: list[DecisionRecord] = field(default_factory=list)
    finalized_block: int | None = None
    accepted_mask: int = 0
    epoch: int = 0
    requested: int = 0
    granted: int = 0
    confirmations: list[Confirmation] = field(default_factory=list)
    completed_cid: str | None = None
    completed_block: int | None = None
    failed: bool = False

    def submitters(self) -> list[str]:
        """The submitter of every update id of the round, as ``finalize`` sees them: an update that was
        committed but never disclosed has the zero address (no record on the chain)."""
        disclosed = {u.update_id: u.submitter for u in self.updates}
        count = max([*self.update_commitments, *disclosed], default=-1) + 1
        return [disclosed.get(i, "0x" + "0" * 40) for i in range(count)]

    @property
    def accepted(self) -> list[UpdateRecord]:
        return [u for u in self.updates if self.accepted_mask >> u.update_id & 1]

    @property
    def finalized(self) -> bool:
        return self.finalized_block is not None


@dataclass(frozen=True)
class Reservation:
    epoch: int
    requested: int
    granted: int
    block: int
    tx_index: int
    epoch_cap: int


@dataclass(frozen=True)
class Mint:
    """An ``Allocated`` event (with its ``AllocationCut`` when the member cap cut it)."""

    member: str
    epoch: int
    ref: bytes
    minted: int
    requested: int
    block: int
    tx_index: int
    member_cap: int

    def round_id(self) -> int | None:
        """The round this mint claims, when its ref has a round's shape (high bytes zero)."""
        value = int.from_bytes(self.ref, "big")
        return value if value < 2**64 else None


@dataclass(frozen=True)
class Transfer:
    sender: str
    to: str
    value: int
    block: int
    tx_index: int


@dataclass
class Proposal:
    id: int
    proposer: str
    targets: tuple[str, ...]
    calldatas: tuple[bytes, ...]
    description: str
    vote_start: int
    vote_end: int
    block: int
    votes: dict[str, tuple[int, int]] = field(default_factory=dict)  # voter -> (support, weight)
    reasons: dict[str, str] = field(default_factory=dict)  # voter -> the reason given with the vote (attacker-controlled text)
    queued_block: int | None = None
    executed_block: int | None = None
    canceled_block: int | None = None


@dataclass(frozen=True)
class ParameterChange:
    contract: str
    name: str
    args: dict[str, Any]
    block: int
    #: Whether the timelock executed it (a ``CallExecuted`` in the same transaction).
    via_timelock: bool
    #: Whether the contract's owner was still its deployer (wiring before the hand-over to the timelock).
    at_deployment: bool


@dataclass(frozen=True)
class Release:
    id: int
    tag: str
    cid: str
    parent: int
    metrics_cid: str | None
    base_model_id: str
    block: int
    tx_index: int


@dataclass
class Ledger:
    """Everything a federation did, as its contracts recorded it."""

    addresses: dict[str, str]
    head: int
    token_symbol: str
    members: dict[str, MemberRecord] = field(default_factory=dict)
    rounds: dict[int, RoundRecord] = field(default_factory=dict)
    reservations: list[Reservation] = field(default_factory=list)
    mints: list[Mint] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    #: (block, delegate, votes after the change), in chain order.
    vote_changes: list[tuple[int, str, int]] = field(default_factory=list)
    #: Each holder's current delegate (``DelegateChanged``); a holder who never delegated is absent.
    delegates: dict[str, str] = field(default_factory=dict)
    proposals: dict[int, Proposal] = field(default_factory=dict)
    changes: list[ParameterChange] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    clock: EpochClock = field(default_factory=EpochClock)
    #: (block, tx index) of every transaction in which the timelock executed a call.
    timelock_calls: set[tuple[int, int]] = field(default_factory=set)
    total_supply: int = 0
    events: int = 0

    # ------------------------------------------------------------------ building
    @classmethod
    def from_deployment(cls, deployment: Deployment, to_block: int | None = None) -> Ledger:
        """Rebuild the ledger of ``deployment`` from its events up to ``to_block`` (default: head)."""
        follower = LedgerFollower(deployment)
        follower.advance(to_block)
        return follower.ledger

    # ------------------------------------------------------------------ views
    def epochs(self) -> range:
        """Every epoch from the deployment to the head block."""
        return range(0, self.clock.epoch_of(self.head) + 1)

    def votes_at(self, block: int) -> dict[str, int]:
        """Voting power of every delegate at the end of ``block``."""
        power: dict[str, int] = {}
        for b, delegate, votes in self.vote_changes:
            if b > block:
                break
            power[delegate] = votes
        return {d: v for d, v in power.items() if v}

    def balances_at(self, block: int) -> dict[str, int]:
        """Token balance of every holder at the end of ``block``."""
        balances: dict[str, int] = {}
        for t in self.transfers:
            if t.block > block:
                break
            if t.sender != _ZERO:
                balances[t.sender] = balances.get(t.sender, 0) - t.value
            if t.to != _ZERO:
                balances[t.to] = balances.get(t.to, 0) + t.value
        return {a: v for a, v in balances.items() if v}

    def round_of_cid(self, cid: str) -> RoundRecord | None:
        """The round whose confirmed aggregate has ``cid`` (the latest, if several)."""
        found = None
        for r in self.rounds.values():
            if r.completed_cid == cid and r.accepted_mask:
                found = r
        return found


_ZERO = "0x" + "00" * 20


class LedgerFollower:
    """A :class:`Ledger` kept up to date block by block: :meth:`advance` folds only the new logs.

    ``from_deployment`` is one ``advance`` from the deployment block; a dashboard or a long audit
    calls ``advance`` as blocks arrive, so following a chain costs what its new blocks hold, not a
    rebuild. The ledger object stays the same and is changed in place: a reader on another thread
    holds ``lock`` while it reads.
    """

    def __init__(self, deployment: Deployment):
        import threading

        self.deployment = deployment
        self._names = {address: name for name, address in deployment.addresses.items()}
        self._decoder = EventDecoder({a: (n, deployment.record.abis[n]) for a, n in self._names.items()})
        self.ledger = Ledger(addresses=deployment.addresses, head=deployment.record.block - 1, token_symbol=deployment.params.token_symbol)
        self._folder = _Folder(self.ledger)
        self.lock = threading.RLock()

    def advance(self, to_block: int | None = None) -> list[LedgerEvent]:
        """Fold the events of the blocks after the ledger's head up to ``to_block`` (default: the chain's head); return them."""
        chain: Chain = self.deployment.chain
        head = chain.block_number if to_block is None else to_block
        if head <= self.ledger.head:
            return []
        logs = read_logs(chain, self._names, self.ledger.head + 1, head)
        events = [e for e in map(self._decoder.decode, logs) if e is not None]
        supply = chain.call(self.deployment.token.contract.functions.totalSupply(), block=head)
        with self.lock:
            for event in events:
                self.ledger.events += 1
                self._folder.apply(event)
            self._folder.finish()
            self.ledger.head = head
            self.ledger.total_supply = supply
        return events


class _Folder:
    """Applies events in chain order, keeping the parameters currently in effect."""

    def __init__(self, ledger: Ledger):
        self.l = ledger
        self.quorum_bps = 0
        self.rewards = (0, 0, 1)  # submit, voter, bound
        self.confirmations = 1
        self.strategy = ""
        self.epoch_cap = 0
        self.member_cap = 0
        self.cut: dict[tuple[int, int], int] = {}  # (block, tx) -> requested of the next Allocated
        self.owned_by_timelock: set[str] = set()
        self.pending_changes: list[tuple[LedgerEvent, bool]] = []
        self.timelock = ledger.addresses.get("CoopTimelock", "")

    def apply(self, e: LedgerEvent) -> None:
        handler = getattr(self, f"_{e.name}", None)
        if e.name in PARAMETER_EVENTS:
            self.pending_changes.append((e, e.contract not in self.owned_by_timelock))
        if handler is not None:
            handler(e)

    def finish(self) -> None:
        # the timelock emits CallExecuted after the call it made, so ties are resolved at the end
        self.l.changes = [
            ParameterChange(e.contract, e.name, dict(e.args), e.block, (e.block, e.tx_index) in self.l.timelock_calls, deploying)
            for e, deploying in self.pending_changes
        ]

    # -- members
    def _Joined(self, e: LedgerEvent) -> None:
        a = e.args
        status = MemberStatus(a["status"])
        m = MemberRecord(a["member"], a["peerId"], e.block, status)
        if status is MemberStatus.ACTIVE:
            m.admissions.append((e.block, e.tx_index))
        self.l.members[a["member"]] = m

    def _StatusChanged(self, e: LedgerEvent) -> None:
        a = e.args
        m = self.l.members.get(a["member"])
        if m is None:
            return
        before, after = MemberStatus(a["from"]), MemberStatus(a["to"])
        m.status = after
        m.status_changes.append((e.block, before, after))
        if before is MemberStatus.PENDING and after is MemberStatus.ACTIVE:
            m.admissions.append((e.block, e.tx_index))

    def _OwnershipTransferred(self, e: LedgerEvent) -> None:
        if e.args["newOwner"] == self.timelock:
            self.owned_by_timelock.add(e.contract)

    # -- parameters
    def _QuorumSet(self, e: LedgerEvent) -> None:
        self.quorum_bps = e.args["quorumBps"]

    def _RewardsSet(self, e: LedgerEvent) -> None:
        self.rewards = (e.args["submitReward"], e.args["voterReward"], e.args["rewardBound"])

    def _ConfirmationsSet(self, e: LedgerEvent) -> None:
        self.confirmations = e.args["confirmations"]

    def _AggregationStrategySet(self, e: LedgerEvent) -> None:
        self.strategy = e.args["strategy"]

    def _EpochCapSet(self, e: LedgerEvent) -> None:
        self.epoch_cap = e.args["cap"]

    def _MemberEpochCapSet(self, e: LedgerEvent) -> None:
        self.member_cap = e.args["cap"]

    def _EpochLengthSet(self, e: LedgerEvent) -> None:
        self.l.clock.set(e.args["fromBlock"], e.args["newEpoch"], e.args["epochLength"])

    # -- rounds
    def _RoundOpened(self, e: LedgerEvent) -> None:
        submit, voter, bound = self.rewards
        r = e.args["round"]
        self.l.rounds[r] = RoundRecord(
            round=r,
            opened_block=e.block,
            base_cid=_cid(e.args["baseCid"]),
            rules=RewardRules(self.quorum_bps, bound, submit, voter),
            strategy=self.strategy,
            confirmations_needed=self.confirmations,
        )

    def _UpdateCommitted(self, e: LedgerEvent) -> None:
        self.l.rounds[e.args["round"]].update_commitments[e.args["updateId"]] = e.args["submitter"]

    def _UpdateSubmitted(self, e: LedgerEvent) -> None:
        a = e.args
        self.l.rounds[a["round"]].updates.append(
            UpdateRecord(a["round"], a["updateId"], a["submitter"], _required_cid(a["cid"]), a["nSamples"], _cid(a["metaCid"]), e.block)
        )

    def _VotesCommitted(self, e: LedgerEvent) -> None:
        self.l.rounds[e.args["round"]].committed.append(e.args["voter"])

    def _VotesRevealed(self, e: LedgerEvent) -> None:
        a = e.args
        votes = tuple(Vote(int(u), bool(ok), int(d)) for u, ok, d in zip(a["updateIds"], a["approve"], a["lossDelta"]))
        self.l.rounds[a["round"]].ballots[a["voter"]] = votes

    def _UpdateDecided(self, e: LedgerEvent) -> None:
        a = e.args
        self.l.rounds[a["round"]].decisions.append(
            DecisionRecord(a["updateId"], a["accepted"], a["approvals"], a["rejections"], a["score"])
        )

    def _RoundFinalized(self, e: LedgerEvent) -> None:
        a = e.args
        r = self.l.rounds[a["round"]]
        r.finalized_block = e.block
        r.accepted_mask, r.epoch, r.requested, r.granted = a["acceptedMask"], a["epoch"], a["requested"], a["granted"]

    def _AggregateConfirmed(self, e: LedgerEvent) -> None:
        a = e.args
        self.l.rounds[a["round"]].confirmations.append(Confirmation(a["member"], _required_cid(a["cid"]), a["count"], e.block))

    def _RoundCompleted(self, e: LedgerEvent) -> None:
        r = self.l.rounds[e.args["round"]]
        r.completed_cid, r.completed_block = _cid(e.args["globalCid"]), e.block

    def _RoundFailed(self, e: LedgerEvent) -> None:
        self.l.rounds[e.args["round"]].failed = True

    # -- token
    def _Reserved(self, e: LedgerEvent) -> None:
        a = e.args
        self.l.reservations.append(Reservation(a["epoch"], a["requested"], a["granted"], e.block, e.tx_index, self.epoch_cap))

    def _AllocationCut(self, e: LedgerEvent) -> None:
        # emitted after its Allocated: patch the mint just recorded
        last = self.l.mints[-1]
        if (last.block, last.tx_index, last.member) == (e.block, e.tx_index, e.args["member"]):
            self.l.mints[-1] = Mint(
                last.member, last.epoch, last.ref, last.minted, e.args["requested"], last.block, last.tx_index, last.member_cap
            )

    def _Allocated(self, e: LedgerEvent) -> None:
        a = e.args
        self.l.mints.append(Mint(a["member"], a["epoch"], bytes(a["ref"]), a["minted"], a["minted"], e.block, e.tx_index, self.member_cap))

    def _Transfer(self, e: LedgerEvent) -> None:
        a = e.args
        self.l.transfers.append(Transfer(a["from"], a["to"], a["value"], e.block, e.tx_index))

    def _DelegateChanged(self, e: LedgerEvent) -> None:
        self.l.delegates[e.args["delegator"]] = e.args["toDelegate"]

    def _DelegateVotesChanged(self, e: LedgerEvent) -> None:
        self.l.vote_changes.append((e.block, e.args["delegate"], e.args["newVotes"]))

    # -- governance and releases
    def _ProposalCreated(self, e: LedgerEvent) -> None:
        a = e.args
        self.l.proposals[a["proposalId"]] = Proposal(
            a["proposalId"],
            a["proposer"],
            tuple(a["targets"]),
            tuple(bytes(c) for c in a["calldatas"]),
            a["description"],
            a["voteStart"],
            a["voteEnd"],
            e.block,
        )

    def _VoteCast(self, e: LedgerEvent) -> None:
        a = e.args
        p = self.l.proposals.get(a["proposalId"])
        if p is not None:
            p.votes[a["voter"]] = (a["support"], a["weight"])
            if a.get("reason"):
                p.reasons[a["voter"]] = a["reason"]

    def _ProposalQueued(self, e: LedgerEvent) -> None:
        self.l.proposals[e.args["proposalId"]].queued_block = e.block

    def _ProposalExecuted(self, e: LedgerEvent) -> None:
        self.l.proposals[e.args["proposalId"]].executed_block = e.block

    def _ProposalCanceled(self, e: LedgerEvent) -> None:
        self.l.proposals[e.args["proposalId"]].canceled_block = e.block

    def _CallExecuted(self, e: LedgerEvent) -> None:
        self.l.timelock_calls.add((e.block, e.tx_index))

    def _VersionReleased(self, e: LedgerEvent) -> None:
        a = e.args
        self.l.releases.append(
            Release(a["id"], a["tag"], _required_cid(a["cid"]), a["parent"], _cid(a["metricsCid"]), a["baseModelId"], e.block, e.tx_index)
        )
