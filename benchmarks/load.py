"""Load: a round in which every member submits an update and votes on every other one.

``python benchmarks/load.py [--quick] [--no-hardhat]``

For N in {4, 16, 50} members, one round through the contracts (``DevFederation.run_round``, the
code path of ``benchmarks/gas.py``): N updates, N x (N - 1) votes committed and revealed, finalize,
the confirmations that complete it, and every member's claim. A fifth of the updates are harmful
and a seventh of the voters invert their judgement, so the tallies are mixed; every update must be
decided exactly as the quorum rule says. Measured on the embedded eth-tester chain and on a hardhat
node over JSON-RPC: gas and wall time per round, gas per member, the largest transaction against
the block gas limit.

All-to-all voting is N x (N - 1) ballot entries, so a member's gas grows with N (its reveal carries
N - 1 votes) and a round's with N^2. What must not happen is anything faster. A member's gas is its
own transactions (submit, commit, reveal, claim) plus its share of the round's (open, finalize,
confirmations); the targets check that the first is within 10% of the straight line through 4 and
16 members at 50, that neither the gas of one vote nor the shared gas per member grows, and that the
largest transaction, projected to a full round of 112 updates (the contract's limit), fits a block.

Full run: a warm-up round before the measured one (steady state: members hold tokens and vote
checkpoints; the measured round opens a fresh epoch, so its rewards are paid) and every size on
hardhat too. ``--quick``: first rounds only, 50 members on hardhat.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, print_table, print_targets, target, write_results  # noqa: E402

from codecoop.chain.backend import Chain, connect  # noqa: E402
from codecoop.chain.devtools import DevFederation  # noqa: E402

SIZES = (4, 16, 50)
#: Transactions every member sends in a round; the rest (open, finalize, confirm) is per round.
MEMBER_OPS = ("submitUpdate", "commitVotes", "revealVotes", "claim")
#: RoundManager.MAX_UPDATES: the vote bit masks are 112 bits wide (docs/CONTRACTS.md).
MAX_UPDATES = 112


def harmful(update: int) -> bool:
    """A fifth of the updates are harmful: honest voters reject them."""
    return update % 5 == 4


def liar(voter: int) -> bool:
    """A seventh of the voters invert their judgement."""
    return voter % 7 == 3


def vote(voter: int, update: int) -> tuple[bool, int]:
    """The ballot entry of ``voter`` on ``update``: (approve, loss delta in micro-nats)."""
    approve = harmful(update) == liar(voter)
    return approve, (20_000 + 500 * (update % 10)) if approve else -30_000


def expected_accepted(n: int, quorum_bps: int) -> tuple[int, ...]:
    """What RoundManager must accept when every member votes on every other update: approvals exceed
    rejections and reach ``quorum_bps`` of the revealers other than the submitter."""
    out = []
    for u in range(n):
        approvals = sum(vote(v, u)[0] for v in range(n) if v != u)
        rejections = n - 1 - approvals
        if approvals > rejections and approvals * 10_000 >= quorum_bps * (n - 1):
            out.append(u)
    return tuple(out)


@dataclass
class RoundLoad:
    """One measured round."""

    backend: str
    members: int
    round: int
    wall_s: float
    setup_s: float
    transactions: int
    gas_total: int
    gas_by_op: dict[str, int]
    max_tx_gas: int
    max_tx_op: str
    block_gas_limit: int
    votes: int
    decided: int
    accepted: tuple[int, ...]
    expected: tuple[int, ...]
    requested: int
    granted: int
    minted: int
    claims: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def correct(self) -> bool:
        """Every update decided, exactly the expected ones accepted, all ballots revealed."""
        n = self.members
        return self.decided == n and self.accepted == self.expected and self.votes == n * (n - 1)

    @property
    def gas_per_member(self) -> float:
        return self.gas_total / self.members

    @property
    def gas_per_vote(self) -> float:
        """Reveal gas per ballot entry."""
        return self.gas_by_op["revealVotes"] / self.votes

    @property
    def own_gas_per_member(self) -> float:
        """A member's own transactions: submit, commit, reveal (its N - 1 votes) and claim."""
        return sum(self.gas_by_op[op] for op in MEMBER_OPS) / self.members

    @property
    def shared_gas_per_member(self) -> float:
        """The round's own transactions (open, finalize, confirmations), shared by its members."""
        return (self.gas_total - sum(self.gas_by_op[op] for op in MEMBER_OPS)) / self.members


def measure(n: int, *, chain: Chain | None = None, backend: str = "eth-tester", warmup: bool = False) -> RoundLoad:
    """Deploy a federation of ``n`` members on ``chain`` (a fresh embedded chain by default) and
    measure one all-to-all round (after a warm-up round when asked)."""
    t0 = time.perf_counter()
    fed = DevFederation.create(n, chain=chain)
    if warmup:
        fed.run_round(vote=vote, tag="warm-up")
        # A fresh epoch: the warm-up spent this one's issuance cap, and the measured round must pay.
        token = fed.deployment.token
        fed.chain.mine_to(token.current_epoch_start() + fed.deployment.params.epoch_length)
    setup_s = time.perf_counter() - t0
    w3, rounds = fed.chain.w3, fed.deployment.rounds
    start = fed.chain.block_number
    t0 = time.perf_counter()
    rec = fed.run_round(vote=vote, tag="load")
    wall_s = time.perf_counter() - t0
    end = fed.chain.block_number
    gas_total = transactions = max_tx = 0
    for number in range(start + 1, end + 1):  # one transaction per block on both dev chains
        block = w3.eth.get_block(number)
        gas_total += block["gasUsed"]
        transactions += len(block["transactions"])
        max_tx = max(max_tx, block["gasUsed"])
    by_op = {op: sum(g) for op, g in rec.gas.items()}
    by_op["openRound"] = gas_total - sum(by_op.values())
    max_op = max(rec.gas, key=lambda op: max(rec.gas[op]))
    decided = rounds.events("UpdateDecided", from_block=start, round=rec.round)
    revealed = rounds.events("VotesRevealed", from_block=start, round=rec.round)
    info = rounds.round(rec.round)
    return RoundLoad(
        backend=backend,
        members=n,
        round=rec.round,
        wall_s=round(wall_s, 2),
        setup_s=round(setup_s, 2),
        transactions=transactions,
        gas_total=gas_total,
        gas_by_op=by_op,
        max_tx_gas=max_tx,
        max_tx_op=max_op if max(rec.gas[max_op]) == max_tx else "openRound",
        block_gas_limit=w3.eth.get_block("latest")["gasLimit"],
        votes=sum(len(e.args["updateIds"]) for e in revealed),
        decided=len(decided),
        accepted=tuple(e.args["updateId"] for e in decided if e.args["accepted"]),
        expected=expected_accepted(n, fed.deployment.params.quorum_bps),
        requested=info.requested,
        granted=info.granted,
        minted=sum(rec.minted.values()),
        claims=len(rec.minted),
        extra={"reveal_max": max(rec.gas["revealVotes"]), "finalize": max(rec.gas["finalize"])},
    )


def on_hardhat(sizes: tuple[int, ...], warmup: bool) -> list[RoundLoad]:
    """The same rounds on a hardhat node started for the purpose (one deployment per size)."""
    from codecoop.chain.hardhat import HardhatNode

    log = Path(tempfile.gettempdir()) / "codecoop-load-hardhat.log"
    with HardhatNode(log_path=log, timeout=90) as node:
        return [measure(n, chain=connect(node.url), backend="hardhat", warmup=warmup) for n in sizes]


def linear_excess(values: dict[int, float]) -> float:
    """Value at 50 over the straight line through the values at 4 and 16 (1.0: exactly linear)."""
    slope = (values[16] - values[4]) / (16 - 4)
    return values[50] / (values[16] + slope * (50 - 16))


def projected_max_tx(loads: dict[int, RoundLoad]) -> tuple[int, str]:
    """The largest transaction of a 112-update round, from the per-vote and per-update slopes."""
    a, b = loads[4], loads[50]
    reveal = b.extra["reveal_max"] + (b.extra["reveal_max"] - a.extra["reveal_max"]) / (49 - 3) * (MAX_UPDATES - 1 - 49)
    finalize = b.extra["finalize"] + (b.extra["finalize"] - a.extra["finalize"]) / (50 - 4) * (MAX_UPDATES - 50)
    return (round(reveal), "revealVotes") if reveal >= finalize else (round(finalize), "finalize")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="first rounds only; 50 members on hardhat")
    parser.add_argument("--no-hardhat", action="store_true", help="eth-tester only (no hardhat node)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    warmup = not args.quick
    loads: list[RoundLoad] = []
    for n in SIZES:
        loads.append(measure(n, warmup=warmup))
        print(f"  eth-tester, {n} members: round in {loads[-1].wall_s:.1f} s")
    hardhat_note = None
    if not args.no_hardhat:
        try:
            loads += on_hardhat((50,) if args.quick else SIZES, warmup)
            for load in loads[len(SIZES) :]:
                print(f"  hardhat, {load.members} members: round in {load.wall_s:.1f} s")
        except Exception as exc:  # a missing npm hardhat must not cost the embedded figures
            hardhat_note = f"hardhat not measured: {exc}"
            print(f"  {hardhat_note}")

    print("\none all-to-all round (N updates, N x (N-1) votes, finalize, confirmations, N claims)")
    print_table(
        ["backend", "N", "txs", "wall s", "gas/round", "gas/member", "own txs/member", "shared/member", "gas/vote", "largest tx", "accepted", "as expected"],
        [
            [load.backend, load.members, load.transactions, f"{load.wall_s:.1f}", f"{load.gas_total:,}", f"{load.gas_per_member:,.0f}",
             f"{load.own_gas_per_member:,.0f}", f"{load.shared_gas_per_member:,.0f}", f"{load.gas_per_vote:,.0f}",
             f"{load.max_tx_gas:,} ({load.max_tx_op})", f"{len(load.accepted)}/{load.members}", "yes" if load.correct else "NO"]
            for load in loads
        ],
    )  # fmt: skip

    embedded = {load.members: load for load in loads if load.backend == "eth-tester"}
    big = embedded[50]
    projected, projected_op = projected_max_tx(embedded)
    targets = [
        target("updates decided as the quorum rule says (every size and backend)", sum(load.correct for load in loads) / len(loads), 1.0, ">="),
        target("member's own gas at 50 / linear through 4 and 16", round(linear_excess({n: load.own_gas_per_member for n, load in embedded.items()}), 4), 1.1, "<="),
        target("gas per vote at 50 / at 4", round(big.gas_per_vote / embedded[4].gas_per_vote, 4), 1.1, "<="),
        target("shared round gas per member at 50 / at 4", round(big.shared_gas_per_member / embedded[4].shared_gas_per_member, 4), 1.1, "<="),
        target("largest transaction at 50 members / block gas limit", round(max(load.max_tx_gas / load.block_gas_limit for load in loads), 4), 1.0, "<="),
        target(f"largest transaction projected to {MAX_UPDATES} updates / block gas limit", round(projected / big.block_gas_limit, 4), 1.0, "<="),
        target("claims / reserved rewards at 50 members", round(big.minted / big.granted, 6) if big.granted else float(big.minted > 0), 1.0, "<="),
    ]  # fmt: skip
    hardhat = {load.members: load for load in loads if load.backend == "hardhat"}
    if 50 in hardhat:
        targets.append(target("hardhat gas per round at 50 / eth-tester", round(hardhat[50].gas_total / big.gas_total, 4), 1.01, "<="))
    path = write_results(
        "load",
        {
            "machine": machine(),
            "quick": args.quick,
            "seconds": round(time.perf_counter() - t0, 1),
            "steady_state": warmup,
            "hardhat": hardhat_note or "measured",
            "projected_largest_tx": {"updates": MAX_UPDATES, "gas": projected, "operation": projected_op},
            "rounds": [
                {
                    **asdict(load),
                    "gas_per_member": round(load.gas_per_member),
                    "own_gas_per_member": round(load.own_gas_per_member),
                    "shared_gas_per_member": round(load.shared_gas_per_member),
                    "gas_per_vote": round(load.gas_per_vote),
                    "correct": load.correct,
                }
                for load in loads
            ],
        },  # fmt: skip
        targets,
    )
    print("\ntargets")
    print_targets(targets)
    print(f"results written to {path}")
    return 0 if all(t["met"] for t in targets) else 1


if __name__ == "__main__":
    raise SystemExit(main())
