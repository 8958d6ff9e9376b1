"""Typed clients, one per contract: methods take and return plain dataclasses, events come decoded.

Writes take the signing ``LocalAccount`` first; reads need none. CIDs are strings on this side and
binary CIDv1 on the chain (see :mod:`codecoop.chain.cid`).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.logs import DISCARD

from codecoop.chain.backend import Chain, TxResult
from codecoop.chain.cid import cid_from_bytes, cid_to_bytes

__all__ = [
    "Event",
    "Phase",
    "MemberStatus",
    "ProposalState",
    "Ballot",
    "UpdateDisclosure",
    "RoundInfo",
    "UpdateInfo",
    "Participation",
    "Submitted",
    "FinalizeResult",
    "ClaimResult",
    "MemberInfo",
    "VersionInfo",
    "CharterInfo",
    "RoundParams",
    "UpdateSubmitted",
    "ContractClient",
    "TokenClient",
    "MembersClient",
    "RoundsClient",
    "ModelsClient",
    "GovernorClient",
    "TimelockClient",
]


class Phase(enum.IntEnum):
    NONE = 0
    SUBMIT = 1  # members commit to their updates (a hash: nothing to copy yet)
    DISCLOSE = 2  # members disclose the committed updates' CIDs
    COMMIT = 3
    REVEAL = 4
    FINALIZABLE = 5
    CONFIRM = 6
    COMPLETED = 7
    FAILED = 8


class MemberStatus(enum.IntEnum):
    NONE = 0
    PENDING = 1
    ACTIVE = 2
    SUSPENDED = 3
    REMOVED = 4
    LEFT = 5


class ProposalState(enum.IntEnum):
    PENDING = 0
    ACTIVE = 1
    CANCELED = 2
    DEFEATED = 3
    SUCCEEDED = 4
    QUEUED = 5
    EXPIRED = 6
    EXECUTED = 7


def _opt_cid(raw: bytes) -> str | None:
    return cid_from_bytes(raw) if raw else None


def _cid_of(codec: int, digest: bytes) -> str | None:
    """The CID string of a codec byte and sha2-256 digest as stored on-chain (None for codec 0)."""
    return cid_from_bytes(bytes([0x01, codec, 0x12, 0x20]) + bytes(digest)) if codec else None


def _ids(mask: int) -> tuple[int, ...]:
    return tuple(i for i in range(mask.bit_length()) if mask >> i & 1)


def _by_name(params: Sequence[Mapping[str, Any]], values: Sequence[Any]) -> dict[str, Any]:
    """ABI values keyed by their ABI names, structs (also in arrays) as nested dicts."""
    if len(params) != len(values):
        raise ValueError(f"{len(values)} values for the {len(params)} ABI parameters {[p['name'] for p in params]}")
    return {p["name"]: _by_name_value(p, v) for p, v in zip(params, values)}


def _by_name_value(param: Mapping[str, Any], value: Any) -> Any:
    if param["type"] == "tuple":
        return _by_name(param["components"], value)
    if param["type"].startswith("tuple["):
        return [_by_name(param["components"], v) for v in value]
    return value


def _snake(name: str) -> str:
    """``submitWindow`` as ``submit_window``."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


@dataclass(frozen=True)
class Event:
    """A decoded contract event."""

    name: str
    args: Mapping[str, Any]
    block: int
    tx_hash: str
    log_index: int


@dataclass(frozen=True)
class Ballot:
    """All of one member's votes in a round: committed as one hash, revealed in one transaction.

    ``loss_delta`` is base loss minus loss with the update on the voter's held-out data, in micro-nats.
    """

    update_ids: tuple[int, ...]
    approve: tuple[bool, ...]
    loss_delta: tuple[int, ...]
    salt: bytes = field(default_factory=lambda: os.urandom(32))

    @classmethod
    def of(cls, votes: Mapping[int, tuple[bool, int]], salt: bytes | None = None) -> Ballot:
        """A ballot from ``{update_id: (approve, loss_delta)}``, ids sorted, with a random salt unless given."""
        ids = tuple(sorted(votes))
        return cls(
            update_ids=ids,
            approve=tuple(bool(votes[i][0]) for i in ids),
            loss_delta=tuple(int(votes[i][1]) for i in ids),
            salt=salt if salt is not None else os.urandom(32),
        )

    def commitment(self, round_id: int, voter: str) -> bytes:
        """keccak256(abi.encode(round, voter, updateIds, approve, lossDelta, salt)), as RoundManager computes it."""
        return keccak(
            abi_encode(
                ["uint256", "address", "uint16[]", "bool[]", "int64[]", "bytes32"],
                [round_id, voter, list(self.update_ids), list(self.approve), list(self.loss_delta), self.salt],
            )
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "update_ids": list(self.update_ids),
            "approve": list(self.approve),
            "loss_delta": list(self.loss_delta),
            "salt": self.salt.hex(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Ballot:
        return cls(
            update_ids=tuple(data["update_ids"]),
            approve=tuple(data["approve"]),
            loss_delta=tuple(data["loss_delta"]),
            salt=bytes.fromhex(data["salt"]),
        )


@dataclass(frozen=True)
class UpdateDisclosure:
    """What a member commits to in a round's submit window and discloses in its disclose window:
    the update's CID, sample count and metadata CID, and the commitment's salt (kept secret until then)."""

    round: int
    cid: str
    n_samples: int
    meta_cid: str | None = None
    salt: bytes = field(default_factory=lambda: os.urandom(32))

    def commitment(self, submitter: str) -> bytes:
        """keccak256(abi.encode(round, submitter, cid, nSamples, metaCid, salt)), as RoundManager computes it."""
        return keccak(
            abi_encode(
                ["uint256", "address", "bytes", "uint256", "bytes", "bytes32"],
                [self.round, submitter, cid_to_bytes(self.cid), self.n_samples, _meta_bytes(self.meta_cid), self.salt],
            )
        )

    def to_json(self) -> dict[str, Any]:
        return {"round": self.round, "cid": self.cid, "n_samples": self.n_samples, "meta_cid": self.meta_cid, "salt": self.salt.hex()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UpdateDisclosure:
        return cls(data["round"], data["cid"], data["n_samples"], data.get("meta_cid"), bytes.fromhex(data["salt"]))


def _meta_bytes(meta_cid: str | None) -> bytes:
    return cid_to_bytes(meta_cid) if meta_cid else b""


@dataclass(frozen=True)
class RoundParams:
    submit_window: int
    disclose_window: int
    commit_window: int
    reveal_window: int
    confirm_window: int
    quorum_bps: int
    confirmations: int
    max_updates: int
    reward_bound: int
    submit_reward: int
    voter_reward: int


@dataclass(frozen=True)
class RoundInfo:
    round: int
    phase: Phase
    submit_end: int
    disclose_end: int
    commit_end: int
    reveal_end: int
    confirm_end: int
    accepted_ids: tuple[int, ...]
    update_count: int
    revealed_count: int
    epoch: int
    confirmations: int
    quorum_bps: int
    max_updates: int
    reward_bound: int
    submit_reward: int
    voter_reward: int
    requested: int
    granted: int
    base_cid: str | None
    global_cid: str | None


@dataclass(frozen=True)
class UpdateInfo:
    """A disclosed update (committed but undisclosed ones are not listed: they have no CID)."""

    round: int
    update_id: int
    submitter: str
    cid: str
    approvals: int
    rejections: int
    approved_delta_sum: int


@dataclass(frozen=True)
class UpdateSubmitted:
    """An ``UpdateSubmitted`` event: a member registered its update (with its training sample count)."""

    round: int
    update_id: int
    submitter: str
    cid: str
    n_samples: int
    meta_cid: str | None
    block: int


@dataclass(frozen=True)
class Participation:
    voted_ids: tuple[int, ...]
    approved_ids: tuple[int, ...]
    own_update: int | None
    committed: bool
    revealed: bool
    confirmed: bool
    claimed: bool


@dataclass(frozen=True)
class Submitted:
    round: int
    update_id: int
    tx: TxResult


@dataclass(frozen=True)
class FinalizeResult:
    round: int
    accepted_ids: tuple[int, ...]
    epoch: int
    requested: int
    granted: int
    tx: TxResult


@dataclass(frozen=True)
class ClaimResult:
    round: int
    entitlement: int
    amount: int
    minted: int
    tx: TxResult


@dataclass(frozen=True)
class MemberInfo:
    address: str
    status: MemberStatus
    peer_id: str
    multiaddrs: tuple[str, ...]
    meta_cid: str | None


@dataclass(frozen=True)
class VersionInfo:
    id: int
    tag: str
    cid: str
    parent: int
    metrics_cid: str | None
    base_model_id: str


@dataclass(frozen=True)
class CharterInfo:
    cid: str
    base_model_id: str
    base_weights_hash: str


class ContractClient:
    """Common plumbing: the bound web3 contract, sending, calling and event reads."""

    name = ""

    def __init__(self, chain: Chain, address: str, abi: list):
        self.chain = chain
        self.address = address
        self.contract = chain.w3.eth.contract(address=address, abi=abi)
        self._outputs = {item["name"]: item["outputs"] for item in abi if item.get("type") == "function"}

    def function(self, fn: str, *args: Any) -> Any:
        """The bound contract function ``fn(*args)``: what :meth:`Chain.transact` signs, or what
        :meth:`Chain.request_for` hands to a browser wallet."""
        return self.contract.functions[fn](*args)

    def _send(self, account: LocalAccount, fn: str, *args: Any, gas: int | None = None) -> TxResult:
        return self.chain.transact(self.function(fn, *args), account, gas=gas)

    def _call(self, fn: str, *args: Any) -> Any:
        return self.chain.call(self.function(fn, *args))

    def _read(self, fn: str, *args: Any) -> dict[str, Any]:
        """A view's result keyed by ABI name: a lone struct by its fields, several return values by their names."""
        outputs = self._outputs[fn]
        result = self._call(fn, *args)
        if len(outputs) == 1:
            value = _by_name_value(outputs[0], result)
            return value if isinstance(value, dict) else {outputs[0]["name"]: value}
        return _by_name(outputs, result)

    def encode(self, fn: str, *args: Any) -> bytes:
        """Calldata for ``fn(*args)`` (for governance proposals)."""
        return bytes.fromhex(self.contract.encode_abi(fn, args=list(args))[2:])

    def events(self, name: str, from_block: int = 0, to_block: int | str = "latest", **filters: Any) -> list[Event]:
        """Every ``name`` event in the block range, oldest first, optionally filtered on indexed arguments."""
        logs = self.contract.events[name].get_logs(from_block=from_block, to_block=to_block, argument_filters=filters or None)
        return [_event(log) for log in logs]

    def receipt_events(self, tx: TxResult, name: str) -> list[Event]:
        """The ``name`` events this contract emitted in one transaction."""
        return [_event(log) for log in self.contract.events[name]().process_receipt(tx.receipt, errors=DISCARD)]


def _event(log: Any) -> Event:
    return Event(
        name=log["event"],
        args=dict(log["args"]),
        block=log["blockNumber"],
        tx_hash=log["transactionHash"].hex(),
        log_index=log["logIndex"],
    )


class TokenClient(ContractClient):
    name = "ContributionToken"

    def balance_of(self, account: str) -> int:
        return self._call("balanceOf", account)

    def total_supply(self) -> int:
        return self._call("totalSupply")

    def votes(self, account: str) -> int:
        return self._call("getVotes", account)

    def delegates(self, account: str) -> str:
        return self._call("delegates", account)

    def delegate(self, account: LocalAccount, to: str | None = None) -> TxResult:
        return self._send(account, "delegate", to or account.address)

    def transfer(self, account: LocalAccount, to: str, amount: int) -> TxResult:
        return self._send(account, "transfer", to, amount)

    def current_epoch(self) -> int:
        return self._call("currentEpoch")

    def current_epoch_start(self) -> int:
        return self._call("currentEpochStart")

    def epoch_of(self, block: int) -> int:
        return self._call("epochOf", block)

    def reserved_in(self, epoch: int) -> int:
        """Tokens reserved from an epoch's cap."""
        return self._call("reservedIn", epoch)

    def member_minted(self, epoch: int, member: str) -> int:
        return self._call("memberMinted", epoch, member)

    def caps(self) -> tuple[int, int]:
        """(epochCap, memberEpochCap)."""
        return self._call("epochCap"), self._call("memberEpochCap")


class MembersClient(ContractClient):
    name = "MemberRegistry"

    def join(self, account: LocalAccount, peer_id: str, multiaddrs: Sequence[str] = (), meta_cid: str | None = None) -> TxResult:
        return self._send(account, "join", peer_id, list(multiaddrs), cid_to_bytes(meta_cid) if meta_cid else b"")

    def leave(self, account: LocalAccount) -> TxResult:
        """Leave the federation for good (earned rewards stay claimable; the account cannot join again)."""
        return self._send(account, "leave")

    def update_endpoint(self, account: LocalAccount, peer_id: str, multiaddrs: Sequence[str]) -> TxResult:
        return self._send(account, "updateEndpoint", peer_id, list(multiaddrs))

    def status(self, account: str) -> MemberStatus:
        return MemberStatus(self._call("statusOf", account))

    def is_active(self, account: str) -> bool:
        return self._call("isActive", account)

    def member(self, account: str) -> MemberInfo:
        m = self._read("memberOf", account)
        return MemberInfo(account, MemberStatus(m["status"]), m["peerId"], tuple(m["multiaddrs"]), _opt_cid(m["metaCid"]))

    def all_members(self) -> list[str]:
        return list(self._call("allMembers"))

    def active_members(self) -> list[MemberInfo]:
        """Active members with their libp2p endpoints (peer discovery)."""
        members = (self.member(a) for a in self.all_members())
        return [m for m in members if m.status is MemberStatus.ACTIVE]

    def active_count(self) -> int:
        return self._call("activeCount")


_ALLOCATED_ABI = [
    {
        "anonymous": False,
        "name": "Allocated",
        "type": "event",
        "inputs": [
            {"indexed": True, "name": "member", "type": "address"},
            {"indexed": True, "name": "epoch", "type": "uint256"},
            {"indexed": False, "name": "ref", "type": "bytes32"},
            {"indexed": False, "name": "minted", "type": "uint256"},
        ],
    }
]


class RoundsClient(ContractClient):
    name = "RoundManager"

    # -- writes
    def open_round(self, account: LocalAccount) -> int:
        tx = self._send(account, "openRound")
        return self.receipt_events(tx, "RoundOpened")[0].args["round"]

    def commit_update(self, account: LocalAccount, disclosure: UpdateDisclosure) -> Submitted:
        """Commit to ``disclosure`` in its round's submit window (only its hash goes on the chain); the
        update's id is the commitment order. Keep ``disclosure`` (its salt) to disclose it later."""
        tx = self._send(account, "commitUpdate", disclosure.round, disclosure.commitment(account.address))
        return Submitted(disclosure.round, self.receipt_events(tx, "UpdateCommitted")[0].args["updateId"], tx)

    def submit_update(self, account: LocalAccount, disclosure: UpdateDisclosure) -> Submitted:
        """Disclose the update committed with ``disclosure``, in the round's disclose window."""
        d = disclosure
        tx = self._send(account, "submitUpdate", d.round, cid_to_bytes(d.cid), d.n_samples, _meta_bytes(d.meta_cid), d.salt)
        return Submitted(d.round, self.receipt_events(tx, "UpdateSubmitted")[0].args["updateId"], tx)

    def commit_votes(self, account: LocalAccount, round_id: int, ballot: Ballot) -> TxResult:
        return self._send(account, "commitVotes", round_id, ballot.commitment(round_id, account.address))

    def reveal_votes(self, account: LocalAccount, round_id: int, ballot: Ballot) -> TxResult:
        return self._send(
            account,
            "revealVotes",
            round_id,
            list(ballot.update_ids),
            list(ballot.approve),
            list(ballot.loss_delta),
            ballot.salt,
        )

    def finalize(self, account: LocalAccount, round_id: int) -> FinalizeResult:
        tx = self._send(account, "finalize", round_id)
        args = self.receipt_events(tx, "RoundFinalized")[0].args
        return FinalizeResult(round_id, _ids(args["acceptedMask"]), args["epoch"], args["requested"], args["granted"], tx)

    def confirm_aggregate(self, account: LocalAccount, round_id: int, cid: str) -> TxResult:
        return self._send(account, "confirmAggregate", round_id, cid_to_bytes(cid))

    def claim(self, account: LocalAccount, round_id: int) -> ClaimResult:
        owed = self.entitlement(round_id, account.address)
        r = self.round(round_id)
        amount = owed * r.granted // r.requested if r.granted < r.requested else owed
        tx = self._send(account, "claim", round_id)
        token = self.chain.w3.eth.contract(address=self._call("token"), abi=_ALLOCATED_ABI)
        minted = token.events.Allocated().process_receipt(tx.receipt, errors=DISCARD)[0]["args"]["minted"]
        return ClaimResult(round_id, owed, amount, minted, tx)

    # -- reads
    def current_round(self) -> int:
        return self._call("currentRound")

    def phase(self, round_id: int) -> Phase:
        return Phase(self._call("phase", round_id))

    def round(self, round_id: int) -> RoundInfo:
        # The phase is read first: the struct, read a moment later, is then at least as new as the phase. The
        # other order let a finalize land between the reads, giving phase CONFIRM with no accepted update (seen in
        # CI: the node recorded "no updates to aggregate" and never confirmed).
        phase = self.phase(round_id)
        r = self._read("getRound", round_id)
        return RoundInfo(
            round=round_id,
            phase=phase,
            submit_end=r["submitEnd"],
            disclose_end=r["discloseEnd"],
            commit_end=r["commitEnd"],
            reveal_end=r["revealEnd"],
            confirm_end=r["confirmEnd"],
            accepted_ids=_ids(r["acceptedMask"]),
            update_count=r["updateCount"],
            revealed_count=r["revealedCount"],
            epoch=r["epoch"],
            confirmations=r["confirmations"],
            quorum_bps=r["quorumBps"],
            max_updates=r["maxUpdates"],
            reward_bound=r["rewardBound"],
            submit_reward=r["submitReward"],
            voter_reward=r["voterReward"],
            requested=r["requested"],
            granted=r["granted"],
            base_cid=_cid_of(r["baseCodec"], r["baseDigest"]),
            global_cid=_cid_of(r["globalCodec"], r["globalDigest"]),
        )

    def update(self, round_id: int, update_id: int) -> UpdateInfo | None:
        """The update ``update_id`` of the round; ``None`` while it is committed but not disclosed."""
        got = self._read("getUpdate", round_id, update_id)
        u = got["update"]
        if not got["cid"]:
            return None
        return UpdateInfo(
            round_id, update_id, u["submitter"], cid_from_bytes(got["cid"]), u["approvals"], u["rejections"], u["approvedDeltaSum"]
        )

    def updates(self, round_id: int) -> list[UpdateInfo]:
        """The round's disclosed updates, in commitment order (ids may skip undisclosed ones)."""
        found = (self.update(round_id, i) for i in range(self._read("getRound", round_id)["updateCount"]))
        return [u for u in found if u is not None]

    def submitted_updates(
        self, round_id: int, from_block: int = 0, *, submitter: str | None = None, to_block: int | str = "latest"
    ) -> list[UpdateSubmitted]:
        """The round's ``UpdateSubmitted`` events from ``from_block`` (a deployment's block) to ``to_block``, oldest first."""
        filters = {"round": round_id} if submitter is None else {"round": round_id, "submitter": submitter}
        return [
            UpdateSubmitted(
                round=e.args["round"],
                update_id=e.args["updateId"],
                submitter=e.args["submitter"],
                cid=cid_from_bytes(e.args["cid"]),
                n_samples=e.args["nSamples"],
                meta_cid=_opt_cid(e.args["metaCid"]),
                block=e.block,
            )
            for e in self.events("UpdateSubmitted", from_block, to_block, **filters)
        ]

    def sample_counts(self, round_id: int, from_block: int = 0) -> dict[int, int]:
        """``{update id: training samples}`` of the round's updates, as their submitters declared them."""
        return {u.update_id: u.n_samples for u in self.submitted_updates(round_id, from_block)}

    def committed_voters(self, round_id: int, from_block: int = 0) -> list[str]:
        """The members that committed a ballot in the round, in commit order."""
        return [e.args["voter"] for e in self.events("VotesCommitted", from_block, round=round_id)]

    def participation(self, round_id: int, member: str) -> Participation:
        p = self._read("participationOf", round_id, member)
        own = p["ownUpdate"]
        committed = self._call("commitmentOf", round_id, member) != b"\x00" * 32
        return Participation(
            _ids(p["voted"]), _ids(p["approved"]), own - 1 if own else None, committed, p["revealed"], p["confirmed"], p["claimed"]
        )

    def claim_owed(self, account: LocalAccount, round_ids: Iterable[int]) -> list[tuple[int, ClaimResult]]:
        """Claim every round of ``round_ids`` in which ``account`` is owed something; the claims sent, in order."""
        return [(r, self.claim(account, r)) for r in round_ids if self.entitlement(r, account.address) > 0]

    def entitlement(self, round_id: int, member: str) -> int:
        return self._call("entitlement", round_id, member)

    def current_base(self) -> str | None:
        return _opt_cid(self._call("currentBase"))

    def params(self) -> RoundParams:
        return RoundParams(**{_snake(k): v for k, v in self._read("params").items()})

    def aggregation_strategy(self) -> str:
        return self._call("aggregationStrategy")


class ModelsClient(ContractClient):
    name = "ModelRegistry"

    def charter(self) -> CharterInfo:
        c = self._read("charter")
        return CharterInfo(cid_from_bytes(c["cid"]), c["baseModelId"], "0x" + bytes(c["baseWeightsHash"]).hex())

    def version_count(self) -> int:
        return self._call("versionCount")

    def version(self, version_id: int) -> VersionInfo:
        return _version(version_id, self._read("version", version_id))

    def version_by_tag(self, tag: str) -> VersionInfo:
        found = self._read("versionByTag", tag)
        return _version(found["id"], found["v"])

    def versions(self) -> list[VersionInfo]:
        return [self.version(i) for i in range(1, self.version_count() + 1)]

    def min_improvement_bps(self) -> int:
        return self._call("minImprovementBps")


def _version(version_id: int, v: Mapping[str, Any]) -> VersionInfo:
    return VersionInfo(version_id, v["tag"], cid_from_bytes(v["cid"]), v["parent"], _opt_cid(v["metricsCid"]), v["baseModelId"])


class TimelockClient(ContractClient):
    name = "CoopTimelock"

    def min_delay(self) -> int:
        return self._call("getMinDelay")

    def has_role(self, role: str, account: str) -> bool:
        return self._call("hasRole", keccak(text=role) if role != "DEFAULT_ADMIN_ROLE" else b"\x00" * 32, account)


class GovernorClient(ContractClient):
    """The OpenZeppelin Governor: propose, vote, queue, execute (proposal ids as ints)."""

    name = "CoopGovernor"

    def propose(self, account: LocalAccount, calls: Sequence[tuple[str, bytes]], description: str) -> int:
        return self.proposal_created(self.chain.transact(self.propose_fn(calls, description), account))

    def propose_fn(self, calls: Sequence[tuple[str, bytes]], description: str) -> Any:
        return self.function("propose", [t for t, _ in calls], [0] * len(calls), [c for _, c in calls], description)

    def proposal_created(self, tx: TxResult) -> int:
        """The id of the proposal a ``propose`` transaction created."""
        return self.receipt_events(tx, "ProposalCreated")[0].args["proposalId"]

    def cast_vote(self, account: LocalAccount, proposal_id: int, support: int, reason: str = "") -> TxResult:
        """``support``: 0 against, 1 for, 2 abstain."""
        return self.chain.transact(self.vote_fn(proposal_id, support, reason), account)

    def vote_fn(self, proposal_id: int, support: int, reason: str = "") -> Any:
        if reason:
            return self.function("castVoteWithReason", proposal_id, support, reason)
        return self.function("castVote", proposal_id, support)

    def queue(self, account: LocalAccount, calls: Sequence[tuple[str, bytes]], description: str) -> TxResult:
        return self.chain.transact(self.lifecycle_fn("queue", calls, description), account)

    def execute(self, account: LocalAccount, calls: Sequence[tuple[str, bytes]], description: str) -> TxResult:
        return self.chain.transact(self.lifecycle_fn("execute", calls, description), account)

    def lifecycle_fn(self, step: str, calls: Sequence[tuple[str, bytes]], description: str) -> Any:
        """``queue`` or ``execute`` of the proposal made of ``calls`` and ``description``."""
        if step not in ("queue", "execute"):
            raise ValueError(step)
        return self.function(step, *self._args(calls, description))

    def state(self, proposal_id: int) -> ProposalState:
        return ProposalState(self._call("state", proposal_id))

    def proposal_id(self, calls: Sequence[tuple[str, bytes]], description: str) -> int:
        return self._call("getProposalId", *self._args(calls, description))

    def deadline(self, proposal_id: int) -> int:
        return self._call("proposalDeadline", proposal_id)

    def snapshot(self, proposal_id: int) -> int:
        return self._call("proposalSnapshot", proposal_id)

    def eta(self, proposal_id: int) -> int:
        return self._call("proposalEta", proposal_id)

    def votes(self, proposal_id: int) -> tuple[int, int, int]:
        """(against, for, abstain)."""
        v = self._read("proposalVotes", proposal_id)
        return v["againstVotes"], v["forVotes"], v["abstainVotes"]

    def quorum(self, timepoint: int) -> int:
        return self._call("quorum", timepoint)

    @staticmethod
    def _args(calls: Sequence[tuple[str, bytes]], description: str) -> tuple:
        return [t for t, _ in calls], [0] * len(calls), [c for _, c in calls], keccak(text=description)
