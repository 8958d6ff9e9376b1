"""Random sequences of join / open / submit / commit / reveal / finalize / confirm / claim / epoch
advances, with the protocol's invariants checked after every step (hypothesis stateful testing)."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from codecoop.chain import reverts
from codecoop.chain.clients import Ballot, Phase, UpdateDisclosure
from codecoop.chain.deployment import raw_cid
from codecoop.chain.devtools import DevFederation
from codecoop.chain.params import FederationParams
from codecoop.chain.units import TOKEN_UNIT
from codecoop.errors import ContractRevert

PARAMS = FederationParams(
    submit_window=25,
    disclose_window=20,
    commit_window=20,
    reveal_window=20,
    confirm_window=25,
    epoch_length=150,
    epoch_cap=300 * TOKEN_UNIT,
    member_epoch_cap=90 * TOKEN_UNIT,
    welcome_grant=10 * TOKEN_UNIT,
    submit_reward=100 * TOKEN_UNIT,
    voter_reward=5 * TOKEN_UNIT,
)
_shared: dict[str, DevFederation] = {}


def federation() -> DevFederation:
    if "fed" not in _shared:
        fed = DevFederation.create(3, PARAMS)
        fed.outsiders = [fed.chain.new_account() for _ in range(3)]
        _shared["fed"] = fed
    return _shared["fed"]


class Protocol(RuleBasedStateMachine):
    @initialize()
    def start(self):
        self.fed = federation()
        self.chain, self.deployment = self.fed.chain, self.fed.deployment
        self.snapshot = self.chain.snapshot()
        self.members = list(self.fed.members)
        self.outsiders = list(self.fed.outsiders)
        self.ballots: dict[tuple[int, str], Ballot] = {}
        self.disclosures: dict[tuple[int, str], UpdateDisclosure] = {}

    def teardown(self):
        if hasattr(self, "snapshot"):
            self.chain.revert_to(self.snapshot)

    # ---------------------------------------------------------------- helpers
    def current(self) -> tuple[int, Phase]:
        r = self.deployment.rounds.current_round()
        return r, self.deployment.rounds.phase(r) if r else Phase.NONE

    def attempt(self, action, *allowed: str):
        """Run ``action``; a revert is fine only if it is one of ``allowed``."""
        try:
            return action()
        except ContractRevert as exc:
            assert exc.error in allowed, f"unexpected revert {exc}"
            return None

    # ---------------------------------------------------------------- rules
    @rule(i=st.integers(0, 2))
    def join(self, i):
        if not self.outsiders:
            return
        account = self.outsiders.pop(i % len(self.outsiders))
        self.deployment.members.join(account, f"12D3KooWjoin{len(self.members)}")
        self.deployment.token.delegate(account)
        self.members.append(account)

    @rule(i=st.integers(0, 5))
    def open_round(self, i):
        m = self.members[i % len(self.members)]
        self.attempt(lambda: self.deployment.rounds.open_round(m), "PreviousRoundNotDone")

    @rule(i=st.integers(0, 5), n=st.integers(1, 5000))
    def submit(self, i, n):
        r, phase = self.current()
        m = self.members[i % len(self.members)]
        disclosure = UpdateDisclosure(r, raw_cid(f"{r}-{m.address}".encode()), n)
        if (
            self.attempt(lambda: self.deployment.rounds.commit_update(m, disclosure), "AlreadySubmitted", "WrongPhase", "UnknownRound")
            is not None
        ):
            self.disclosures[(r, m.address)] = disclosure

    @rule(i=st.integers(0, 5))
    def disclose(self, i):
        r, _ = self.current()
        m = self.members[i % len(self.members)]
        disclosure = self.disclosures.get((r, m.address))
        if disclosure is not None:
            self.attempt(lambda: self.deployment.rounds.submit_update(m, disclosure), "AlreadySubmitted", "WrongPhase")

    @rule(i=st.integers(0, 2))
    def outsider_submits(self, i):
        r, _ = self.current()
        if not self.outsiders:
            return
        with pytest.raises(reverts.NotActiveMember):
            self.deployment.rounds.commit_update(self.outsiders[i % len(self.outsiders)], UpdateDisclosure(r, raw_cid(b"x"), 1))

    @rule(i=st.integers(0, 5), data=st.data())
    def commit(self, i, data):
        r, phase = self.current()
        m = self.members[i % len(self.members)]
        count = self.deployment.rounds.round(r).update_count if r else 0
        own = self.deployment.rounds.participation(r, m.address).own_update if count else None
        others = [u for u in range(count) if u != own or data.draw(st.integers(0, 9)) == 0]
        ids = data.draw(st.lists(st.sampled_from(others), unique=True, max_size=len(others))) if others else []
        bound = PARAMS.reward_bound
        # mostly approvals, so that updates get accepted and rewards minted
        votes = {u: (data.draw(st.integers(0, 4)) > 0, data.draw(st.integers(-bound, 3 * bound))) for u in ids}
        ballot = Ballot.of(votes)
        if (
            self.attempt(lambda: self.deployment.rounds.commit_votes(m, r, ballot), "AlreadyCommitted", "WrongPhase", "UnknownRound")
            is not None
        ):
            self.ballots[(r, m.address)] = ballot

    @rule(i=st.integers(0, 5))
    def reveal(self, i):
        r, phase = self.current()
        m = self.members[i % len(self.members)]
        ballot = self.ballots.get((r, m.address))
        if ballot is None:
            return
        result = self.attempt(
            lambda: self.deployment.rounds.reveal_votes(m, r, ballot), "AlreadyRevealed", "WrongPhase", "SelfVote", "NotDisclosed"
        )
        if result is not None:
            try:
                self.deployment.rounds.reveal_votes(m, r, ballot)
            except reverts.AlreadyRevealed:
                pass
            except reverts.WrongPhase:  # the first reveal was mined in the window's last block: the next one runs past it
                assert self.chain.block_number + 1 > self.deployment.rounds.round(r).reveal_end
            else:
                pytest.fail("a second reveal of the same ballot was accepted")

    @rule(i=st.integers(0, 5))
    def finalize(self, i):
        r, _ = self.current()
        self.attempt(lambda: self.deployment.rounds.finalize(self.members[i % len(self.members)], r), "WrongPhase", "UnknownRound")

    @rule(i=st.integers(0, 5), honest=st.booleans())
    def confirm(self, i, honest):
        r, _ = self.current()
        cid = raw_cid(f"agg {r} {'good' if honest else 'bad'}".encode())
        self.attempt(
            lambda: self.deployment.rounds.confirm_aggregate(self.members[i % len(self.members)], r, cid),
            "WrongPhase",
            "NotEligible",
            "AlreadyConfirmed",
            "AggregateMismatch",
            "UnknownRound",
        )

    @rule(i=st.integers(0, 5), back=st.integers(0, 2))
    def claim(self, i, back):
        r, _ = self.current()
        target = r - back
        if target < 1:
            return
        self.attempt(
            lambda: self.deployment.rounds.claim(self.members[i % len(self.members)], target),
            "WrongPhase",
            "AlreadyClaimed",
            "NothingToClaim",
        )

    @rule(n=st.integers(1, 8))
    def advance(self, n):
        self.chain.mine(n)

    @rule(data=st.data())
    def everyone_plays_the_phase_then_moves_on(self, data):
        """Every member takes the current phase's action (random votes), then the chain moves to the next phase."""
        r, phase = self.current()
        if phase in (Phase.NONE, Phase.COMPLETED, Phase.FAILED):
            self.open_round(data.draw(st.integers(0, 5)))
            return
        info = self.deployment.rounds.round(r)
        if phase is Phase.SUBMIT:
            for i in range(len(self.members)):
                if data.draw(st.booleans()):
                    self.submit(i, data.draw(st.integers(1, 5000)))
            self.chain.mine_to(info.submit_end + 1)
        elif phase is Phase.DISCLOSE:
            for i in range(len(self.members)):
                if data.draw(st.integers(0, 9)) > 0:  # now and then a committed update is never disclosed
                    self.disclose(i)
            self.chain.mine_to(info.disclose_end + 1)
        elif phase is Phase.COMMIT:
            for i in range(len(self.members)):
                self.commit(i, data)
            self.chain.mine_to(info.commit_end + 1)
        elif phase is Phase.REVEAL:
            for i in range(len(self.members)):
                self.reveal(i)
            self.chain.mine_to(info.reveal_end + 1)
        elif phase is Phase.FINALIZABLE:
            self.finalize(0)
        elif phase is Phase.CONFIRM:
            for i in range(len(self.members)):
                self.confirm(i, data.draw(st.booleans()) or i % 2 == 0)
            for i in range(len(self.members)):
                self.claim(i, 0)

    @rule()
    def next_epoch(self):
        self.chain.mine_to(self.deployment.token.current_epoch_start() + PARAMS.epoch_length)

    @rule(value=st.integers(1, 10_000))
    def member_tries_to_set_a_parameter(self, value):
        with pytest.raises(reverts.OwnableUnauthorizedAccount):
            self.chain.transact(self.deployment.rounds.contract.functions.setQuorum(value), self.members[0])

    # the phase-driving rule is listed three times so that random sequences get through whole rounds
    @rule(data=st.data())
    def everyone_plays_again(self, data):
        self.everyone_plays_the_phase_then_moves_on(data)

    @rule(data=st.data())
    def everyone_plays_once_more(self, data):
        self.everyone_plays_the_phase_then_moves_on(data)

    # ---------------------------------------------------------------- invariants
    @invariant()
    @precondition(lambda self: hasattr(self, "d"))
    def ledger_holds(self):
        """Caps, supply, one reveal per member, no vote on one's own update, only members act.

        Events are read incrementally (from the last checked block) so each step costs what it added.
        """
        token, rounds = self.deployment.token, self.deployment.rounds
        seen = getattr(self, "_seen", None)
        if seen is None:
            seen = self._seen = {
                "from": self.deployment.record.block,
                "epoch": defaultdict(int),
                "member": defaultdict(int),
                "reserved": defaultdict(int),
                "mints": 0,
                "allocated": 0,
                "submitter": {},
                "revealed": set(),
            }
        head = self.chain.block_number
        start = seen["from"]
        if head < start:
            return
        for e in token.events("Allocated", from_block=start, to_block=head):
            seen["epoch"][e.args["epoch"]] += e.args["minted"]
            seen["member"][(e.args["epoch"], e.args["member"])] += e.args["minted"]
            seen["allocated"] += e.args["minted"]
        for e in token.events("Reserved", from_block=start, to_block=head):
            seen["reserved"][e.args["epoch"]] += e.args["granted"]
        for e in token.events("Transfer", from_block=start, to_block=head, **{"from": "0x" + "00" * 20}):
            seen["mints"] += e.args["value"]
        for e in rounds.events("UpdateSubmitted", from_block=start, to_block=head):
            seen["submitter"][(e.args["round"], e.args["updateId"])] = e.args["submitter"]
        active = {m.address for m in self.members}
        for e in rounds.events("VotesRevealed", from_block=start, to_block=head):
            key = (e.args["round"], e.args["voter"])
            assert key not in seen["revealed"], "a member revealed twice"
            seen["revealed"].add(key)
            assert e.args["voter"] in active
            for u in e.args["updateIds"]:
                assert seen["submitter"][(e.args["round"], u)] != e.args["voter"], "vote on own update"
        seen["from"] = head + 1
        assert all(v <= PARAMS.epoch_cap for v in seen["epoch"].values())
        assert all(v <= PARAMS.member_epoch_cap for v in seen["member"].values())
        assert all(seen["epoch"][k] <= seen["reserved"][k] for k in seen["epoch"])
        assert all(v <= PARAMS.epoch_cap for v in seen["reserved"].values())
        assert token.total_supply() == seen["mints"] == seen["allocated"]
        assert set(seen["submitter"].values()) <= active
        assert rounds.params().quorum_bps == PARAMS.quorum_bps


Protocol.TestCase.settings = settings(max_examples=10, stateful_step_count=50, deadline=None, suppress_health_check=list(HealthCheck))
test_protocol_invariants_hold_under_random_sequences = pytest.mark.slow(Protocol.TestCase)
