"""The multi-process network: hardhat and three `codecoop node run` processes, each with its own store,
exchanging every update over libp2p."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from codecoop.sim.devnet import ACCEPT_EVERY_UPDATE, DevnetConfig, run_devnet
from codecoop.storage import LocalStore
from tests.node.test_faults import _actions


def _free_ports(orgs: int) -> dict[str, int]:
    """Ports free on this machine now for a devnet of ``orgs`` organisations (not fixed numbers another process may hold)."""
    from codecoop.chain.hardhat import free_port, free_port_block

    return {"chain_port": free_port(), "ipfs_port": free_port_block(orgs), "p2p_port": free_port_block(orgs)}


pytestmark = [pytest.mark.slow, pytest.mark.daemon]


@pytest.mark.skipif(shutil.which("npx") is None, reason="needs Node.js for the hardhat node")
def test_three_node_processes_with_separate_stores_fetch_every_peer_update_over_libp2p(tmp_path):
    rounds = 2
    cfg = DevnetConfig(
        orgs=3, rounds=rounds, steps=4, workdir=str(tmp_path), node_overrides=ACCEPT_EVERY_UPDATE, **_free_ports(3),
        submit_window=200, disclose_window=150, commit_window=120, reveal_window=120, confirm_window=150, timeout_s=1500.0,
    )  # fmt: skip
    result = run_devnet(cfg, log=print)
    assert result.rounds_completed == rounds and all(c.startswith("bafk") for c in result.global_cids)
    from codecoop.sim.netns import unavailable

    why = unavailable()
    assert result.network_mode.startswith("network namespaces" if why is None else f"loopback: every node on 127.0.0.1 ({why})")
    served = fetched = holders_of_last = 0
    for i, me in enumerate(result.addresses):
        store = LocalStore(Path(result.workdir) / f"org-{i}" / "node-data" / "store")
        peer_updates = [cid for r in result.updates.values() for who, cid in r if who != me]
        assert len(peer_updates) == 2 * rounds, "every organisation submitted in every round"
        # nothing is shared: the peers' updates are in this organisation's own store because it fetched them
        assert all(store.has(cid) for cid in peer_updates)
        # every global version a later round trained on: aggregated here or fetched (the last one only by
        # those that aggregated it before the round completed: nobody needs it afterwards)
        assert all(store.has(cid) for cid in result.global_cids[:-1])
        holders_of_last += store.has(result.global_cids[-1])
        counters = result.network[i]
        assert set(counters["by_path"]) == {"libp2p"}, counters
        # each peer update once, and at most one global version per round it did not aggregate itself
        assert len(peer_updates) <= counters["objects"] <= len(peer_updates) + rounds, counters
        fetched += counters["objects"]
        served += sum(row["objects"] for row in counters["served"].values())
    assert served == fetched, "every object fetched was served by another organisation's node"
    assert holders_of_last >= 2, "the confirmations of the last round"


def test_the_devnet_says_how_its_organisations_are_connected_and_refuses_namespaces_it_cannot_make(tmp_path, monkeypatch):
    import codecoop.sim.netns as netns
    from codecoop.errors import CodecoopError
    from codecoop.sim.devnet import Devnet

    monkeypatch.setattr(netns, "unavailable", lambda: "making network namespaces needs root")
    net = Devnet(DevnetConfig(orgs=2, namespaces="auto", workdir=str(tmp_path)), log=lambda m: None)
    net._start_network()
    assert net.netns is None and net.host_address(1) == "127.0.0.1"
    assert net.network_mode == "loopback: every node on 127.0.0.1 (making network namespaces needs root)"
    with pytest.raises(CodecoopError, match="no link of its own"):
        net.set_link(1, False)
    strict = Devnet(DevnetConfig(orgs=2, namespaces="on", workdir=str(tmp_path)), log=lambda m: None)
    with pytest.raises(CodecoopError, match="cannot put the organisations in network namespaces: making network namespaces needs root"):
        strict._start_network()


@pytest.mark.skipif(shutil.which("npx") is None, reason="needs Node.js for the hardhat node")
def test_an_organisation_cut_off_for_a_round_misses_it_then_catches_up_with_no_double_action(tmp_path):
    from codecoop.chain import Phase
    from codecoop.sim.devnet import Devnet
    from codecoop.sim.netns import unavailable

    if (why := unavailable()) is not None:
        pytest.skip(f"needs network namespaces: {why}")
    cfg = DevnetConfig(
        orgs=3, steps=4, workdir=str(tmp_path), namespaces="on", node_overrides=ACCEPT_EVERY_UPDATE, **_free_ports(3),
        submit_window=200, disclose_window=150, commit_window=120, reveal_window=120, confirm_window=150, timeout_s=1500.0,
    )  # fmt: skip
    with Devnet(cfg, log=print) as net:
        assert net.network_mode.startswith("network namespaces")
        for i in range(cfg.orgs):
            net.start_node(i)
        net.wait_joined(cfg.orgs)
        net.set_link(1, False)  # org-1 keeps its chain connection, but reaches no peer
        r1 = net.open_round()
        first = net.wait_round(r1, expect=cfg.orgs)
        net.set_link(1, True)
        r2 = net.open_round()
        second = net.wait_round(r2, expect=cfg.orgs)
        rounds = net.deployment.rounds
        me = net.accounts[1].address
        by_org1 = [u.update_id for u in rounds.updates(r1) if u.submitter == me]
        for i in range(cfg.orgs):
            net.stop_node(i)
        counters = net.network(1)
        held = net.store(1)
        assert first.phase is Phase.COMPLETED and second.phase is Phase.COMPLETED
        # cut off, org-1's update could not reach the others, who refused what they could not fetch
        assert by_org1 and not set(by_org1) & set(first.accepted_ids)
        # back online, it fetched the round-1 global model it had not computed, and its round-2 update was accepted
        assert held.has(first.global_cid) and second.base_cid == first.global_cid
        assert any(u.submitter == me and u.update_id in second.accepted_ids for u in rounds.updates(r2))
        assert counters.failures > 0 and counters.by_path["libp2p"]["objects"] >= 1 + 2
        for r in (r1, r2):  # never more than one action of a kind per member and round
            for a in net.accounts:
                assert all(n <= 1 for n in _actions(net.deployment, a.address, r).values()), (r, a.address)


@pytest.mark.skipif(shutil.which("npx") is None, reason="needs Node.js for the hardhat node")
def test_a_submitter_killed_after_registering_and_a_member_admitted_at_round_2_do_not_stop_the_federation(tmp_path):
    import signal
    import time

    from codecoop.chain import MemberStatus, Phase
    from codecoop.node.crashpoint import ENV
    from codecoop.sim.devnet import Devnet

    cfg = DevnetConfig(
        orgs=4, steps=4, workdir=str(tmp_path), node_overrides=ACCEPT_EVERY_UPDATE, **_free_ports(4),
        submit_window=200, disclose_window=150, commit_window=120, reveal_window=120, confirm_window=150, timeout_s=1500.0,
    )  # fmt: skip
    with Devnet(cfg, log=print) as net:
        for i in range(3):  # org-3 is not a member yet
            net.start_node(i, env={ENV: "submitted"} if i == 2 else None)
        net.wait_joined(3)
        rounds, members = net.deployment.rounds, net.deployment.members
        gone, late = net.accounts[2].address, net.accounts[3].address
        r1 = net.open_round()
        # org-2 dies right after its submitUpdate and never comes back: the others judge and aggregate its update
        first = net.wait_round(r1, expect=(3, 2, 2))
        assert net.nodes[2].poll() == -signal.SIGKILL
        r2 = net.open_round()

        def admit_late() -> None:  # org-3 joins once round 2's submit window is over: too late to submit in it
            if 3 not in net.nodes and rounds.phase(r2) is not Phase.SUBMIT:
                net.start_node(3)

        second = net.wait_round(r2, expect=(2, 2, 2), on_poll=admit_late)
        deadline = time.monotonic() + 600
        while members.status(late) is not MemberStatus.ACTIVE and time.monotonic() < deadline and net.nodes[3].poll() is None:
            time.sleep(1)
        assert members.status(late) is MemberStatus.ACTIVE, net.node_log(3)[-3000:]
        r3 = net.open_round()
        third = net.wait_round(r3, expect=(3, 3, 3))
        for i in (0, 1, 3):
            net.stop_node(i)
        org2_log = " ".join(net.node_log(2).split())
        assert "offered update" in org2_log and "crash point 'submitted' reached" in org2_log
        assert all(info.phase is Phase.COMPLETED for info in (first, second, third))
        theirs = next(u for u in rounds.updates(r1) if u.submitter == gone)
        assert theirs.update_id in first.accepted_ids, "judged and aggregated from the copies its peers took before it registered"
        assert net.store(0).has(theirs.cid) and net.store(1).has(theirs.cid)
        assert not any(u.submitter == late for u in rounds.updates(r2))
        # admitted at round 2, org-3 trained round 3 from the round-2 global model, which it fetched from a peer
        assert third.base_cid == second.global_cid and net.store(3).has(second.global_cid)
        assert any(u.submitter == late and u.update_id in third.accepted_ids for u in rounds.updates(r3))
        counters = net.network(3)
        assert set(counters.by_path) == {"libp2p"} and counters.objects >= 1 + 2, counters.summary()
