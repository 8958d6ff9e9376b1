"""The auditor's ledger check: every token and every model, from the chain (and the store) alone.

:func:`audit_ledger` takes a :class:`~codecoop.token.ledger.Ledger` rebuilt from events and checks:

- ``rounds``: each finalized round's decisions and requested total equal the reward rule
  (:mod:`codecoop.token.rewards`) applied to its revealed votes;
- ``mints``: every mint ties to an accepted update or an honest vote of a finalized round (claimed
  once, for the amount the rule gives) or to a welcome grant at an admission;
- ``caps``: reservations respect the epoch cap, mints the member's epoch cap, a round's claims its
  reservation;
- ``supply``: total supply equals the sum of mints, and every ERC20 mint has its ``Allocated`` event;
- ``storage``: each accepted update's CID is retrievable and verifies (with a store);
- ``aggregates``: each confirmed aggregate recomputes from its accepted updates by re-running the
  round's strategy (with a store, unless recomputation is turned off): byte-identical, or, for a
  global a node wrote as an adapter file, the same tensors bit for bit;
- ``voters``: ballots that no approval threshold explains (a measured rejection at least as good as
  an approval of the same round), and voters whose reported loss deltas
  lie far from the other voters' on the same updates;
- ``governance``: every parameter change after deployment and every release came through the timelock;
- ``concentration``: Gini, Nakamoto coefficient and top-1 share of voting power per epoch; a single
  holder with a majority is a finding.

Each problem is a :class:`Finding`; the report also carries the per-epoch and per-round series the
HTML report plots.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from codecoop.aggregation.spec import parse_strategy
from codecoop.audit.concentration import Concentration, concentration
from codecoop.errors import CodecoopError, IntegrityError, ObjectNotFound, StorageError, TensorFormatError
from codecoop.token.ledger import Ledger, Mint, Reservation, RoundRecord, welcome_ref
from codecoop.token.rewards import RoundOutcome, cap_to_member, claim_amount, decide_round, reserve

if TYPE_CHECKING:
    from codecoop.storage import ContentStore

__all__ = [
    "AuditFindings",
    "Finding",
    "CheckResult",
    "EpochStats",
    "RoundStats",
    "AuditReport",
    "audit_ledger",
    "findings_by_kind",
    "CHECKS",
]

CHECKS = ("rounds", "mints", "caps", "supply", "storage", "aggregates", "voters", "governance", "concentration")

#: A vote is an outlier when its robust z-score against the other voters on the same update reaches this.
OUTLIER_Z = 4.0
#: A voter is flagged with at least this many outlier votes...
OUTLIER_MIN_VOTES = 3
#: ...making up at least this share of its judged votes (a voter who lies in some rounds only is still caught).
OUTLIER_SHARE = 0.25


class AuditFindings(CodecoopError):
    """The audit found problems (the CLI exits non-zero with this message after printing them)."""


@dataclass(frozen=True)
class Finding:
    """One problem the audit found; ``kind`` names it (``member-cap``, ``aggregate-mismatch``...)."""

    check: str
    kind: str
    message: str
    round: int | None = None
    member: str | None = None
    block: int | None = None


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # "pass", "fail" or "skipped"
    checked: int
    detail: str = ""


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    last_block: int
    minted: int
    reserved: int
    epoch_cap: int
    balances: dict[str, int]
    power: Concentration


@dataclass(frozen=True)
class RoundStats:
    round: int
    updates: int
    accepted: int
    rejected: int
    mean_score: float | None
    completed: bool
    recomputed: bool | None


@dataclass
class AuditReport:
    """What :func:`audit_ledger` found, with the figures a person or a plot needs."""

    head: int
    addresses: dict[str, str]
    token_symbol: str
    summary: dict[str, int]
    checks: list[CheckResult]
    findings: list[Finding]
    epochs: list[EpochStats]
    rounds: list[RoundStats]
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings

    def kinds(self) -> set[str]:
        """The kinds of finding present."""
        return {f.kind for f in self.findings}

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "codecoop-audit/1",
            "clean": self.clean,
            "head": self.head,
            "addresses": self.addresses,
            "summary": self.summary,
            "checks": [asdict(c) for c in self.checks],
            "findings": [asdict(f) for f in self.findings],
            "epochs": [
                {
                    "epoch": e.epoch,
                    "last_block": e.last_block,
                    "minted": str(e.minted),
                    "reserved": str(e.reserved),
                    "epoch_cap": str(e.epoch_cap),
                    "balances": {a: str(v) for a, v in e.balances.items()},
                    "power": {**asdict(e.power), "total": str(e.power.total)},
                }
                for e in self.epochs
            ],
            "rounds": [asdict(r) for r in self.rounds],
            "timings": self.timings,
            "notes": self.notes,
        }


def audit_ledger(ledger: Ledger, *, store: ContentStore | None = None, recompute: bool = True) -> AuditReport:
    """Run every check over ``ledger``; with a ``store`` also the storage and aggregate checks.

    ``recompute=False`` skips re-running aggregation (the expensive part) but still checks that
    each accepted update is retrievable.
    """
    audit = _Audit(ledger, store)
    started = time.perf_counter()
    outcomes = audit.check_rounds()
    audit.check_mints_and_caps(outcomes)
    audit.check_supply()
    audit.check_voters()
    audit.check_governance()
    epochs = audit.epoch_series()
    checks_s = time.perf_counter() - started
    started = time.perf_counter()
    recomputed = audit.check_storage_and_aggregates(recompute)
    storage_s = time.perf_counter() - started
    rounds = [
        RoundStats(
            r.round,
            len(r.updates),
            bin(r.accepted_mask).count("1"),
            len(r.updates) - bin(r.accepted_mask).count("1") if r.finalized else 0,
            statistics.fmean(d.score for d in r.decisions if d.accepted) if any(d.accepted for d in r.decisions) else None,
            r.completed_cid is not None,
            recomputed.get(r.round),
        )
        for r in sorted(ledger.rounds.values(), key=lambda r: r.round)
    ]
    summary = {
        "members": len(ledger.members),
        "rounds": len(ledger.rounds),
        "updates": sum(len(r.updates) for r in ledger.rounds.values()),
        "votes": sum(len(b) for r in ledger.rounds.values() for b in r.ballots.values()),
        "accepted": sum(bin(r.accepted_mask).count("1") for r in ledger.rounds.values()),
        "aggregates": sum(1 for r in ledger.rounds.values() if r.completed_cid and r.accepted_mask),
        "mints": len(ledger.mints),
        "proposals": len(ledger.proposals),
        "releases": len(ledger.releases),
        "events": ledger.events,
        "total_supply": ledger.total_supply,
    }
    return AuditReport(
        head=ledger.head,
        addresses=ledger.addresses,
        token_symbol=ledger.token_symbol,
        summary=summary,
        checks=[audit.result(name) for name in CHECKS],
        findings=audit.findings,
        epochs=epochs,
        rounds=rounds,
        timings={"checks_s": checks_s, "storage_and_recompute_s": storage_s},
        notes=audit.notes,
    )


class _Audit:
    def __init__(self, ledger: Ledger, store: ContentStore | None):
        self.l = ledger
        self.store = store
        self.findings: list[Finding] = []
        self.notes: list[str] = []
        self.checked: dict[str, int] = defaultdict(int)
        self.skipped: dict[str, str] = {}

    def find(self, check: str, kind: str, message: str, **where: Any) -> None:
        self.findings.append(Finding(check, kind, message, **where))

    def result(self, name: str) -> CheckResult:
        if name in self.skipped:
            return CheckResult(name, "skipped", 0, self.skipped[name])
        failed = sum(1 for f in self.findings if f.check == name)
        return CheckResult(name, "fail" if failed else "pass", self.checked[name], f"{failed} finding(s)" if failed else "")

    # ------------------------------------------------------------------ rounds
    def check_rounds(self) -> dict[int, RoundOutcome]:
        """Re-decide every finalized round from its revealed votes and compare with the chain."""
        outcomes: dict[int, RoundOutcome] = {}
        for r in self.l.rounds.values():
            if not r.finalized:
                continue
            self.checked["rounds"] += 1
            outcome = decide_round(r.rules, r.submitters(), r.ballots)
            outcomes[r.round] = outcome
            chain = [(d.update_id, d.accepted, d.approvals, d.rejections, d.score) for d in r.decisions]
            mirror = [(d.update_id, d.accepted, d.approvals, d.rejections, d.score) for d in outcome.decisions]
            if chain != mirror or r.accepted_mask != outcome.accepted_mask or r.requested != outcome.requested:
                self.find(
                    "rounds", "reward-rule",
                    f"round {r.round}: the chain decided accepted mask {r.accepted_mask:#x} requesting {r.requested}, "
                    f"the reward rule over its revealed votes gives {outcome.accepted_mask:#x} requesting {outcome.requested}",
                    round=r.round, block=r.finalized_block,
                )  # fmt: skip
            if r.requested and r.epoch != self.l.clock.epoch_of(r.finalized_block or 0):
                self.find(
                    "rounds",
                    "epoch",
                    f"round {r.round} was charged to epoch {r.epoch}, its block is in epoch "
                    f"{self.l.clock.epoch_of(r.finalized_block or 0)}",
                    round=r.round,
                    block=r.finalized_block,
                )
        return outcomes

    # ------------------------------------------------------------------ mints and caps
    def check_mints_and_caps(self, outcomes: dict[int, RoundOutcome]) -> None:
        """Replay reservations and mints in chain order against the rule and the caps."""
        reserved: dict[int, int] = defaultdict(int)
        minted_in: dict[int, int] = defaultdict(int)
        member_minted: dict[tuple[int, str], int] = defaultdict(int)
        round_minted: dict[int, int] = defaultdict(int)
        claimed: set[tuple[int, str]] = set()
        admissions = {(b, t): m.address for m in self.l.members.values() for b, t in m.admissions}
        grants: dict[tuple[int, int], Reservation] = {}
        items: list[tuple[int, int, int, Reservation | Mint]] = [(x.block, x.tx_index, 0, x) for x in self.l.reservations]
        items += [(x.block, x.tx_index, 1, x) for x in self.l.mints]
        items.sort(key=lambda i: i[:3])
        finalize_tx = {r.finalized_block: r for r in self.l.rounds.values() if r.finalized_block is not None}
        for block, tx, _, item in items:
            if isinstance(item, Reservation):
                self.checked["caps"] += 1
                expected = reserve(item.epoch_cap, reserved[item.epoch], item.requested)
                if item.granted != expected or item.epoch != self.l.clock.epoch_of(block):
                    self.find(
                        "caps", "epoch-cap",
                        f"epoch {item.epoch}: a reservation of {item.requested} was granted {item.granted}; with "
                        f"{reserved[item.epoch]} of the cap {item.epoch_cap} taken, the token rule grants {expected}",
                        block=block,
                    )  # fmt: skip
                reserved[item.epoch] += item.granted
                if (block, tx) in admissions:
                    grants[(block, tx)] = item
                elif block not in finalize_tx:
                    self.find(
                        "mints",
                        "untied-reservation",
                        f"a reservation of {item.granted} in block {block} belongs to no round finalisation and no admission",
                        block=block,
                    )
                continue
            mint = item
            self.checked["mints"] += 1
            already = member_minted[(mint.epoch, mint.member)]
            expected_amount = self._expected_amount(mint, outcomes, claimed, admissions, grants, round_minted)
            if expected_amount is not None:
                expected = cap_to_member(expected_amount, already, mint.member_cap)
                if (mint.requested, mint.minted) != (expected_amount, expected):
                    self.find(
                        "mints", "mint-mismatch",
                        f"{mint.member} was minted {mint.minted} (asked {mint.requested}) in block {block}; the reward "
                        f"rule gives {expected_amount}, {expected} after the member cap",
                        member=mint.member, block=block, round=mint.round_id() if mint.ref != welcome_ref(mint.member) else None,
                    )  # fmt: skip
            grant = grants.get((block, tx))
            if grant is not None and mint.ref == welcome_ref(mint.member):
                reserved[grant.epoch] -= grant.granted - mint.minted  # the token hands back what the member cap cut
            self.checked["caps"] += 1
            if already + mint.minted > mint.member_cap:
                self.find(
                    "caps", "member-cap",
                    f"{mint.member} received {already + mint.minted} in epoch {mint.epoch}, over the member cap {mint.member_cap}",
                    member=mint.member, block=block,
                )  # fmt: skip
            member_minted[(mint.epoch, mint.member)] = already + mint.minted
            minted_in[mint.epoch] += mint.minted
        self.minted_in, self.reserved = dict(minted_in), dict(reserved)
        for epoch, total in minted_in.items():
            cap = self._cap_at(self.l.clock.last_block_of(epoch) or self.l.head)
            if total > reserved.get(epoch, 0) or total > cap:
                self.find(
                    "caps",
                    "epoch-cap",
                    f"epoch {epoch}: {total} minted, over its reservations ({reserved.get(epoch, 0)}) or the epoch cap ({cap})",
                )
        for r in self.l.rounds.values():
            if round_minted.get(r.round, 0) > r.granted:
                self.find(
                    "caps",
                    "round-reservation",
                    f"round {r.round}: claims minted {round_minted[r.round]}, more than its reservation {r.granted}",
                    round=r.round,
                )

    def _expected_amount(
        self,
        mint: Mint,
        outcomes: dict[int, RoundOutcome],
        claimed: set[tuple[int, str]],
        admissions: dict[tuple[int, int], str],
        grants: dict[tuple[int, int], Reservation],
        round_minted: dict[int, int],
    ) -> int | None:
        """What the token should have been asked to mint, or None (with a finding) when the mint ties to nothing."""
        where = {"member": mint.member, "block": mint.block}
        if mint.ref == welcome_ref(mint.member):
            if admissions.get((mint.block, mint.tx_index)) != mint.member or (mint.block, mint.tx_index) not in grants:
                self.find("mints", "untied-mint", f"a welcome grant of {mint.minted} to {mint.member} without its admission", **where)
                return None
            return grants[(mint.block, mint.tx_index)].granted
        round_id = mint.round_id()
        r = self.l.rounds.get(round_id) if round_id is not None else None
        if r is None or not r.finalized or (r.finalized_block or 0) > mint.block:
            self.find(
                "mints",
                "untied-mint",
                f"{mint.minted} minted to {mint.member} with ref 0x{mint.ref.hex()}: no finalized round and no welcome grant",
                **where,
            )
            return None
        round_minted[r.round] += mint.minted
        owed = outcomes[r.round].entitlements.get(mint.member, 0)
        if (r.round, mint.member) in claimed:
            self.find("mints", "double-claim", f"{mint.member} was minted rewards of round {r.round} twice", round=r.round, **where)
            return None
        claimed.add((r.round, mint.member))
        if owed == 0:
            self.find(
                "mints",
                "untied-mint",
                f"{mint.minted} minted to {mint.member} for round {r.round}, where it had "
                "no accepted update and no vote matching the outcome",
                round=r.round,
                **where,
            )
            return None
        if mint.epoch != r.epoch:
            self.find(
                "mints",
                "mint-mismatch",
                f"a claim of round {r.round} was charged to epoch {mint.epoch}, the round reserved in epoch {r.epoch}",
                round=r.round,
                **where,
            )
        return claim_amount(owed, r.requested, r.granted)

    def _cap_at(self, block: int) -> int:
        cap = 0
        for c in self.l.changes:
            if c.block > block:
                break
            if c.name == "EpochCapSet":
                cap = c.args["cap"]
        return cap

    # ------------------------------------------------------------------ supply
    def check_supply(self) -> None:
        """Total supply = sum of ERC20 mints = sum of ``Allocated``; each ERC20 mint has its ``Allocated``."""
        zero = "0x" + "00" * 20
        allocated: dict[tuple[int, int, str], int] = defaultdict(int)
        for m in self.l.mints:
            allocated[(m.block, m.tx_index, m.member)] += m.minted
        minted = burned = 0
        for t in self.l.transfers:
            if t.sender == zero:
                self.checked["supply"] += 1
                minted += t.value
                key = (t.block, t.tx_index, t.to)
                if allocated.get(key, 0) < t.value:
                    self.find(
                        "supply",
                        "untied-mint",
                        f"{t.value} minted to {t.to} in block {t.block} without an Allocated event (outside the capped issuance path)",
                        member=t.to,
                        block=t.block,
                    )
                allocated[key] = allocated.get(key, 0) - t.value
            if t.to == zero:
                burned += t.value
        if minted - burned != self.l.total_supply or sum(m.minted for m in self.l.mints) != minted:
            self.find(
                "supply", "supply",
                f"total supply is {self.l.total_supply}; ERC20 mints minus burns give {minted - burned}, "
                f"Allocated events {sum(m.minted for m in self.l.mints)}",
            )  # fmt: skip

    # ------------------------------------------------------------------ voters
    def check_voters(self) -> None:
        """Votes that contradict their own measurement; voters far from the others on the same updates."""
        inconsistent: dict[str, list[tuple[int, int]]] = defaultdict(list)
        zs: dict[str, list[float]] = defaultdict(list)
        for r in self.l.rounds.values():
            per_update: dict[int, list[tuple[str, int]]] = defaultdict(list)
            for voter, votes in r.ballots.items():
                for v in votes:
                    self.checked["voters"] += 1
                    per_update[v.update_id].append((voter, v.loss_delta))
                # A node approves when its measured delta reaches its own threshold (evaluation.approve_min_delta,
                # a node setting the chain does not hold, -20,000 micro-nats by default), so an approval with a
                # small loss increase is policy, not a lie. A contradiction is a ballot no threshold explains: a
                # measured rejection (non-zero delta; a screening refusal publishes 0) at least as good as an approval.
                approved = [v.loss_delta for v in votes if v.approve]
                rejected = [v for v in votes if not v.approve and v.loss_delta != 0]
                if approved:
                    worst_approved = min(approved)
                    for v in rejected:
                        if v.loss_delta >= worst_approved:
                            inconsistent[voter].append((r.round, v.update_id))
            floor = r.rules.reward_bound / 20  # differences below 5% of the bound are noise, never lies
            for entries in per_update.values():
                for i, (voter, delta) in enumerate(entries):
                    others = [d for j, (_, d) in enumerate(entries) if j != i]
                    if len(others) < 2:
                        continue
                    med = statistics.median(others)
                    mad = statistics.median(abs(d - med) for d in others)
                    zs[voter].append(abs(delta - med) / max(1.4826 * mad, floor))
        for voter, where in inconsistent.items():
            self.find(
                "voters",
                "inconsistent-vote",
                f"{voter} rejected {len(where)} update(s) it measured as at least as good as one it approved in the "
                f"same round (no approval threshold explains its ballot), first in round {where[0][0]}",
                member=voter,
                round=where[0][0],
            )
        for voter, scores in zs.items():
            far = [z for z in scores if z >= OUTLIER_Z]
            if len(far) >= OUTLIER_MIN_VOTES and len(far) >= OUTLIER_SHARE * len(scores):
                self.find(
                    "voters",
                    "outlier-voter",
                    f"{voter} reported loss deltas at least {OUTLIER_Z:g} robust deviations "
                    f"(median {statistics.median(far):.1f}) from the other voters' on {len(far)} of the "
                    f"{len(scores)} updates it judged",
                    member=voter,
                )

    # ------------------------------------------------------------------ governance
    def check_governance(self) -> None:
        """Every change after deployment and every release went through the timelock."""
        for c in self.l.changes:
            if c.at_deployment:
                continue
            self.checked["governance"] += 1
            if not c.via_timelock:
                self.find(
                    "governance",
                    "ungoverned-change",
                    f"{c.contract}.{c.name}{c.args} in block {c.block} did not come from a timelock execution",
                    block=c.block,
                )
        for rel in self.l.releases:
            self.checked["governance"] += 1
            if (rel.block, rel.tx_index) not in self.l.timelock_calls:
                self.find(
                    "governance",
                    "ungoverned-change",
                    f"release {rel.tag} in block {rel.block} did not come from a timelock execution",
                    block=rel.block,
                )

    # ------------------------------------------------------------------ epochs and concentration
    def epoch_series(self) -> list[EpochStats]:
        """Per epoch: minted, reserved, the cap, balances and voting-power concentration at its end."""
        out: list[EpochStats] = []
        members = list(self.l.members)
        balances: dict[str, int] = defaultdict(int)
        power: dict[str, int] = {}
        zero = "0x" + "00" * 20
        ti = vi = 0
        transfers, changes = self.l.transfers, self.l.vote_changes
        for epoch in self.l.epochs():
            end = min(self.l.clock.last_block_of(epoch) or self.l.head, self.l.head)
            while ti < len(transfers) and transfers[ti].block <= end:
                t = transfers[ti]
                if t.sender != zero:
                    balances[t.sender] -= t.value
                if t.to != zero:
                    balances[t.to] += t.value
                ti += 1
            while vi < len(changes) and changes[vi][0] <= end:
                power[changes[vi][1]] = changes[vi][2]
                vi += 1
            c = concentration({d: v for d, v in power.items() if v}, members)
            self.checked["concentration"] += 1
            if c.nakamoto == 1 and c.holders > 1:
                self.find(
                    "concentration",
                    "concentration",
                    f"epoch {epoch}: one delegate holds {c.top1:.0%} of the voting power, a majority on its own",
                )
            out.append(
                EpochStats(
                    epoch, end, self.minted_in.get(epoch, 0), self.reserved.get(epoch, 0), self._cap_at(end),
                    {a: v for a, v in balances.items() if v}, c,
                )
            )  # fmt: skip
        return out

    # ------------------------------------------------------------------ storage and aggregates
    def check_storage_and_aggregates(self, recompute: bool) -> dict[int, bool]:
        """Fetch and verify every accepted update; re-run each completed round's aggregation."""
        if self.store is None:
            self.skipped["storage"] = self.skipped["aggregates"] = "no content store given"
            return {}
        if not recompute:
            self.skipped["aggregates"] = "recomputation turned off"
        recomputed: dict[int, bool] = {}
        for r in sorted(self.l.rounds.values(), key=lambda r: r.round):
            blobs: dict[str, bytes] = {}
            for u in r.accepted:
                self.checked["storage"] += 1
                data = self._fetch(u.cid, f"accepted update {u.update_id} of round {r.round} by {u.submitter}", r.round, u.submitter)
                if data is not None:
                    blobs[u.cid] = data
            if recompute and r.completed_cid and r.accepted_mask:
                ok = self._recompute(r, blobs)
                if ok is not None:
                    recomputed[r.round] = ok
        return recomputed

    def _fetch(self, cid: str, what: str, round_id: int | None, member: str | None) -> bytes | None:
        assert self.store is not None
        try:
            return self.store.get(cid)
        except ObjectNotFound:
            self.find("storage", "missing-object", f"{what} ({cid}) is not retrievable", round=round_id, member=member)
        except IntegrityError as exc:
            self.find("storage", "tampered-object", f"{what} ({cid}) does not verify: {exc}", round=round_id, member=member)
        except StorageError as exc:
            self.find("storage", "missing-object", f"{what} ({cid}) could not be read: {exc}", round=round_id, member=member)
        return None

    def _same_tensors(self, r: RoundRecord, aggregate: Any) -> bool:
        """Whether the confirmed global holds exactly the recomputed tensors and the strategy's metadata.

        A node writes the global model as an adapter file (``codecoop.node.aggregator.global_bytes``):
        the aggregate's tensors plus the adapter's description (base model, LoRA shape), so its bytes
        differ from the bare aggregate's. The tensors are compared bit for bit; the adapter's own
        description is not re-derived (it needs the base model), which a note says.
        """
        from codecoop.tensors import from_safetensors

        assert self.store is not None and r.completed_cid is not None
        try:
            tensors, metadata = from_safetensors(self.store.get(r.completed_cid))
        except (CodecoopError, TensorFormatError):
            return False
        if not _equal_tensors(tensors, aggregate.tensors):
            return False
        if any(metadata.get(k) != v for k, v in aggregate.metadata.items()):
            return False
        self.notes.append(
            f"round {r.round}: the confirmed global's tensors equal the recomputed aggregate bit for bit; its adapter "
            "description (base model, LoRA shape) is not re-derived"
        )
        return True

    def _recompute(self, r: RoundRecord, blobs: dict[str, bytes]) -> bool | None:
        from codecoop.aggregation import Update
        from codecoop.storage import cid_of
        from codecoop.tensors import from_safetensors

        accepted = r.accepted
        if len(blobs) < len(accepted):
            self.notes.append(f"round {r.round}: aggregate not recomputed, an accepted update is unavailable")
            return None
        try:
            spec = parse_strategy(r.strategy)
            if spec.stateful:
                self.notes.append(f"round {r.round}: {spec.name} keeps its server-optimiser state off-chain; aggregate not recomputed")
                return None
            self.checked["aggregates"] += 1
            base = None
            if spec.needs_base and r.base_cid:
                base_bytes = self._fetch(r.base_cid, f"base of round {r.round}", r.round, None)
                if base_bytes is None:
                    return None
                base = from_safetensors(base_bytes)[0]
            updates = [Update.from_bytes(u.cid, blobs[u.cid], u.n_samples) for u in accepted]
            aggregate = spec.build().aggregate(updates, base=base)
            data = aggregate.to_bytes()
        except (CodecoopError, TensorFormatError) as exc:
            self.find(
                "aggregates",
                "aggregate-mismatch",
                f"round {r.round}: its accepted updates cannot be aggregated "
                f"with {r.strategy!r} ({exc}), yet aggregate {r.completed_cid} was confirmed",
                round=r.round,
            )
            return False
        cid = cid_of(data)
        if cid == r.completed_cid or self._same_tensors(r, aggregate):
            return True
        confirmers = sorted({c.member for c in r.confirmations if c.cid == r.completed_cid})
        self.find(
            "aggregates", "aggregate-mismatch",
            f"round {r.round}: the confirmed aggregate {r.completed_cid} does not recompute; {r.strategy} over its "
            f"{len(accepted)} accepted updates gives {cid}; confirmed by {', '.join(confirmers)}",
            round=r.round, block=r.completed_block,
        )  # fmt: skip
        return False


def _equal_tensors(a: dict[str, Any], b: dict[str, Any]) -> bool:
    import torch

    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def findings_by_kind(findings: Iterable[Finding]) -> dict[str, int]:
    """Number of findings of each kind."""
    counts: dict[str, int] = defaultdict(int)
    for f in findings:
        counts[f.kind] += 1
    return dict(counts)
