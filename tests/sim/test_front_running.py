"""Front-running: a member who sees every transaction and every object announced on the network
cannot copy another member's update into the same round (the commit-reveal of submissions).

Three real nodes train and submit; a fourth member, the plagiarist, runs no node but watches
everything a member can watch while the submit window is open (every transaction's calldata, every
event, every announcement on the network) and holds a commitment of its own, as a front-runner on
a public chain would. Once the victim's update is disclosed it copies it, and finds no way to get
the copy into the round.
"""

from __future__ import annotations

import pytest

from codecoop.chain.cid import cid_to_bytes
from codecoop.chain.clients import Phase, UpdateDisclosure
from codecoop.chain.deployment import raw_cid
from codecoop.errors import ContractRevert
from codecoop.sim import Hooks, SimConfig, Simulation

pytestmark = pytest.mark.slow


def _visible(sim, first: int, last: int) -> list[bytes]:
    """Every transaction's calldata and every log's data and topics in blocks ``first`` .. ``last``."""
    w3 = sim.chain.w3
    seen = []
    for n in range(first, last + 1):
        seen += [bytes(tx.get("input", tx.get("data", b""))) for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]]
    for log in w3.eth.get_logs({"fromBlock": first, "toBlock": last}):
        seen.append(bytes(log["data"]) + b"".join(bytes(t) for t in log["topics"]))
    return seen


def test_a_plagiarist_who_sees_every_transaction_and_every_announced_object_does_not_win(tmp_path):
    config = SimConfig(
        orgs=3, rounds=1, steps=2, eval_blocks=4, max_files_per_org=10, baselines=False,
        min_improvement_micro=-(10**9), approve_min_delta_micro=-(10**9), screening=False, workdir=str(tmp_path),
    )  # fmt: skip
    watch: dict = {"learned": set(), "tries": {}}

    def on_event(e):
        rounds = sim.deployment.rounds
        r = rounds.current_round()
        if e.kind == "committed" and rounds.phase(r) is Phase.SUBMIT:
            # what the plagiarist can read now: CIDs in events, objects announced on the network
            watch["learned"] |= {u.cid for u in rounds.submitted_updates(r, sim.deployment.record.block)}
            watch["learned"] |= {cid for _, cid, _ in network.announcements}
            if "placeholder" not in watch:  # it holds an update id right behind the first honest commitment
                watch["placeholder"] = UpdateDisclosure(r, raw_cid(b"nothing to copy yet"), 1)
                watch["placeholder_id"] = rounds.commit_update(plagiarist, watch["placeholder"]).update_id
        if e.kind == "submitted" and "victim" not in watch:
            victim = next(o for o in sim.orgs if o.name == e.node).node.journal.entry(r).trained_cid
            watch["victim"] = victim
            attempts = {
                "commit a copy": lambda: rounds.commit_update(plagiarist, UpdateDisclosure(r, victim, 100)),
                "disclose a copy": lambda: rounds.submit_update(
                    plagiarist, UpdateDisclosure(r, victim, 100, salt=watch["placeholder"].salt)
                ),
            }
            for name, attempt in attempts.items():
                try:
                    attempt()
                    watch["tries"][name] = "accepted"
                except ContractRevert as exc:
                    watch["tries"][name] = exc.error

    sim = Simulation(config, Hooks(on_event=on_event))
    try:
        sim.setup()
        d = sim.deployment
        plagiarist = sim.chain.new_account()
        d.members.join(plagiarist, "12D3KooWplagiarist")
        network = sim.orgs[0].node.transport.network
        r = sim.open_round()
        opened = sim.chain.block_number
        report = sim.drive(r)
        info = d.rounds.round(r)

        # while commitments were open, no update's CID was anywhere a member could read it
        assert "placeholder" in watch and watch["learned"] == set()
        seen, later = _visible(sim, opened, info.submit_end), _visible(sim, info.submit_end + 1, sim.chain.block_number)
        for o in sim.orgs:
            raw = cid_to_bytes(o.node.journal.entry(r).trained_cid)
            assert not any(raw in blob for blob in seen), o.name
            assert any(raw in blob for blob in later), o.name  # the search finds it once it is disclosed
        # once the victim's CID was public the copy could not get in: commitments had closed, and the
        # plagiarist's own commitment does not open to the copy
        assert watch["tries"] == {"commit a copy": "WrongPhase", "disclose a copy": "RevealMismatch"}
        assert d.rounds.update(r, watch["placeholder_id"]) is None
        honest = {u.update_id for u in d.rounds.updates(r)}
        assert len(honest) == 3 and watch["placeholder_id"] not in honest
        assert set(info.accepted_ids) == honest and report.outcome == "completed"
        assert d.rounds.entitlement(r, plagiarist.address) == 0
    finally:
        sim.close()
