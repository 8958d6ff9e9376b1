"""``codecoop ui --demo``: a short federation on the embedded chain, served while it runs.

Three organisations train ``tiny`` through a few real rounds (the one-process simulation, the same
nodes as ``codecoop sim``). Between rounds the DAO passes a parameter change; after the last it
releases the newest global model as ``v1`` and leaves one proposal open for the visitor to vote on
from the page. The dashboard signs as a member of its own (a welcome grant gives it voting power);
"My node" shows org-0's journal.
Once the federation is done, a block is mined every ``block_s`` seconds so that the live view, the
open proposal's voting period and the timelock keep moving.
"""

from __future__ import annotations

import tempfile
import threading
import traceback
from collections.abc import Callable
from typing import Any

from codecoop.ui.dashboard import Dashboard

__all__ = ["DemoFederation"]


class _NodeView:
    """What 'My node' reads of a node configuration, for the demo's org-0 (its journal's folder, its DP delta)."""

    def __init__(self, node: Any):
        self.folder = node.journal.path.parent
        self._delta = node.settings.train.dp_delta

    def __getitem__(self, key: str) -> Any:
        if key != "training.dp_delta":
            raise KeyError(key)
        return self._delta


class DemoFederation:
    """The demo's simulation, its dashboard, and the thread that drives both."""

    def __init__(
        self,
        *,
        rounds: int = 3,
        orgs: int = 3,
        steps: int = 8,
        block_s: float = 2.0,
        log: Callable[[str], None] = print,
        accept_every_update: bool = False,
    ):
        """``accept_every_update``: every member submits and approves whatever its training gives, and
        screening lets every update through (so that a release always exists, e.g. for a test)."""
        from codecoop.sim import Hooks, SimConfig, Simulation

        self.rounds, self.block_s, self.log = rounds, block_s, log
        self._tmp = tempfile.TemporaryDirectory(prefix="codecoop-ui-demo-")
        forced: dict[str, Any] = (
            dict(min_improvement_micro=-(10**9), approve_min_delta_micro=-(10**9), screening=False) if accept_every_update else {}
        )
        config = SimConfig(
            orgs=orgs, rounds=rounds, steps=steps, model="tiny", baselines=False, max_files_per_org=20, eval_blocks=4,
            workdir=self._tmp.name, **forced,
        )  # fmt: skip
        self.sim = Simulation(config, Hooks(log=log))
        self.dashboard: Dashboard | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.done = threading.Event()
        self.error: str | None = None

    def start(self) -> Dashboard:
        """Set the federation up (loads tiny, deploys), then drive it in a thread; return its dashboard."""
        sim = self.sim
        sim.setup()
        d = sim.deployment
        voter = sim.chain.new_account()
        d.members.join(voter, "codecoop-ui-demo", [])
        d.token.delegate(voter)
        self.voter = voter
        org0 = sim.orgs[0].node
        self.dashboard = Dashboard(
            d, store=org0.store, signer=voter, demo=True, config=_NodeView(org0), node_address=org0.address, log=self.log
        )
        self.dashboard.status = "starting"
        self._thread = threading.Thread(target=self._run, name="codecoop-ui-demo", daemon=True)
        self._thread.start()
        return self.dashboard

    def _run(self) -> None:
        from codecoop.chain.devtools import pass_proposal
        from codecoop.governance import release, set_parameter

        db, sim = self.dashboard, self.sim
        assert db is not None
        d = sim.deployment
        voters = [o.node.account for o in sim.orgs] + [self.voter]
        try:
            last = None
            for r in range(1, self.rounds + 1):
                if self._stop.is_set():
                    return
                db.status = f"round {r} of {self.rounds}"
                last = sim.run_round()
                if r == 1:
                    db.status = "the DAO sets the quorum to 60%"
                    change = set_parameter(
                        d, [("quorum", "6000")], "Lower the approval quorum to 60% so that a member's update needs fewer approvals"
                    )
                    pass_proposal(d, list(change.calls), change.description, proposer=voters[0], voters=voters)
            if last is not None and last.global_cid:
                db.status = "the DAO releases v1"
                rel = release(d, "v1", last.global_cid, description=f"Release v1: the global model of round {last.round}")
                pass_proposal(d, list(rel.calls), rel.description, proposer=voters[0], voters=voters)
            open_one = set_parameter(d, [("confirmations", "3")], "Require 3 matching confirmations per round (open for your vote)")
            d.governor.propose(voters[1], list(open_one.calls), open_one.description)
            db.status = f"{self.rounds} rounds done; one proposal open for your vote; a block every {self.block_s:g} s"
        except Exception as exc:  # noqa: BLE001 - shown on every page of the demo
            self.error = f"{type(exc).__name__}: {exc}"
            db.status = f"stopped: {self.error}"
            self.log(traceback.format_exc())
            return
        finally:
            self.done.set()
        while not self._stop.wait(self.block_s):
            sim.chain.mine(1)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        self.sim.close()
        self._tmp.cleanup()

    def __enter__(self) -> DemoFederation:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
