"""The ledger followed block by block equals the ledger rebuilt at once, at every head."""

from __future__ import annotations

from dataclasses import asdict

from codecoop.token.ledger import Ledger, LedgerFollower


def _state(ledger: Ledger) -> dict:
    return {
        "head": ledger.head, "events": ledger.events, "supply": ledger.total_supply,
        "members": {a: asdict(m) for a, m in ledger.members.items()}, "rounds": {r: asdict(x) for r, x in ledger.rounds.items()},
        "mints": ledger.mints, "transfers": ledger.transfers, "votes": ledger.vote_changes, "changes": ledger.changes,
        "proposals": {i: asdict(p) for i, p in ledger.proposals.items()}, "releases": ledger.releases,
    }  # fmt: skip


def test_advancing_in_steps_folds_the_same_ledger_as_one_rebuild(history):
    d = history.fed.deployment
    head = d.chain.block_number
    follower = LedgerFollower(d)
    seen = 0
    for stop in (d.record.block + 5, head // 2, head // 2, head - 3, head):  # uneven steps, one of them empty
        seen += len(follower.advance(stop))
        assert _state(follower.ledger) == _state(Ledger.from_deployment(d, stop))
    assert seen == follower.ledger.events > 0 and follower.advance(head) == []
    history.sim.run_round()  # new blocks: only they are read
    new = follower.advance()
    assert new and {e.name for e in new} >= {"RoundOpened", "UpdateSubmitted", "RoundFinalized"}
    assert _state(follower.ledger) == _state(Ledger.from_deployment(d))
