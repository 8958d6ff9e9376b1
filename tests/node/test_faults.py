"""Faults on the multi-process devnet: real node processes killed with SIGKILL, the IPFS daemon and the
chain restarted, a node offline for a round, a node whose view of the chain lags.

Each devnet scenario starts hardhat, the IPFS daemon and ``codecoop node run`` processes
(``codecoop.sim.devnet.Devnet``). Kill points are set with the ``CODECOOP_CRASH_AT`` test hook
(``codecoop.node.crashpoint``): the node process sends itself SIGKILL right after the named step.
What happened is counted from the chain's events, never from the nodes' own reports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from codecoop.chain import Phase
from codecoop.errors import ContractMissing
from codecoop.node.crashpoint import ENV, with_crash_point
from codecoop.node.journal import Journal
from codecoop.sim.devnet import ACCEPT_EVERY_UPDATE

needs_devnet = pytest.mark.skipif(shutil.which("npx") is None, reason="needs Node.js for the hardhat node and the IPFS daemon")


# ---------------------------------------------------------------------- the crash hook itself (fast)
def test_the_crash_hook_changes_nothing_when_the_variable_is_unset():
    def on_event(e):
        return None

    assert with_crash_point(on_event, None, environ={}) == (on_event, None)


def test_the_crash_hook_kills_the_process_with_sigkill_right_after_the_named_event():
    program = (
        "import types, sys\n"
        "from codecoop.node.crashpoint import with_crash_point\n"
        "on_event, _ = with_crash_point(lambda e: print('saw', e.kind, flush=True), None)\n"
        "on_event(types.SimpleNamespace(kind='trained'))\n"
        "on_event(types.SimpleNamespace(kind='submitted'))\n"
        "print('not reached', flush=True)\n"
    )
    proc = subprocess.run([sys.executable, "-c", program], env={**os.environ, ENV: "submitted"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert "saw trained" in proc.stdout and "saw submitted" in proc.stdout and "not reached" not in proc.stdout


def test_a_view_call_to_an_address_without_a_contract_is_contract_missing():
    from codecoop.chain import connect

    chain = connect("embedded")
    abi = [
        {"type": "function", "name": "currentRound", "inputs": [], "outputs": [{"type": "uint256", "name": ""}], "stateMutability": "view"}
    ]
    contract = chain.w3.eth.contract(address="0x" + "11" * 20, abi=abi)
    with pytest.raises(ContractMissing, match="chain was reset"):
        chain.call(contract.functions.currentRound())


def test_a_transaction_hardhat_refuses_at_send_time_keeps_its_revert_data():
    # hardhat (automining) executes a transaction when it is sent and answers a revert with an RPC
    # error whose message carries the data; a node whose view lags meets this on every late action
    from web3.exceptions import Web3RPCError

    from codecoop.chain.backend import _revert_data

    data = "0xc671406e" + "00" * 31 + "01" + "00" * 12 + "7f" * 20
    message = f"Error: VM Exception while processing transaction: reverted with an unrecognized custom error (return data: {data})"
    assert _revert_data(Web3RPCError(str({"code": -32603, "message": message}))) == data
    assert _revert_data(Exception({"code": -32603, "message": message})) == data


# ---------------------------------------------------------------------- helpers
def _count(d, event: str, who: str, address: str, round_id: int) -> int:
    return len(d.rounds.events(event, from_block=d.record.block, round=round_id, **{who: address}))


def _actions(d, address: str, round_id: int) -> dict[str, int]:
    """What one member did in one round, counted from the chain's events."""
    return {
        "submitted": _count(d, "UpdateSubmitted", "submitter", address, round_id),
        "committed": _count(d, "VotesCommitted", "voter", address, round_id),
        "revealed": _count(d, "VotesRevealed", "voter", address, round_id),
        "confirmed": _count(d, "AggregateConfirmed", "member", address, round_id),
    }


def _log(net, i: int) -> str:
    """Organisation ``i``'s node log, every run of it, with rich's line wrapping undone."""
    return " ".join(net.node_log(i).split())


def _journal(net, i: int) -> Journal:
    """The node's journal, re-read from disk (it must parse: no torn write survives a kill)."""
    assert not list(net.journal_path(i).parent.glob("*.tmp")), "a temporary journal file was left behind"
    return Journal(net.journal_path(i), deployment=net.deployment.addresses["RoundManager"])


def _config(tmp_path: Path, **kw):
    from codecoop.chain.hardhat import free_port, free_port_block
    from codecoop.sim.devnet import DevnetConfig

    orgs = kw.get("orgs", 4)
    defaults = dict(
        orgs=4,
        rounds=1,
        steps=4,
        workdir=str(tmp_path),
        # ports free on this machine now, not fixed numbers another process may hold
        chain_port=free_port(),
        ipfs_port=free_port_block(orgs),
        p2p_port=free_port_block(orgs),
        # generous windows (a killed node restarts within them, on a loaded machine too); wait_round(expect=...)
        # ends each early once every member expected has acted in it
        submit_window=400,
        disclose_window=300,
        commit_window=300,
        reveal_window=300,
        confirm_window=400,
        timeout_s=1800.0,
        poll_interval=1.0,
        # these faults are in processes, the store and the chain (org-2's lagging proxy listens on the host's
        # loopback): the nodes stay on 127.0.0.1; network faults run in namespaces in tests/sim/test_devnet.py
        namespaces="off",
    )
    return DevnetConfig(**{**defaults, **kw})


# ---------------------------------------------------------------------- kill -9 at every step
#: Every node submits whatever its own loss says (no selective update), so every member has every step.
EVERYONE_SUBMITS = ("node.min_improvement=-1000000000",)
#: ... and every update is approved and passes screening, so the round has an aggregate to compute and confirm.
EVERY_UPDATE_ACCEPTED = ACCEPT_EVERY_UPDATE
KILLS = {1: ["train-step", "committed"], 2: ["trained", "aggregated"], 3: ["submitted", "revealed"]}


@pytest.mark.slow
@pytest.mark.daemon
@needs_devnet
def test_nodes_killed_mid_train_publish_vote_and_confirm_finish_the_round_with_one_action_each(tmp_path):
    from codecoop.sim.devnet import Devnet

    cfg = _config(tmp_path, confirmations=4)  # every member must confirm: the killed ones too
    died: dict[int, list[str]] = {i: [] for i in KILLS}
    with Devnet(cfg, log=print) as net:
        for i in range(cfg.orgs):
            net.start_node(i, env={ENV: KILLS[i][0]} if i in KILLS else None, overrides=EVERY_UPDATE_ACCEPTED)
        net.wait_joined(cfg.orgs)
        r = net.open_round()

        def restart_the_dead() -> None:
            for i, proc in list(net.nodes.items()):
                if proc.poll() is None:
                    continue
                assert i in KILLS and proc.returncode == -signal.SIGKILL, (
                    f"org-{i} exited with {proc.returncode}:\n{net.node_log(i)[-3000:]}"
                )
                died[i].append(KILLS[i][len(died[i])])
                left = KILLS[i][len(died[i]) :]
                net.start_node(i, env={ENV: left[0]} if left else None, overrides=EVERY_UPDATE_ACCEPTED)

        info = net.wait_round(r, expect=cfg.orgs, on_poll=restart_the_dead)
        assert died == KILLS, f"kill points reached: {died}"
        # the round is complete on chain, but the nodes may still be journaling it: stop them before reading their files
        for i in range(cfg.orgs):
            net.stop_node(i)
        assert info.phase is Phase.COMPLETED and info.update_count == cfg.orgs
        for i, account in enumerate(net.accounts):
            assert _actions(net.deployment, account.address, r) == {"submitted": 1, "committed": 1, "revealed": 1, "confirmed": 1}, (
                f"org-{i}"
            )
            log = _log(net, i)
            for point in KILLS.get(i, []):
                assert f"crash point {point!r} reached" in log
            entry = _journal(net, i).entry(r)
            own = net.deployment.rounds.participation(r, account.address).own_update
            assert entry.trained_cid == net.deployment.rounds.update(r, own).cid
            assert entry.ballot is not None and entry.aggregate_cid == info.global_cid
        # the node killed after "trained" did not train again: one "training" line per process that trained
        assert _log(net, 2).count(" training: ") == 1


# ---------------------------------------------------------------------- a lagging view of the chain
class LaggingRpc:
    """A JSON-RPC proxy that answers reads as of the chain's head ``lag_s`` seconds ago.

    ``latest`` (and ``pending``) in calls, gas estimates, code, balance and log queries, and the
    block number itself, are replaced by the head the proxy saw ``lag_s`` seconds earlier, as from a
    load-balanced RPC endpoint behind the chain. Transactions, receipts, nonces and blocks (fees)
    go through unchanged (a stale nonce or fee is another fault). Counts the requests it rewrote.
    """

    STALE_AT = {"eth_call": 1, "eth_estimateGas": 1, "eth_getCode": 1, "eth_getBalance": 1}

    def __init__(self, upstream: str, lag_s: float):
        self.upstream, self.lag_s = upstream, lag_s
        self.heads: deque[tuple[float, int]] = deque(maxlen=10_000)
        self.rewritten = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                out = [proxy.handle(b) for b in body] if isinstance(body, list) else proxy.handle(body)
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _forward(self, request: dict) -> dict:
        req = urllib.request.Request(self.upstream, json.dumps(request).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def _stale_head(self) -> int:
        now = time.monotonic()
        head = int(self._forward({"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []})["result"], 16)
        self.heads.append((now, head))
        old = [h for t, h in self.heads if t <= now - self.lag_s]
        return old[-1] if old else self.heads[0][1]

    def handle(self, request: dict) -> dict:
        method, params = request.get("method"), list(request.get("params") or [])
        if method == "eth_blockNumber":
            self.rewritten += 1
            return {"jsonrpc": "2.0", "id": request.get("id"), "result": hex(self._stale_head())}
        if method == "eth_getLogs" and params and params[0].get("toBlock", "latest") in ("latest", "pending"):
            params[0] = {**params[0], "toBlock": hex(self._stale_head())}
            self.rewritten += 1
        elif method in self.STALE_AT:
            at = self.STALE_AT[method]
            if len(params) <= at:
                params.append("latest")
            if params[at] in ("latest", "pending"):
                params[at] = hex(self._stale_head())
                self.rewritten += 1
        return self._forward({**request, "params": params})

    def close(self) -> None:
        self.server.shutdown()


# ---------------------------------------------------------------------- IPFS restart, an offline node, a lagging node
@pytest.fixture(scope="module")
def two_rounds(tmp_path_factory):
    """Four organisations, two rounds: org-0 keeps its objects in an IPFS daemon of its own, which is
    stopped and restarted in round 1's submit window (the others use their embedded stores); org-3
    is offline for all of round 1 and comes back for round 2; org-2 sees the chain through a proxy
    that lags 6 s behind, for both rounds."""
    from codecoop.sim.devnet import Devnet

    tmp = tmp_path_factory.mktemp("faults-two-rounds")
    cfg = _config(tmp, rounds=2, confirmations=2, ipfs_orgs=(0,))
    out: dict = {"ipfs_down_s": 0.0}
    with Devnet(cfg, log=print) as net:
        lag = LaggingRpc(net.url, lag_s=6.0)
        try:
            for i in range(cfg.orgs):
                net.start_node(i, overrides=EVERY_UPDATE_ACCEPTED + ((f'chain.url="{lag.url}"',) if i == 2 else ()))
            net.wait_joined(cfg.orgs)
            assert net.stop_node(3) in (0, -signal.SIGTERM)  # offline before round 1 opens
            r1 = net.open_round()

            def ipfs_outage() -> None:
                if out["ipfs_down_s"] or net.deployment.rounds.round(r1).update_count < 1:
                    return
                began = time.monotonic()
                net.stop_ipfs(0)
                time.sleep(15)
                net.start_ipfs(0)
                out["ipfs_down_s"] = time.monotonic() - began

            out["r1"] = net.wait_round(r1, expect=3, on_poll=ipfs_outage)
            net.start_node(3, overrides=EVERY_UPDATE_ACCEPTED)
            r2 = net.open_round()
            out["r2"] = net.wait_round(r2, expect=4)
            out["actions"] = {(i, r): _actions(net.deployment, a.address, r) for i, a in enumerate(net.accounts) for r in (r1, r2)}
            out["updates"] = {r: net.deployment.rounds.updates(r) for r in (r1, r2)}
            out["addresses"] = [a.address for a in net.accounts]
            out["logs"] = {i: _log(net, i) for i in range(cfg.orgs)}
            out["rewritten"] = lag.rewritten
            for i in range(cfg.orgs):
                assert net.stop_node(i) == 0, f"org-{i} did not stop cleanly:\n{net.node_log(i)[-3000:]}"
            out["journals"] = {i: _journal(net, i) for i in range(cfg.orgs)}  # read once they stopped writing
            out["network"] = {i: net.network(i) for i in range(cfg.orgs)}
            out["org3_holds"] = {cid: net.store(3).has(cid) for cid in (out["r1"].global_cid, *(u.cid for u in out["updates"][r2]))}
        finally:
            lag.close()
    return out


@pytest.mark.slow
@pytest.mark.daemon
@needs_devnet
def test_a_round_completes_across_a_restart_of_one_organisations_ipfs_daemon(two_rounds):
    assert two_rounds["ipfs_down_s"] >= 15
    r1 = two_rounds["r1"]
    assert r1.phase is Phase.COMPLETED and r1.update_count == 3
    for i in range(3):
        assert two_rounds["actions"][(i, r1.round)]["submitted"] == 1


@pytest.mark.slow
@pytest.mark.daemon
@needs_devnet
def test_a_round_finalizes_without_an_offline_member_who_rejoins_the_next_round(two_rounds):
    r1, r2 = two_rounds["r1"], two_rounds["r2"]
    assert two_rounds["actions"][(3, r1.round)] == {"submitted": 0, "committed": 0, "revealed": 0, "confirmed": 0}
    assert r1.phase is Phase.COMPLETED and r1.revealed_count == 3
    back = two_rounds["actions"][(3, r2.round)]
    assert back["submitted"] == back["committed"] == back["revealed"] == 1
    assert r2.phase is Phase.COMPLETED and r2.update_count == 4 and r2.base_cid == r1.global_cid


@pytest.mark.slow
@pytest.mark.daemon
@needs_devnet
def test_a_member_back_from_offline_fetches_the_global_version_it_missed_over_libp2p(two_rounds):
    # org-3 computed no aggregate in round 1: the round-1 global model it trains on in round 2 came from a peer
    assert all(two_rounds["org3_holds"].values()), two_rounds["org3_holds"]
    counters = two_rounds["network"][3]
    peer_updates = sum(1 for u in two_rounds["updates"][two_rounds["r2"].round] if u.submitter != two_rounds["addresses"][3])
    assert set(counters.by_path) == {"libp2p"} and counters.objects >= 1 + peer_updates, counters.summary()
    assert sum(row["objects"] for row in counters.by_peer.values()) == counters.objects


@pytest.mark.slow
@pytest.mark.daemon
@needs_devnet
def test_a_node_with_a_lagging_chain_view_never_acts_twice_and_keeps_its_journal_consistent(two_rounds):
    assert two_rounds["rewritten"] > 0
    me = two_rounds["addresses"][2]
    journal = two_rounds["journals"][2]
    for rep in (two_rounds["r1"], two_rounds["r2"]):
        acts = two_rounds["actions"][(2, rep.round)]
        assert acts["submitted"] == acts["committed"] == acts["revealed"] == 1 and acts["confirmed"] <= 1
        entry = journal.entry(rep.round)
        mine = [u for u in two_rounds["updates"][rep.round] if u.submitter == me]
        assert len(mine) == 1 and entry.trained_cid == mine[0].cid and entry.ballot is not None
    # every other action counted on the chain is at most one per member and round
    assert all(v <= 1 for acts in two_rounds["actions"].values() for v in acts.values())
    assert "Traceback" not in two_rounds["logs"][2]


# ---------------------------------------------------------------------- the chain restarted (hardhat keeps no state)
@pytest.mark.slow
@pytest.mark.daemon
@needs_devnet
def test_a_reset_chain_stops_the_nodes_with_a_clear_error_and_the_stale_deployment_is_refused(tmp_path):
    from codecoop.chain import connect, deploy
    from codecoop.sim.devnet import Devnet

    cfg = _config(tmp_path, orgs=2)
    with Devnet(cfg, log=print) as net:
        for i in range(cfg.orgs):
            net.start_node(i, overrides=EVERYONE_SUBMITS)  # the wait below needs both submissions, whatever training gives
        net.wait_joined(cfg.orgs)
        r = net.open_round()
        old = net.deployment.addresses["RoundManager"]
        deadline = time.monotonic() + 600
        while net.deployment.rounds.round(r).update_count < cfg.orgs:
            assert time.monotonic() < deadline, "the nodes did not submit"
            time.sleep(1)
        net.stop_chain()
        time.sleep(5)  # the nodes meet a chain that does not answer, and wait for it
        net.start_chain()
        for i in range(cfg.orgs):
            proc = net.nodes[i]
            proc.wait(timeout=180)
            log = _log(net, i)
            assert proc.returncode == 1, log[-3000:]
            assert "no contract answers at the deployment's address" in log and "Traceback" not in log
            journal = Journal(net.journal_path(i), deployment=old)  # intact, and still the old deployment's
            assert journal.entry(r).trained_cid is not None

        # recovery: a new deployment; the old record and the old journal are both refused, with what to do
        fresh = deploy(connect(net.url), net.deployment.record.params)
        fresh.save(tmp_path / "deployment-2.json")
        stale = net.start_node(0)
        stale.wait(timeout=300)
        assert stale.returncode == 1 and "wrong chain or it was reset" in _log(net, 0)
        same_folder = net.start_node(0, overrides=(f'chain.deployment="{tmp_path / "deployment-2.json"}"',))
        same_folder.wait(timeout=300)
        assert same_folder.returncode == 1
        assert f"belongs to the deployment at {old}" in _log(net, 0) and "use another data folder" in _log(net, 0)
