"""A federation on a dev chain driven straight through the contracts: for tests, benchmarks and
auditors' fixtures (the participant node runs the same steps with real training)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount

from codecoop.chain.backend import Chain, connect
from codecoop.chain.clients import Ballot, Phase, Submitted, UpdateDisclosure
from codecoop.chain.deployment import Deployment, deploy, raw_cid
from codecoop.chain.params import FederationParams

__all__ = ["DevFederation", "RoundRecord", "commit_and_disclose"]

Vote = Callable[[int, int], tuple[bool, int]]  # (voter index, update id) -> (approve, lossDelta)


@dataclass
class RoundRecord:
    """What one round did: ids, accepted updates and the gas of every transaction by operation."""

    round: int
    update_ids: dict[int, int] = field(default_factory=dict)  # member index -> update id
    accepted: tuple[int, ...] = ()
    aggregate_cid: str | None = None
    minted: dict[int, int] = field(default_factory=dict)
    gas: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))


class DevFederation:
    """A deployment and ``n`` funded, joined (and self-delegated) member accounts."""

    def __init__(self, chain: Chain, deployment: Deployment, members: list[LocalAccount]):
        self.chain = chain
        self.deployment = deployment
        self.members = members

    @classmethod
    def create(cls, n: int, params: FederationParams | None = None, *, chain: Chain | None = None, delegate: bool = True) -> DevFederation:
        chain = chain or connect()
        if params is None:
            # every transaction mines a block on a dev chain: windows must fit one per member
            w = 2 * n + 10
            params = FederationParams(
                submit_window=max(30, w),
                disclose_window=max(20, w),
                commit_window=max(20, w),
                reveal_window=max(20, w),
                confirm_window=max(30, w),
            )
        deployment = deploy(chain, params)
        fed = cls(chain, deployment, [])
        fed.add_members(n, delegate=delegate)
        return fed

    def add_members(self, n: int, *, delegate: bool = True) -> list[LocalAccount]:
        added = []
        for _ in range(n):
            account = self.chain.new_account()
            index = len(self.members)
            self.deployment.members.join(account, f"12D3KooWdev{index}", [f"/ip4/127.0.0.1/tcp/{4001 + index}"])
            if delegate:
                self.deployment.token.delegate(account)
            self.members.append(account)
            added.append(account)
        return added

    def run_round(
        self,
        *,
        submitters: list[int] | None = None,
        voters: list[int] | None = None,
        vote: Vote = lambda voter, update: (True, 50_000),
        confirmers: list[int] | None = None,
        claim: bool = True,
        tag: str = "",
    ) -> RoundRecord:
        """Open a round and take it through submit, commit, reveal, finalize, confirm and claim.

        Every index list defaults to all members; ``vote`` decides each ballot entry.
        """
        n = len(self.members)
        submitters = list(range(n)) if submitters is None else submitters
        voters = list(range(n)) if voters is None else voters
        rounds = self.deployment.rounds
        opener = self.members[(submitters or voters or [0])[0]]
        tx_round = rounds.open_round(opener)
        rec = RoundRecord(round=tx_round)
        info = rounds.round(tx_round)
        done = commit_and_disclose(
            self.deployment,
            [(self.members[i], UpdateDisclosure(tx_round, raw_cid(f"update {tag} {tx_round} {i}".encode()), 1000 + i)) for i in submitters],
        )
        for i, (committed, submitted) in zip(submitters, done):
            rec.update_ids[i] = submitted.update_id
            rec.gas["commitUpdate"].append(committed.tx.gas_used)
            rec.gas["submitUpdate"].append(submitted.tx.gas_used)
        self.chain.mine_to(info.disclose_end + 1)
        ballots: dict[int, Ballot] = {}
        owner = {u: i for i, u in rec.update_ids.items()}
        for i in voters:
            ballots[i] = Ballot.of({u: vote(i, u) for u in sorted(owner) if owner[u] != i})
            rec.gas["commitVotes"].append(rounds.commit_votes(self.members[i], tx_round, ballots[i]).gas_used)
        self.chain.mine_to(info.commit_end + 1)
        for i in voters:
            rec.gas["revealVotes"].append(rounds.reveal_votes(self.members[i], tx_round, ballots[i]).gas_used)
        self.chain.mine_to(info.reveal_end + 1)
        fin = rounds.finalize(self.members[voters[0] if voters else 0], tx_round)
        rec.gas["finalize"].append(fin.tx.gas_used)
        rec.accepted = fin.accepted_ids
        if fin.accepted_ids:
            rec.aggregate_cid = raw_cid(f"aggregate {tag} {tx_round} {fin.accepted_ids}".encode())
            for i in voters if confirmers is None else confirmers:
                if rounds.phase(tx_round) is not Phase.CONFIRM:
                    break
                rec.gas["confirmAggregate"].append(rounds.confirm_aggregate(self.members[i], tx_round, rec.aggregate_cid).gas_used)
        if claim:
            for i in range(n):
                if rounds.entitlement(tx_round, self.members[i].address):
                    result = rounds.claim(self.members[i], tx_round)
                    rec.gas["claim"].append(result.tx.gas_used)
                    rec.minted[i] = result.minted
        return rec

    def pass_proposal(self, calls: list[tuple[str, bytes]], description: str, *, voters: list[int] | None = None) -> int:
        """Take a proposal through the DAO: propose, vote for (every member by default), queue, wait, execute."""
        chosen = self.members if voters is None else [self.members[i] for i in voters]
        return pass_proposal(self.deployment, calls, description, proposer=self.members[0], voters=chosen)


def commit_and_disclose(
    deployment: Deployment, updates: Sequence[tuple[LocalAccount, UpdateDisclosure]]
) -> list[tuple[Submitted, Submitted]]:
    """Commit every ``(member, disclosure)`` in its round's submit window, mine to the disclose window
    and disclose each: the two transactions of every update, in order. The chain is left in the
    disclose window (mine to ``disclose_end + 1`` to vote)."""
    rounds = deployment.rounds
    committed = [rounds.commit_update(account, d) for account, d in updates]
    for r in sorted({d.round for _, d in updates}):
        deployment.chain.mine_to(rounds.round(r).submit_end + 1)
    return [(c, rounds.submit_update(account, d)) for c, (account, d) in zip(committed, updates)]


def pass_proposal(
    deployment: Deployment, calls: list[tuple[str, bytes]], description: str, *, proposer: LocalAccount, voters: list[LocalAccount]
) -> int:
    """On a dev chain: propose, let ``voters`` vote for, mine through the voting period, queue, wait out the timelock, execute."""
    gov, chain = deployment.governor, deployment.chain
    proposal = gov.propose(proposer, calls, description)
    chain.mine(deployment.params.voting_delay + 1)
    for voter in voters:
        gov.cast_vote(voter, proposal, 1)
    chain.mine_to(gov.deadline(proposal) + 1)
    gov.queue(proposer, calls, description)
    chain.time_travel(deployment.params.timelock_delay + 1)
    gov.execute(proposer, calls, description)
    return proposal
