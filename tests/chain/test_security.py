"""Contract security: an access-control matrix over every state-changing function, re-entry through
hostile contracts on every callback path, and arithmetic at the cap boundaries.

- **Access matrix.** Every external state-changing function of every deployed contract, read from
  the ABI (a new function without an entry fails ``test_the_matrix_covers_every_state_changing_function``),
  is tried by every role in the state where it would otherwise succeed; the outcome must be exactly
  the allowed call or the named custom error (and the error names the caller where it has one).
  Accounts send real transactions; contract roles (the RoundManager as minter, the registry, the
  timelock, the governor) are simulated with ``eth_call`` from their address, and what the timelock
  may do is also executed for real, all of it in one passed proposal.
- **Re-entry.** The suite makes external calls only into its own contracts (RoundManager -> token,
  registry -> token) and, through governance, into any target a proposal names (Governor -> timelock
  -> target). ``tests/chain/contracts/Attackers.sol`` holds a hostile token that calls back on every
  call, a hostile member contract, and a proposal target that re-enters the governor and timelock.
- **Arithmetic** at the epoch and member caps (exactly reached, one wei over), at the uint96 limits of
  the packed reward and cap fields, and floor rounding over many claimants. The epoch rollover at
  the exact boundary block for views is ``test_token_and_members.py::test_epochs_roll_over_exactly_at_the_boundary_block``;
  here, a reservation made in that block.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from codecoop.chain import reverts
from codecoop.chain.backend import EMBEDDED_GAS, Chain, connect
from codecoop.chain.cid import cid_to_bytes
from codecoop.chain.clients import Ballot, MembersClient, Phase, RoundsClient, UpdateDisclosure
from codecoop.chain.compile import SETTINGS, Artifact, compile_contracts, contracts_dir, node_modules, solc_launcher
from codecoop.chain.deployment import deploy, raw_cid
from codecoop.chain.devtools import DevFederation
from codecoop.chain.params import FederationParams
from codecoop.chain.reverts import RevertDecoder
from codecoop.chain.units import TOKEN_UNIT
from codecoop.errors import ContractRevert
from codecoop.paths import cache_root

from .conftest import PARAMS
from .test_rounds import open_with_updates, to_phase, vote_all
from .test_token_and_members import _capped

pytestmark = pytest.mark.filterwarnings("ignore:SELFDESTRUCT opcode:DeprecationWarning")  # ForceSend, on purpose

ATTACKERS = Path(__file__).parent / "contracts" / "Attackers.sol"
OK = "ok"
ROLES = ("outsider", "member", "suspended", "minter", "registry", "timelock", "governor", "admin")
CONTRACT_ROLES = {"minter": "RoundManager", "registry": "MemberRegistry", "timelock": "CoopTimelock", "governor": "CoopGovernor"}
#: Errors whose first argument is the account that was refused: the test checks it is the caller.
NAMES_CALLER = {
    "OwnableUnauthorizedAccount", "NotActiveMember", "UnauthorizedMinter", "AccessControlUnauthorizedAccount",
    "GovernorOnlyExecutor", "NotMember", "TimelockUnauthorizedCaller", "AlreadyMember",
}  # fmt: skip
ZERO32 = b"\x00" * 32


# ---------------------------------------------------------------------- test contracts


@cache
def attackers() -> dict[str, Artifact]:
    """The compiled test contracts of ``Attackers.sol`` (cached by source, settings and interface)."""
    interface = contracts_dir() / "interfaces" / "IContributionToken.sol"
    key = hashlib.sha256(json.dumps([ATTACKERS.read_text(), interface.read_text(), SETTINGS], sort_keys=True).encode()).hexdigest()[:24]
    path = cache_root() / "artifacts" / f"test-attackers-{key}.json"
    if not path.is_file():
        import solcx

        root = node_modules().parent
        request = {"language": "Solidity", "sources": {"tests/Attackers.sol": {"content": ATTACKERS.read_text()}}, "settings": SETTINGS}
        out = solcx.compile_standard(request, solc_binary=solc_launcher(), base_path=str(root), allow_paths=[str(root)])
        data = {
            name: {
                "abi": c["abi"],
                "bytecode": "0x" + c["evm"]["bytecode"]["object"],
                "deployed_size": len(c["evm"]["deployedBytecode"]["object"]) // 2,
            }
            for name, c in out["contracts"]["tests/Attackers.sol"].items()
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            json.dump(data, f)
        os.replace(f.name, path)
    return {name: Artifact(name=name, **fields) for name, fields in json.loads(path.read_text()).items()}


def create(chain: Chain, account: LocalAccount, name: str, *args: Any, value: int = 0, artifact: Artifact | None = None) -> Any:
    """Deploy a test contract (or ``artifact``) and return the bound web3 contract."""
    art = artifact or attackers()[name]
    factory = chain.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    tx = chain.transact(factory.constructor(*args), account, value=value)
    return chain.w3.eth.contract(address=tx.receipt["contractAddress"], abi=art.abi)


def decoded(chain: Chain, result: bytes) -> str:
    """The custom error name in revert data recorded by a ``Reenterer``."""
    return chain.decoder.decode("0x" + bytes(result).hex()).error


# ---------------------------------------------------------------------- the access-control matrix


@dataclass
class World:
    """A federation with one account or contract per role, and a snapshot of every stage a
    function needs: round 1 completed and unclaimed, member 4 suspended, an applicant pending."""

    fed: DevFederation
    admin: LocalAccount
    outsider: LocalAccount
    applicant: LocalAccount
    stages: dict[str, Any] = field(default_factory=dict)
    ballot: Ballot | None = None
    disclosure: UpdateDisclosure | None = None  # the member's committed update of round 2
    round1: int = 0
    round2: int = 0
    proposal: tuple[list[tuple[str, bytes]], str] = ([], "")
    proposal_id: int = 0
    operation: tuple[bytes, bytes] = (b"", b"")  # the proposal's timelock (id, salt)
    current: str = ""

    @property
    def member(self) -> LocalAccount:
        return self.fed.members[0]

    @property
    def suspended(self) -> LocalAccount:
        return self.fed.members[4]

    def account(self, role: str) -> LocalAccount | None:
        return {"outsider": self.outsider, "member": self.member, "suspended": self.suspended, "admin": self.admin}.get(role)

    def address(self, role: str) -> str:
        account = self.account(role)
        return account.address if account else self.fed.deployment.addresses[CONTRACT_ROLES[role]]

    def at(self, stage: str) -> None:
        """Put the chain in ``stage`` (snapshots survive any number of reverts)."""
        if self.current != stage:
            self.fed.chain.revert_to(self.stages[stage])
            self.current = stage


@pytest.fixture(scope="module")
def world() -> World:
    chain = connect()
    admin = chain.new_account()
    fed = DevFederation(chain, deploy(chain, PARAMS, deployer=admin), [])
    fed.add_members(5)
    d, m = fed.deployment, fed.members
    w = World(fed, admin, chain.new_account(), chain.new_account())
    w.round1 = fed.run_round(claim=False).round
    fed.pass_proposal(
        [(d.members.address, d.members.encode("suspend", m[4].address)), (d.members.address, d.members.encode("setAdmission", 1))],
        "Suspend member 4; admission by approval",
    )
    d.members.join(w.applicant, "12D3KooWapplicant")
    for role in CONTRACT_ROLES:  # gas money for eth_call from a contract's address
        create(chain, admin, "ForceSend", w.address(role), value=10**19)
    w.stages["idle"] = chain.snapshot()

    rounds = d.rounds
    w.round2 = rounds.open_round(w.member)
    w.stages["submit"] = chain.snapshot()
    disclosures = [UpdateDisclosure(w.round2, raw_cid(f"matrix update {i}".encode()), 10 + i) for i in range(4)]
    for i in range(4):
        rounds.commit_update(m[i], disclosures[i])
    w.disclosure = disclosures[0]
    info = rounds.round(w.round2)
    chain.mine_to(info.submit_end + 1)
    w.stages["disclose"] = chain.snapshot()
    for i in range(4):
        rounds.submit_update(m[i], disclosures[i])
    chain.mine_to(info.disclose_end + 1)
    w.stages["commit"] = chain.snapshot()
    ballots = {i: Ballot.of({u: (True, 40_000) for u in range(4) if u != i}) for i in range(4)}
    for i in range(4):
        rounds.commit_votes(m[i], w.round2, ballots[i])
    chain.mine_to(info.commit_end + 1)
    w.stages["reveal"] = chain.snapshot()
    w.ballot = ballots[0]
    for i in range(4):
        rounds.reveal_votes(m[i], w.round2, ballots[i])
    chain.mine_to(info.reveal_end + 1)
    w.stages["finalizable"] = chain.snapshot()
    rounds.finalize(w.member, w.round2)
    w.stages["confirm"] = chain.snapshot()

    chain.revert_to(w.stages["idle"])
    gov = d.governor
    w.proposal = ([(rounds.address, rounds.encode("setAggregationStrategy", "fedmedian"))], "Matrix proposal")
    w.proposal_id = gov.propose(w.member, *w.proposal)
    w.stages["pending"] = chain.snapshot()
    chain.mine(d.params.voting_delay + 1)
    w.stages["voting"] = chain.snapshot()
    for i in range(5):
        gov.cast_vote(m[i], w.proposal_id, 1)
    chain.mine_to(gov.deadline(w.proposal_id) + 1)
    w.stages["succeeded"] = chain.snapshot()
    tx = gov.queue(w.member, *w.proposal)
    scheduled = d.timelock.receipt_events(tx, "CallScheduled")[0].args["id"]
    salt = d.timelock.receipt_events(tx, "CallSalt")[0].args["salt"]
    w.operation = (scheduled, salt)
    chain.time_travel(d.params.timelock_delay + 1)
    w.stages["ready"] = chain.snapshot()
    w.current = "ready"
    return w


Args = Callable[[World, str], tuple]


@dataclass(frozen=True)
class Entry:
    """One function: the stage it is tried in, its arguments (given the caller), each role's outcome."""

    stage: str
    args: Args
    outcomes: dict[str, str]
    #: The timelock reaches it only through a passed proposal (the Governor's ``onlyGovernance``).
    via_proposal: bool = False


def everyone(outcome: str, stage: str = "idle", args: Args = lambda w, c: ()) -> Entry:
    return Entry(stage, args, dict.fromkeys(ROLES, outcome))


def only(allowed: dict[str, str] | tuple[str, ...], denied: str, stage: str = "idle", args: Args = lambda w, c: (), **kw: Any) -> Entry:
    outcomes = dict.fromkeys(ROLES, denied)
    outcomes.update(allowed if isinstance(allowed, dict) else dict.fromkeys(allowed, OK))
    return Entry(stage, args, outcomes, **kw)


def governance(args: Args = lambda w, c: ()) -> Entry:
    """An ``onlyOwner`` setter: the timelock (a passed proposal) and nobody else."""
    return only(("timelock",), "OwnableUnauthorizedAccount", args=args)


def governor_only(args: Args = lambda w, c: ()) -> Entry:
    """The Governor's ``onlyGovernance``: only its own executed proposals (executor: the timelock)."""
    return only(("timelock",), "GovernorOnlyExecutor", args=args, via_proposal=True)


def _cid(w: World, text: str = "matrix") -> bytes:
    return cid_to_bytes(raw_cid(text.encode()))


def _schedule_args(w: World, c: str) -> tuple:
    rounds = w.fed.deployment.rounds
    return (rounds.address, 0, rounds.encode("setQuorum", 6000), ZERO32, keccak(text="matrix"), 1)


def _proposal_args(w: World, c: str) -> tuple:
    calls, description = w.proposal
    return ([t for t, _ in calls], [0] * len(calls), [d for _, d in calls], keccak(text=description))


def _batch_args(w: World, c: str) -> tuple:
    calls, _ = w.proposal
    return ([t for t, _ in calls], [0] * len(calls), [d for _, d in calls], ZERO32, w.operation[1])


EXPIRED = 1  # a timestamp long past: signature paths refuse before looking at the signature
PROPOSER_ROLE, CANCELLER_ROLE = keccak(text="PROPOSER_ROLE"), keccak(text="CANCELLER_ROLE")

MATRIX: dict[str, dict[str, Entry]] = {
    "ContributionToken": {
        "approve(address,uint256)": everyone(OK, args=lambda w, c: (w.address("member"), 1)),
        "delegate(address)": everyone(OK, args=lambda w, c: (w.address("member"),)),
        "delegateBySig(address,uint256,uint256,uint8,bytes32,bytes32)": everyone(
            "VotesExpiredSignature", args=lambda w, c: (w.address("member"), 0, EXPIRED, 27, b"\x01" * 32, b"\x01" * 32)
        ),
        "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)": everyone(
            "ERC2612ExpiredSignature", args=lambda w, c: (c, w.address("member"), 1, EXPIRED, 27, b"\x01" * 32, b"\x01" * 32)
        ),
        "transfer(address,uint256)": everyone("TransfersDisabled", args=lambda w, c: (w.address("outsider"), 0)),
        "transferFrom(address,address,uint256)": everyone(
            "TransfersDisabled", args=lambda w, c: (w.address("member"), w.address("outsider"), 0)
        ),
        "reserve(uint256)": only(("minter",), "UnauthorizedMinter", args=lambda w, c: (1,)),
        "mintAllocation(address,uint256,uint256,bytes32)": only(
            ("minter",), "UnauthorizedMinter", args=lambda w, c: (w.address("member"), 0, 1, ZERO32)
        ),
        "grantWelcome(address)": only(("registry",), "UnauthorizedMinter", args=lambda w, c: (w.applicant.address,)),
        "setMinter(address)": governance(lambda w, c: (w.fed.deployment.rounds.address,)),
        "setRegistry(address)": governance(lambda w, c: (w.fed.deployment.members.address,)),
        "setTransfersEnabled(bool)": governance(lambda w, c: (False,)),
        "setEpochLength(uint64)": governance(lambda w, c: (PARAMS.epoch_length,)),
        "setEpochCap(uint256)": governance(lambda w, c: (PARAMS.epoch_cap,)),
        "setMemberEpochCap(uint256)": governance(lambda w, c: (PARAMS.member_epoch_cap,)),
        "setWelcomeGrant(uint256)": governance(lambda w, c: (PARAMS.welcome_grant,)),
        "transferOwnership(address)": governance(lambda w, c: (w.fed.deployment.timelock.address,)),
        "renounceOwnership()": governance(),
    },
    "MemberRegistry": {
        "join(string,string[],bytes)": only(
            ("outsider", "minter", "registry", "timelock", "governor", "admin"),
            "AlreadyMember",
            args=lambda w, c: ("12D3KooWjoin", [], b""),
        ),
        "updateEndpoint(string,string[])": only(("member", "suspended"), "NotMember", args=lambda w, c: ("12D3KooWmoved", [])),
        "leave()": only(("member", "suspended"), "NotMember"),
        "approve(address)": governance(lambda w, c: (w.applicant.address,)),
        "suspend(address)": governance(lambda w, c: (w.fed.members[1].address,)),
        "reinstate(address)": governance(lambda w, c: (w.suspended.address,)),
        "remove(address)": governance(lambda w, c: (w.fed.members[2].address,)),
        "setAdmission(uint8)": governance(lambda w, c: (0,)),
        "transferOwnership(address)": governance(lambda w, c: (w.fed.deployment.timelock.address,)),
        "renounceOwnership()": governance(),
    },
    "RoundManager": {
        "openRound()": only(("member",), "NotActiveMember"),
        "commitUpdate(uint256,bytes32)": only(("member",), "NotActiveMember", "submit", lambda w, c: (w.round2, b"\x05" * 32)),
        "submitUpdate(uint256,bytes,uint256,bytes,bytes32)": only(
            ("member",),
            "NotActiveMember",
            "disclose",
            lambda w, c: (w.round2, cid_to_bytes(w.disclosure.cid), w.disclosure.n_samples, b"", w.disclosure.salt),
        ),
        "commitVotes(uint256,bytes32)": only(("member",), "NotActiveMember", "commit", lambda w, c: (w.round2, b"\x07" * 32)),
        "revealVotes(uint256,uint16[],bool[],int64[],bytes32)": only(
            ("member",),
            "NotActiveMember",
            "reveal",
            lambda w, c: (w.round2, list(w.ballot.update_ids), list(w.ballot.approve), list(w.ballot.loss_delta), w.ballot.salt),
        ),
        "finalize(uint256)": everyone(OK, "finalizable", lambda w, c: (w.round2,)),
        "confirmAggregate(uint256,bytes)": only(("member",), "NotActiveMember", "confirm", lambda w, c: (w.round2, _cid(w, "agg"))),
        # Rewards earned before a suspension stay claimable (docs/CONTRACTS.md).
        "claim(uint256)": only(("member", "suspended"), "NothingToClaim", args=lambda w, c: (w.round1,)),
        "setWindows(uint32,uint32,uint32,uint32,uint32)": governance(lambda w, c: (20, 15, 15, 15, 15)),
        "setQuorum(uint16)": governance(lambda w, c: (5000,)),
        "setConfirmations(uint16)": governance(lambda w, c: (2,)),
        "setMaxUpdates(uint16)": governance(lambda w, c: (112,)),
        "setRewards(uint128,uint128,uint64)": governance(lambda w, c: (PARAMS.submit_reward, PARAMS.voter_reward, PARAMS.reward_bound)),
        "setAggregationStrategy(string)": governance(lambda w, c: ("fedavg",)),
        "setBase(bytes)": governance(lambda w, c: (b"",)),
        "transferOwnership(address)": governance(lambda w, c: (w.fed.deployment.timelock.address,)),
        "renounceOwnership()": governance(),
    },
    "ModelRegistry": {
        "release(string,bytes,uint256,bytes,string)": governance(lambda w, c: ("matrix", _cid(w), 0, b"", "tiny")),
        "setCharter(bytes,string,bytes32)": governance(lambda w, c: (_cid(w, "charter"), "tiny", ZERO32)),
        "setMinImprovement(uint16)": governance(lambda w, c: (100,)),
        "transferOwnership(address)": governance(lambda w, c: (w.fed.deployment.timelock.address,)),
        "renounceOwnership()": governance(),
    },
    "CoopTimelock": {
        "schedule(address,uint256,bytes,bytes32,bytes32,uint256)": only(
            ("governor",), "AccessControlUnauthorizedAccount", args=_schedule_args
        ),
        "scheduleBatch(address[],uint256[],bytes[],bytes32,bytes32,uint256)": only(
            ("governor",),
            "AccessControlUnauthorizedAccount",
            args=lambda w, c: tuple([x] for x in _schedule_args(w, c)[:3]) + _schedule_args(w, c)[3:],
        ),
        "cancel(bytes32)": only(("governor",), "AccessControlUnauthorizedAccount", "ready", lambda w, c: (w.operation[0],)),
        # Execution is open to anyone (executor role granted to the zero address); the operation's state is the gate.
        "execute(address,uint256,bytes,bytes32,bytes32)": everyone(
            "TimelockUnexpectedOperationState", "ready", lambda w, c: _schedule_args(w, c)[:5]
        ),
        "executeBatch(address[],uint256[],bytes[],bytes32,bytes32)": everyone(OK, "ready", _batch_args),
        "updateDelay(uint256)": only(("timelock",), "TimelockUnauthorizedCaller", args=lambda w, c: (1,)),
        "grantRole(bytes32,address)": only(
            ("timelock",), "AccessControlUnauthorizedAccount", args=lambda w, c: (PROPOSER_ROLE, w.fed.deployment.governor.address)
        ),
        "revokeRole(bytes32,address)": only(
            ("timelock",), "AccessControlUnauthorizedAccount", args=lambda w, c: (CANCELLER_ROLE, w.address("outsider"))
        ),
        "renounceRole(bytes32,address)": everyone(OK, args=lambda w, c: (PROPOSER_ROLE, c)),
        "onERC721Received(address,address,uint256,bytes)": everyone(OK, args=lambda w, c: (c, c, 1, b"")),
        "onERC1155Received(address,address,uint256,uint256,bytes)": everyone(OK, args=lambda w, c: (c, c, 1, 1, b"")),
        "onERC1155BatchReceived(address,address,uint256[],uint256[],bytes)": everyone(OK, args=lambda w, c: (c, c, [1], [1], b"")),
        "receive()": everyone(OK),
    },
    "CoopGovernor": {
        # Proposal threshold 0: anyone may propose; votes weigh what the voter held at the snapshot.
        "propose(address[],uint256[],bytes[],string)": everyone(
            OK, args=lambda w, c: ([w.fed.deployment.rounds.address], [0], [w.fed.deployment.rounds.encode("setQuorum", 6000)], f"from {c}")
        ),
        "castVote(uint256,uint8)": everyone(OK, "voting", lambda w, c: (w.proposal_id, 1)),
        "castVoteWithReason(uint256,uint8,string)": everyone(OK, "voting", lambda w, c: (w.proposal_id, 0, "no")),
        "castVoteWithReasonAndParams(uint256,uint8,string,bytes)": everyone(OK, "voting", lambda w, c: (w.proposal_id, 2, "", b"")),
        "castVoteBySig(uint256,uint8,address,bytes)": everyone(
            "GovernorInvalidSignature", "voting", lambda w, c: (w.proposal_id, 1, c, b"\x01" * 65)
        ),
        "castVoteWithReasonAndParamsBySig(uint256,uint8,address,string,bytes,bytes)": everyone(
            "GovernorInvalidSignature", "voting", lambda w, c: (w.proposal_id, 1, c, "", b"", b"\x01" * 65)
        ),
        "queue(address[],uint256[],bytes[],bytes32)": everyone(OK, "succeeded", _proposal_args),
        "execute(address[],uint256[],bytes[],bytes32)": everyone(OK, "ready", _proposal_args),
        # Only the proposer, and only before voting starts.
        "cancel(address[],uint256[],bytes[],bytes32)": only(("member",), "GovernorUnableToCancel", "pending", _proposal_args),
        "relay(address,uint256,bytes)": governor_only(
            lambda w, c: (w.fed.deployment.token.address, 0, w.fed.deployment.token.encode("name"))
        ),
        "setVotingDelay(uint48)": governor_only(lambda w, c: (PARAMS.voting_delay,)),
        "setVotingPeriod(uint32)": governor_only(lambda w, c: (PARAMS.voting_period,)),
        "setProposalThreshold(uint256)": governor_only(lambda w, c: (0,)),
        "setLateQuorumVoteExtension(uint48)": governor_only(lambda w, c: (PARAMS.vote_extension,)),
        "updateQuorumNumerator(uint256)": governor_only(lambda w, c: (PARAMS.quorum_percent,)),
        "updateTimelock(address)": governor_only(lambda w, c: (w.fed.deployment.timelock.address,)),
        # With a timelock as executor the governor holds no funds or tokens: deposits are refused.
        "onERC721Received(address,address,uint256,bytes)": everyone("GovernorDisabledDeposit", args=lambda w, c: (c, c, 1, b"")),
        "onERC1155Received(address,address,uint256,uint256,bytes)": everyone(
            "GovernorDisabledDeposit", args=lambda w, c: (c, c, 1, 1, b"")
        ),
        "onERC1155BatchReceived(address,address,uint256[],uint256[],bytes)": everyone(
            "GovernorDisabledDeposit", args=lambda w, c: (c, c, [1], [1], b"")
        ),
        "receive()": everyone("GovernorDisabledDeposit"),
    },
}
CLIENTS = {
    "ContributionToken": "token",
    "MemberRegistry": "members",
    "RoundManager": "rounds",
    "ModelRegistry": "models",
    "CoopTimelock": "timelock",
    "CoopGovernor": "governor",
}


def state_changing(abi: list) -> set[str]:
    """Signatures of every non-view function (and ``receive()``) in an ABI."""
    out = set()
    for item in abi:
        if item["type"] == "function" and item["stateMutability"] in ("nonpayable", "payable"):
            out.add(f"{item['name']}({','.join(_type(i) for i in item['inputs'])})")
        elif item["type"] in ("receive", "fallback"):
            out.add(f"{item['type']}()")
    return out


def _type(inp: dict) -> str:
    if inp["type"].startswith("tuple"):
        return "(" + ",".join(_type(c) for c in inp["components"]) + ")" + inp["type"][5:]
    return inp["type"]


def attempt(w: World, contract: str, signature: str, role: str) -> tuple[str, tuple]:
    """Call ``signature`` as ``role`` in the entry's stage: ``("ok", ())`` or ``(error, error args)``."""
    entry = MATRIX[contract][signature]
    w.at(entry.stage)
    chain, client = w.fed.chain, getattr(w.fed.deployment, CLIENTS[contract])
    caller = w.address(role)
    if signature == "receive()":
        tx: dict[str, Any] = {"to": client.address, "data": b"", "value": 0}
    else:
        fn = client.contract.get_function_by_signature(signature)(*entry.args(w, caller))
        tx = {"to": client.address, "data": fn._encode_transaction_data(), "value": 0}
    account = w.account(role)
    try:
        if account is not None:
            chain.transact(_Raw(chain, tx), account)
            w.current = ""  # a mined transaction changed the stage's state
        else:
            chain._guard(lambda: chain.w3.eth.call({**tx, "from": caller, "gas": EMBEDDED_GAS}, "pending"))
    except ContractRevert as e:
        return e.error, e.error_args
    return OK, ()


class _Raw:
    """A prepared call (``receive()`` included) in the shape ``Chain.transact`` builds transactions from."""

    def __init__(self, chain: Chain, tx: dict):
        self.chain, self.tx = chain, tx

    def build_transaction(self, params: dict) -> dict:
        from web3._utils.transactions import fill_transaction_defaults

        return fill_transaction_defaults(self.chain.w3, {**params, **self.tx})


CELLS = [(c, s) for c, fns in MATRIX.items() for s in fns]


def test_the_matrix_covers_every_state_changing_function(world: World) -> None:
    for contract, abi in world.fed.deployment.record.abis.items():
        functions = state_changing(abi)
        assert functions == set(MATRIX[contract]), (
            f"{contract}: add an access-matrix entry for {sorted(functions - set(MATRIX[contract]))}; "
            f"drop {sorted(set(MATRIX[contract]) - functions)}"
        )


@pytest.mark.parametrize("contract, signature", CELLS, ids=[f"{c}.{s.split('(')[0]}" for c, s in CELLS])
def test_each_role_gets_exactly_the_expected_outcome(world: World, contract: str, signature: str) -> None:
    entry = MATRIX[contract][signature]
    wrong = []
    for role in ROLES:
        expected = entry.outcomes[role]
        if role == "timelock" and expected == OK and entry.via_proposal:
            continue  # the governor takes these only from its own proposals: see the next test
        got, args = attempt(world, contract, signature, role)
        if got != expected:
            wrong.append(f"{role}: expected {expected}, got {got}{args}")
        elif got in NAMES_CALLER and str(args[0]).lower() != world.address(role).lower():
            wrong.append(f"{role}: {got} names {args[0]}, not the caller")
    assert not wrong, f"{contract}.{signature}:\n  " + "\n  ".join(wrong)


def test_everything_the_matrix_allows_the_timelock_runs_in_one_passed_proposal(world: World) -> None:
    world.at("idle")
    world.current = ""
    calls, renounce = [], []
    for contract, fns in MATRIX.items():
        client = getattr(world.fed.deployment, CLIENTS[contract])
        for signature, entry in fns.items():
            if entry.stage != "idle" or entry.outcomes["timelock"] != OK or signature == "receive()":
                continue
            fn = client.contract.get_function_by_signature(signature)(*entry.args(world, world.address("timelock")))
            call = (client.address, bytes.fromhex(fn._encode_transaction_data()[2:]))
            (renounce if signature == "renounceOwnership()" else calls).append(call)
    proposal = world.fed.pass_proposal(calls + renounce, "Every governance call at once")
    d = world.fed.deployment
    executed = d.governor.events("ProposalExecuted")
    assert [e.args["proposalId"] for e in executed][-1] == proposal
    assert d.models.version_by_tag("matrix").id == 1
    assert [e.args["member"] for e in d.members.events("StatusChanged")][-4:] == [
        world.applicant.address,
        world.fed.members[1].address,
        world.suspended.address,
        world.fed.members[2].address,
    ]
    for client in (d.token, d.members, d.rounds, d.models):
        assert client._call("owner") == "0x" + "00" * 20  # renounced last, by governance only


# ---------------------------------------------------------------------- re-entry


@dataclass
class Hostile:
    """RoundManager and MemberRegistry wired to a HostileToken whose every call re-enters through a
    Reenterer that is itself a member (driven by ``driver``)."""

    chain: Chain
    token: Any
    attacker: Any
    members: MembersClient
    rounds: RoundsClient
    eoas: list[LocalAccount]
    driver: LocalAccount

    def arm(self, *calls: tuple[Any, bytes]) -> None:
        self.chain.transact(self.attacker.functions.arm([c.address for c, _ in calls], [data for _, data in calls]), self.driver)

    def act(self, client: Any, fn: str, *args: Any) -> Any:
        """``client.fn(*args)`` sent by the attacker contract."""
        return self.chain.transact(self.attacker.functions.exec(client.address, client.encode(fn, *args)), self.driver)

    def outcome(self, i: int) -> tuple[bool, bytes]:
        return self.chain.call(self.attacker.functions.outcome(i))


@pytest.fixture(scope="module")
def _hostile() -> Hostile:
    chain = connect()
    admin = chain.new_account()
    suite = compile_contracts()
    token = create(chain, admin, "HostileToken")
    attacker = create(chain, admin, "Reenterer")
    chain.transact(token.functions.setHook(attacker.address), admin)
    registry = create(chain, admin, "", admin.address, token.address, 0, artifact=suite["MemberRegistry"])
    p = PARAMS
    window = (p.submit_window, p.disclose_window, p.commit_window, p.reveal_window, p.confirm_window)
    rm = create(
        chain, admin, "", admin.address, token.address, registry.address,
        (*window, p.quorum_bps, p.confirmations, p.max_updates, p.reward_bound, p.submit_reward, p.voter_reward), "fedavg",
        artifact=suite["RoundManager"],
    )  # fmt: skip
    chain.decoder = RevertDecoder([*((n, a.abi) for n, a in suite.items()), *((n, a.abi) for n, a in attackers().items())])
    members = MembersClient(chain, registry.address, suite["MemberRegistry"].abi)
    eoas = [chain.new_account() for _ in range(3)]
    for i, e in enumerate(eoas):
        members.join(e, f"12D3KooWeoa{i}")
    return Hostile(chain, token, attacker, members, RoundsClient(chain, rm.address, suite["RoundManager"].abi), eoas, admin)


@pytest.fixture
def hostile(_hostile: Hostile):
    snapshot = _hostile.chain.snapshot()
    yield _hostile
    _hostile.chain.revert_to(snapshot)


def _join_attacker(h: Hostile) -> None:
    h.act(h.members, "join", "12D3KooWattacker", [], b"")


def _round_with_attacker(h: Hostile) -> int:
    """A round in which the three accounts and the attacker submit and approve every other update,
    left finalizable."""
    _join_attacker(h)
    rounds, who = h.rounds, [*h.eoas, None]
    r = rounds.open_round(h.eoas[0])
    disclosures = [UpdateDisclosure(r, raw_cid(f"hostile {i}".encode()), 10) for i in range(len(who))]
    for d, e in zip(disclosures, who):
        if e is None:
            h.act(rounds, "commitUpdate", r, d.commitment(h.attacker.address))
        else:
            rounds.commit_update(e, d)
    info = rounds.round(r)
    h.chain.mine_to(info.submit_end + 1)
    for d, e in zip(disclosures, who):
        if e is None:
            h.act(rounds, "submitUpdate", r, cid_to_bytes(d.cid), d.n_samples, b"", d.salt)
        else:
            rounds.submit_update(e, d)
    h.chain.mine_to(info.disclose_end + 1)
    ballots = [Ballot.of({u: (True, 40_000) for u in range(4) if u != i}) for i in range(4)]
    for i, e in enumerate(who):
        if e is None:
            h.act(rounds, "commitVotes", r, ballots[i].commitment(r, h.attacker.address))
        else:
            rounds.commit_votes(e, r, ballots[i])
    h.chain.mine_to(info.commit_end + 1)
    for i, e in enumerate(who):
        b = ballots[i]
        if e is None:
            h.act(rounds, "revealVotes", r, list(b.update_ids), list(b.approve), list(b.loss_delta), b.salt)
        else:
            rounds.reveal_votes(e, r, b)
    h.chain.mine_to(info.reveal_end + 1)
    return r


#: What the attacker earns in ``_round_with_attacker``: its update at score 40,000 of 100,000, and
#: three votes that match the outcome.
ATTACKER_OWED = PARAMS.submit_reward * 40_000 // PARAMS.reward_bound + 3 * PARAMS.voter_reward


def test_joining_re_entered_from_the_welcome_grant_is_refused_AlreadyMember(hostile: Hostile) -> None:
    h = hostile
    h.arm((h.members, h.members.encode("join", "12D3KooWtwice", [], b"")))
    _join_attacker(h)
    ok, result = h.outcome(0)
    assert not ok and decoded(h.chain, result) == "AlreadyMember"
    assert h.members.active_count() == 4 and h.members.all_members().count(h.attacker.address) == 1
    assert h.chain.call(h.token.functions.welcomes()) == 4


def test_a_claim_re_entered_from_the_mint_is_refused_AlreadyClaimed_and_pays_once(hostile: Hostile) -> None:
    h = hostile
    r = _round_with_attacker(h)
    h.rounds.finalize(h.eoas[0], r)
    h.arm((h.rounds, h.rounds.encode("claim", r)))
    h.act(h.rounds, "claim", r)
    ok, result = h.outcome(0)
    assert not ok and decoded(h.chain, result) == "AlreadyClaimed"
    assert h.chain.call(h.token.functions.minted(h.attacker.address)) == ATTACKER_OWED
    assert h.chain.call(h.token.functions.mints()) == 1


def test_calls_re_entered_from_the_reservation_in_finalize_leave_the_round_consistent(hostile: Hostile) -> None:
    h = hostile
    r = _round_with_attacker(h)
    rounds = h.rounds
    h.arm(
        (rounds, rounds.encode("finalize", r)),
        (rounds, rounds.encode("openRound")),
        (rounds, rounds.encode("claim", r)),  # every state write precedes the reservation: it pays exactly
        (rounds, rounds.encode("confirmAggregate", r, cid_to_bytes(raw_cid(b"early aggregate")))),
    )
    result = rounds.finalize(h.eoas[0], r)
    outcomes = [h.outcome(i) for i in range(4)]
    assert decoded(h.chain, outcomes[0][1]) == "ReentrancyGuardReentrantCall"
    assert decoded(h.chain, outcomes[1][1]) == "PreviousRoundNotDone"
    assert outcomes[2][0] and outcomes[3][0]
    assert result.accepted_ids == (0, 1, 2, 3)
    assert len(rounds.receipt_events(result.tx, "UpdateDecided")) == 4
    assert (h.chain.call(h.token.functions.reservations()), h.chain.call(h.token.functions.reservedTotal())) == (1, result.requested)
    assert h.chain.call(h.token.functions.minted(h.attacker.address)) == ATTACKER_OWED
    with pytest.raises(reverts.AlreadyClaimed):
        h.act(rounds, "claim", r)
    assert rounds.participation(r, h.attacker.address).confirmed and rounds.phase(r) is Phase.CONFIRM


def test_the_real_token_calls_no_hook_on_a_contract_member(fed) -> None:
    """``ContributionToken._update`` (mints, delegation checkpoints) makes no external call: a contract
    member armed to re-enter its claim is never called back while it joins, votes, earns and claims."""
    chain, d, rounds = fed.chain, fed.deployment, fed.deployment.rounds
    attacker = create(chain, fed.members[0], "Reenterer")

    def act(client: Any, fn: str, *args: Any) -> None:
        chain.transact(attacker.functions.exec(client.address, client.encode(fn, *args)), fed.members[0])

    act(d.members, "join", "12D3KooWcontract", [], b"")
    act(d.token, "delegate", attacker.address)
    r, _ = open_with_updates(fed)
    chain.transact(attacker.functions.arm([rounds.address], [rounds.encode("claim", r)]), fed.members[0])
    ballots = {i: Ballot.of({u: (True, 40_000) for u in range(4) if u != i}) for i in range(4)}
    own = Ballot.of({u: (True, 40_000) for u in range(4)})
    to_phase(fed, r, Phase.COMMIT)
    for i, m in enumerate(fed.members):
        rounds.commit_votes(m, r, ballots[i])
    act(rounds, "commitVotes", r, own.commitment(r, attacker.address))
    to_phase(fed, r, Phase.REVEAL)
    for i, m in enumerate(fed.members):
        rounds.reveal_votes(m, r, ballots[i])
    act(rounds, "revealVotes", r, list(own.update_ids), list(own.approve), list(own.loss_delta), own.salt)
    to_phase(fed, r, Phase.FINALIZABLE)
    assert rounds.finalize(fed.members[0], r).accepted_ids == (0, 1, 2, 3)
    act(rounds, "claim", r)
    assert d.token.balance_of(attacker.address) == d.params.welcome_grant + 4 * d.params.voter_reward
    assert d.token.votes(attacker.address) == d.token.balance_of(attacker.address)
    assert chain.call(attacker.functions.callbacks()) == 0 and chain.call(attacker.functions.attempts()) == 0


def _governor_salt(d: Any, description: str) -> bytes:
    """GovernorTimelockControl's timelock salt: bytes20(governor) ^ keccak(description)."""
    g = int.from_bytes(bytes.fromhex(d.governor.address[2:]) + b"\x00" * 12, "big")
    return (g ^ int.from_bytes(keccak(text=description), "big")).to_bytes(32, "big")


def test_a_proposal_that_re_executes_its_own_timelock_batch_reverts_whole_and_stays_queued(fed) -> None:
    chain, d = fed.chain, fed.deployment
    attacker = create(chain, fed.members[0], "Reenterer")
    description = "Raise the quorum (and try to run twice)"
    calls = [(d.rounds.address, d.rounds.encode("setQuorum", 6000)), (attacker.address, bytes.fromhex(attacker.encode_abi("poke", [])[2:]))]
    batch = ([t for t, _ in calls], [0, 0], [c for _, c in calls], ZERO32, _governor_salt(d, description))
    chain.transact(attacker.functions.arm([d.timelock.address], [d.timelock.encode("executeBatch", *batch)]), fed.members[0])
    with pytest.raises(reverts.TimelockUnexpectedOperationState):
        fed.pass_proposal(calls, description)
    proposal = d.governor.proposal_id(calls, description)
    assert d.governor.state(proposal).name == "QUEUED"
    assert d.rounds.params().quorum_bps == d.params.quorum_bps and chain.call(attacker.functions.attempts()) == 0
    chain.transact(attacker.functions.arm([], []), fed.members[0])  # harmless callback now
    d.governor.execute(fed.members[0], calls, description)
    assert d.rounds.params().quorum_bps == 6000
    assert [e.args["quorumBps"] for e in d.rounds.events("QuorumSet")].count(6000) == 1


def test_a_proposal_target_that_re_enters_gains_none_of_the_timelocks_powers(fed) -> None:
    chain, d = fed.chain, fed.deployment
    attacker = create(chain, fed.members[0], "Reenterer")
    description = "Call a contract that tries everything"
    calls = [(attacker.address, bytes.fromhex(attacker.encode_abi("poke", [])[2:]))]
    args = ([attacker.address], [0], [calls[0][1]], keccak(text=description))
    attempts = [
        (d.governor, d.governor.encode("execute", *args), "GovernorUnexpectedProposalState"),
        (d.rounds, d.rounds.encode("setQuorum", 1), "OwnableUnauthorizedAccount"),
        (d.token, d.token.encode("setEpochCap", 0), "OwnableUnauthorizedAccount"),
        (d.token, d.token.encode("mintAllocation", attacker.address, 0, 10**24, ZERO32), "UnauthorizedMinter"),
        (d.members, d.members.encode("suspend", fed.members[0].address), "OwnableUnauthorizedAccount"),
        (d.timelock, d.timelock.encode("updateDelay", 0), "TimelockUnauthorizedCaller"),
        (
            d.timelock,
            d.timelock.encode("schedule", d.rounds.address, 0, d.rounds.encode("setQuorum", 1), ZERO32, ZERO32, 1),
            "AccessControlUnauthorizedAccount",
        ),
    ]
    chain.transact(attacker.functions.arm([c.address for c, _, _ in attempts], [data for _, data, _ in attempts]), fed.members[0])
    proposal = fed.pass_proposal(calls, description)
    assert d.governor.state(proposal).name == "EXECUTED" and chain.call(attacker.functions.attempts()) == 1
    for i, (_, _, error) in enumerate(attempts):
        ok, result = chain.call(attacker.functions.outcome(i))
        assert not ok and decoded(chain, result) == error, (i, error)
    assert [e.args["proposalId"] for e in d.governor.events("ProposalExecuted")] == [proposal]
    assert d.rounds.params().quorum_bps == d.params.quorum_bps and d.token.balance_of(attacker.address) == 0


# ---------------------------------------------------------------------- arithmetic at the caps


#: What a round of 4 members who all approve every other update at the reward bound asks for:
#: 4 full submit rewards and 12 matching votes.
FULL_ROUND = 4 * PARAMS.submit_reward + 12 * PARAMS.voter_reward


def _full_round(fed: DevFederation) -> tuple[int, Any]:
    """A round in which every member approves every other update at the reward bound, finalized
    (a previous round is left to fail its unconfirmed aggregate first: its rewards stay claimable)."""
    previous = fed.deployment.rounds.current_round()
    if previous:
        fed.chain.mine_to(fed.deployment.rounds.round(previous).confirm_end + 1)
    r, _ = open_with_updates(fed)
    vote_all(fed, r, lambda v, u: (True, fed.deployment.params.reward_bound))
    return r, fed.deployment.rounds.finalize(fed.members[0], r)


@pytest.mark.parametrize("offset", [0, -1, 1], ids=["exactly-the-cap", "one-wei-over", "one-wei-under"])
def test_the_epoch_cap_at_its_boundary_grants_at_most_what_is_left_and_claims_never_exceed_it(offset: int) -> None:
    fed = _capped(cap_total=FULL_ROUND + offset, cap_member=10**6 * TOKEN_UNIT)
    r, result = _full_round(fed)
    assert result.requested == FULL_ROUND and result.granted == min(FULL_ROUND, FULL_ROUND + offset)
    minted = [fed.deployment.rounds.claim(m, r).minted for m in fed.members]
    assert sum(minted) <= result.granted and result.granted - sum(minted) < len(minted)  # floor per claim
    assert minted == [FULL_ROUND // 4 * result.granted // FULL_ROUND] * 4
    assert fed.deployment.token.reserved_in(result.epoch) == result.granted
    r2, again = _full_round(fed)
    assert again.epoch == result.epoch and again.granted == max(0, offset)  # what was left, and not a wei more


@pytest.mark.parametrize("offset", [0, -1], ids=["exactly-the-cap", "one-wei-over"])
def test_the_member_cap_at_its_boundary_mints_at_most_the_cap(offset: int) -> None:
    owed = FULL_ROUND // 4
    fed = _capped(cap_total=10**6 * TOKEN_UNIT, cap_member=owed + offset)
    r, result = _full_round(fed)
    claim = fed.deployment.rounds.claim(fed.members[0], r)
    assert claim.amount == owed and claim.minted == min(owed, owed + offset)
    assert len(fed.deployment.token.events("AllocationCut")) == (1 if offset < 0 else 0)
    r2, _ = _full_round(fed)
    assert fed.deployment.rounds.claim(fed.members[0], r2).minted == 0  # the cap is used up for this epoch
    assert fed.deployment.token.member_minted(result.epoch, fed.members[0].address) == owed + min(offset, 0)


def test_rewards_and_caps_at_their_uint96_limits_neither_overflow_nor_pass_a_cap() -> None:
    top = 2**96 - 1
    params = FederationParams(
        submit_window=20, commit_window=15, reveal_window=15, confirm_window=15, epoch_length=10_000,
        epoch_cap=2**256 - 1, member_epoch_cap=top, welcome_grant=0, submit_reward=top, voter_reward=top, reward_bound=2**40,
    )  # fmt: skip
    fed = DevFederation.create(4, params)
    r, result = _full_round(fed)
    assert result.requested == result.granted == 16 * top  # 4 updates at full score + 12 matching votes
    claims = [fed.deployment.rounds.claim(m, r) for m in fed.members]
    assert [c.amount for c in claims] == [4 * top] * 4 and [c.minted for c in claims] == [top] * 4
    assert fed.deployment.token.total_supply() == 4 * top
    with pytest.raises(reverts.SafeCastOverflowedUintDowncast):
        fed.pass_proposal(
            [(fed.deployment.token.address, fed.deployment.token.encode("setMemberEpochCap", top + 1))], "member cap past uint96"
        )
    for args, name in [((top + 1, 0, 1), "rewards"), ((0, top + 1, 1), "rewards"), ((1, 1, 2**40 + 1), "rewardBound")]:
        with pytest.raises(reverts.InvalidParameter) as e:
            fed.pass_proposal(
                [(fed.deployment.rounds.address, fed.deployment.rounds.encode("setRewards", *args))], f"past the limit {args}"
            )
        assert e.value.error_args == (name,)


def test_a_member_cap_past_uint96_is_refused_at_deployment() -> None:
    with pytest.raises(reverts.SafeCastOverflowedUintDowncast):
        DevFederation.create(0, FederationParams(member_epoch_cap=2**96))


def test_floor_rounding_over_many_claimants_never_pays_more_than_was_reserved() -> None:
    n = 7
    requested = n * PARAMS.submit_reward + n * (n - 1) * PARAMS.voter_reward
    cap = requested * 2 // 3 + 7  # no claim divides evenly
    params = FederationParams(
        submit_window=30, commit_window=20, reveal_window=20, confirm_window=20, epoch_length=10_000,
        epoch_cap=cap, member_epoch_cap=10**6 * TOKEN_UNIT, welcome_grant=0,
    )  # fmt: skip
    fed = DevFederation.create(n, params)
    rec = fed.run_round(vote=lambda v, u: (True, params.reward_bound))
    info = fed.deployment.rounds.round(rec.round)
    assert (info.requested, info.granted) == (requested, cap)
    owed = requested // n
    assert sorted(rec.minted.values()) == [owed * cap // requested] * n
    assert sum(rec.minted.values()) <= cap and cap - sum(rec.minted.values()) < n


@pytest.mark.parametrize("offset, later", [(-1, 0), (0, 1)], ids=["last-block-of-the-epoch", "first-block-of-the-next"])
def test_a_reservation_is_charged_to_the_epoch_of_the_block_that_finalizes(fed, offset: int, later: int) -> None:
    token, rounds = fed.deployment.token, fed.deployment.rounds
    r, info = open_with_updates(fed)
    vote_all(fed, r, lambda v, u: (True, 40_000))
    boundary = token.current_epoch_start() + fed.deployment.params.epoch_length
    if boundary <= fed.chain.block_number + 1:
        boundary += fed.deployment.params.epoch_length
    charged = token.epoch_of(boundary - 1) + later
    before = token.reserved_in(charged)  # welcome grants of the first epoch are reserved there too
    fed.chain.mine_to(boundary + offset - 1)  # the finalize transaction is mined in the next block
    result = rounds.finalize(fed.members[0], r)
    assert result.tx.block == boundary + offset
    assert result.epoch == charged and token.epoch_of(result.tx.block) == charged
    assert token.reserved_in(charged) - before == result.granted > 0
    assert token.receipt_events(result.tx, "Reserved")[0].args["epoch"] == charged
