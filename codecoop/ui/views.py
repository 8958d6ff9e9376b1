"""The data of each dashboard page, from the ledger (events folded so far) and a few chain reads.

Each function takes the :class:`~codecoop.ui.dashboard.Dashboard` and returns plain dicts and lists
for a template. Everything in them that came from the chain or the store (descriptions, reasons,
tags, peer ids, metadata documents) is attacker-controlled text: the templates escape it all
(Jinja2 autoescape), and chart data goes to the page as JSON inside a non-executable script tag.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from codecoop.chain.units import to_tokens

__all__ = [
    "overview",
    "rounds_table",
    "round_detail",
    "members_table",
    "proposals_table",
    "proposal_detail",
    "models_table",
    "node_journal",
    "cid_detail",
    "member_detail",
]

SUPPORT = {0: "against", 1: "for", 2: "abstain"}
#: A member counts as online when it sent a transaction in this many blocks before the head.
ONLINE_BLOCKS = 200


def _micro(value: int) -> float:
    """micro-nats to nats."""
    return value / 1e6


# ---------------------------------------------------------------------- overview
def overview(db: Any) -> dict[str, Any]:
    """The overview: what only an event can change is kept between events (``db.fact``); the
    current round's phase, blocks left, the epoch and who is online are computed per block."""
    d, ledger = db.deployment, db.ledger
    kept = db.fact(("overview",), lambda: _overview_kept(db))
    r = kept["current_round"]
    current = None
    if r:
        info = d.rounds.round(r)
        ends = {
            "SUBMIT": info.submit_end,
            "DISCLOSE": info.disclose_end,
            "COMMIT": info.commit_end,
            "REVEAL": info.reveal_end,
            "CONFIRM": info.confirm_end,
        }
        end = ends.get(info.phase.name)
        current = {
            "round": r,
            "phase": info.phase.name.lower(),
            "blocks_left": max(end - ledger.head, 0) if end is not None else None,
            "updates": info.update_count,
            "revealed": info.revealed_count,
            "base": info.base_cid,
        }
    epoch_now = ledger.clock.epoch_of(ledger.head)
    online = [a for a in kept["active"] if ledger.head - kept["last_seen"].get(a, -(10**9)) <= ONLINE_BLOCKS]
    return {
        "charter": kept["charter"],
        "current": current,
        "versions": kept["versions"],
        "loss_chart": kept["loss_chart"],
        "issuance_chart": kept["issuance_chart"],
        "epoch": epoch_now,
        "granted_this_epoch": kept["granted"].get(epoch_now, 0.0),
        "epoch_cap": kept["charter"]["epoch_cap"],
        "members_active": len(kept["active"]),
        "members_online": online,
        "online_blocks": ONLINE_BLOCKS,
        "supply": to_tokens(ledger.total_supply),
        "symbol": ledger.token_symbol,
        "recent": list(db.recent)[:15],
    }


def _overview_kept(db: Any) -> dict[str, Any]:
    """The overview's parts that change only with an event: charter, parameters, versions, issuance."""
    d, ledger = db.deployment, db.ledger
    charter = d.models.charter()
    params = d.rounds.params()
    epoch_cap, member_cap = d.token.caps()
    versions, curve, cumulative = [], [], 0.0
    for rec in sorted(ledger.rounds.values(), key=lambda x: x.round):
        if rec.completed_cid and rec.accepted_mask:
            gain = _round_gain(rec)
            cumulative += gain or 0.0
            versions.append({"round": rec.round, "cid": rec.completed_cid, "block": rec.completed_block, "gain": gain})
            curve.append({"x": rec.round, "y": round(cumulative, 6)})
    issuance: dict[int, dict[str, float]] = {}
    for res in ledger.reservations:
        row = issuance.setdefault(res.epoch, {"granted": 0.0, "cap": to_tokens(res.epoch_cap)})
        row["granted"] += to_tokens(res.granted)
        row["cap"] = to_tokens(res.epoch_cap)
    epochs = sorted(issuance)
    return {
        "charter": {
            "base_model_id": charter.base_model_id,
            "weights_hash": charter.base_weights_hash,
            "cid": charter.cid,
            "task": _charter_task(db, charter.cid),
            "strategy": d.rounds.aggregation_strategy(),
            "windows": [params.submit_window, params.disclose_window, params.commit_window, params.reveal_window, params.confirm_window],
            "quorum_pct": params.quorum_bps / 100,
            "confirmations": params.confirmations,
            "max_updates": params.max_updates,
            "epoch_cap": to_tokens(epoch_cap),
            "member_cap": to_tokens(member_cap),
            "submit_reward": to_tokens(params.submit_reward),
            "voter_reward": to_tokens(params.voter_reward),
        },
        "current_round": d.rounds.current_round(),
        "versions": versions[::-1],
        "loss_chart": {"points": curve},
        "issuance_chart": {
            "epochs": epochs,
            "granted": [round(issuance[e]["granted"], 6) for e in epochs],
            "cap": [issuance[e]["cap"] for e in epochs],
        },
        "granted": {e: issuance[e]["granted"] for e in epochs},
        "active": [m.address for m in ledger.members.values() if m.status.name == "ACTIVE"],
        "last_seen": _last_seen(ledger),
    }


def _charter_task(db: Any, cid: str | None) -> str | None:
    """The task the charter document names, when the store holds it (a JSON document)."""
    if not cid or db.store is None:
        return None
    try:
        doc = json.loads(db.store.get(cid))
    except Exception:  # noqa: BLE001 - a charter document that is missing or not JSON is shown as its CID only
        return None
    task = doc.get("task") if isinstance(doc, dict) else None
    return str(task) if task is not None else None


def _round_gain(rec: Any) -> float | None:
    """Mean loss improvement (nats) the approving voters measured for the round's accepted updates."""
    accepted = {u.update_id for u in rec.accepted}
    deltas = [v.loss_delta for votes in rec.ballots.values() for v in votes if v.update_id in accepted and v.approve]
    return _micro(sum(deltas) / len(deltas)) if deltas else None


def _last_seen(ledger: Any) -> dict[str, int]:
    """The last block in which each member submitted, committed or confirmed (from the folded rounds)."""
    seen: dict[str, int] = {}
    for rec in ledger.rounds.values():
        for u in rec.updates:
            seen[u.submitter] = max(seen.get(u.submitter, 0), u.block)
        for c in rec.confirmations:
            seen[c.member] = max(seen.get(c.member, 0), c.block)
        for voter in rec.ballots:
            seen[voter] = max(seen.get(voter, 0), rec.finalized_block or rec.opened_block)
    for m in ledger.members.values():
        seen[m.address] = max(seen.get(m.address, 0), m.joined_block)
    return seen


# ---------------------------------------------------------------------- rounds
def _outcome(rec: Any) -> str:
    if rec.failed:
        return "failed"
    if rec.completed_cid:
        return "completed" if rec.accepted_mask else "completed, nothing accepted"
    if rec.finalized:
        return "confirming"
    return "open"


def _minted_by_round(ledger: Any) -> dict[int, float]:
    out: dict[int, float] = defaultdict(float)
    for m in ledger.mints:
        r = m.round_id()
        if r is not None and r in ledger.rounds:
            out[r] += to_tokens(m.minted)
    return out


def rounds_table(db: Any) -> dict[str, Any]:
    ledger = db.ledger
    minted = _minted_by_round(ledger)
    rows = []
    for rec in sorted(ledger.rounds.values(), key=lambda x: -x.round):
        rows.append(
            {
                "round": rec.round,
                "opened": rec.opened_block,
                "outcome": _outcome(rec),
                "updates": len(rec.updates),
                "accepted": len(rec.accepted),
                "voters": len(rec.ballots),
                "confirmations": len(rec.confirmations),
                "global": rec.completed_cid if rec.accepted_mask else None,
                "minted": round(minted.get(rec.round, 0.0), 4),
                "strategy": rec.strategy,
            }
        )
    return {"rows": rows, "symbol": ledger.token_symbol}


def round_detail(db: Any, r: int) -> dict[str, Any] | None:
    ledger = db.ledger
    rec = ledger.rounds.get(r)
    if rec is None:
        return None
    decisions = {x.update_id: x for x in rec.decisions}
    accepted = {u.update_id for u in rec.accepted}
    own = _journal_entry(db, r)
    updates = []
    for u in rec.updates:
        deltas = [
            {"voter": voter, "approve": v.approve, "delta": _micro(v.loss_delta)}
            for voter, votes in rec.ballots.items()
            for v in votes
            if v.update_id == u.update_id
        ]
        dec = decisions.get(u.update_id)
        mine = (own or {}).get("votes", {}).get(str(u.update_id)) if own else None
        updates.append(
            {
                "id": u.update_id,
                "submitter": u.submitter,
                "cid": u.cid,
                "samples": u.n_samples,
                "approvals": dec.approvals if dec else sum(1 for x in deltas if x["approve"]),
                "rejections": dec.rejections if dec else sum(1 for x in deltas if not x["approve"]),
                "score": dec.score if dec else None,
                "deltas": deltas,
                "accepted": u.update_id in accepted if rec.finalized else None,
                "my_reason": mine.get("reason") if isinstance(mine, dict) else None,
            }
        )
    ballots = [
        {"voter": voter, "votes": [{"uid": v.update_id, "approve": v.approve, "delta": _micro(v.loss_delta)} for v in votes]}
        for voter, votes in rec.ballots.items()
    ]
    rewards = [
        {"member": m.member, "minted": to_tokens(m.minted), "requested": to_tokens(m.requested), "cut": m.minted < m.requested}
        for m in ledger.mints
        if m.round_id() == r
    ]
    return {
        "round": r,
        "outcome": _outcome(rec),
        "opened": rec.opened_block,
        "finalized": rec.finalized_block,
        "completed": rec.completed_block,
        "base": rec.base_cid,
        "strategy": rec.strategy,
        "confirmations_needed": rec.confirmations_needed,
        "committed": list(rec.committed),
        "updates": updates,
        "ballots": ballots,
        "aggregate": rec.completed_cid if rec.accepted_mask else None,
        "confirmations": [{"member": c.member, "cid": c.cid, "count": c.count, "block": c.block} for c in rec.confirmations],
        "rewards": rewards,
        "requested": to_tokens(rec.requested),
        "granted": to_tokens(rec.granted),
        "symbol": ledger.token_symbol,
        "has_journal": own is not None,
    }


def _journal(db: Any) -> Any:
    if db.config is None:
        return None
    from codecoop.node.journal import Journal

    path = db.config.folder / "journal.json"
    if not path.exists():
        return None
    return Journal(path, deployment=db.deployment.addresses["RoundManager"])


def _journal_entry(db: Any, r: int) -> dict[str, Any] | None:
    journal = _journal(db)
    if journal is None:
        return None
    from dataclasses import asdict

    entry = journal.rounds.get(r)
    return asdict(entry) if entry is not None else {}


# ---------------------------------------------------------------------- members
ZERO_ADDRESS = "0x" + "0" * 40


def _delegate(ledger: Any, address: str) -> str | None:
    """Whom ``address`` delegates its votes to (``None``: never delegated, or delegated to nobody)."""
    to = ledger.delegates.get(address)
    return None if to in (None, ZERO_ADDRESS) else to


def members_table(db: Any) -> dict[str, Any]:
    ledger = db.ledger
    balances = ledger.balances_at(ledger.head)
    power = ledger.votes_at(ledger.head)
    stats = _member_stats(ledger)
    total_reward = sum(s["reward"] for s in stats.values()) or 0.0
    rows = []
    for m in ledger.members.values():
        s = stats.get(m.address, {})
        votes, matched = s.get("votes", 0), s.get("matched", 0)
        rows.append(
            {
                "address": m.address,
                "peer_id": m.peer_id,
                "status": m.status.name.lower(),
                "tokens": round(to_tokens(balances.get(m.address, 0)), 4),
                "power": round(to_tokens(power.get(m.address, 0)), 4),
                "delegate": _delegate(ledger, m.address),
                "share": (s.get("reward", 0.0) / total_reward) if total_reward else 0.0,
                "accepted": s.get("accepted", 0),
                "submitted": s.get("submitted", 0),
                "votes": votes,
                "match": (matched / votes) if votes else None,
                "joined": m.joined_block,
            }
        )
    rows.sort(key=lambda x: (-x["share"], x["joined"]))
    return {"rows": rows, "symbol": ledger.token_symbol}


def _member_stats(ledger: Any) -> dict[str, dict[str, Any]]:
    """Per member: updates submitted and accepted, reward from rounds, votes cast and how many matched the outcome."""
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"submitted": 0, "accepted": 0, "votes": 0, "matched": 0, "reward": 0.0})
    for rec in ledger.rounds.values():
        accepted = {u.update_id for u in rec.accepted}
        for u in rec.updates:
            out[u.submitter]["submitted"] += 1
            out[u.submitter]["accepted"] += u.update_id in accepted
        if not rec.finalized:
            continue
        for voter, votes in rec.ballots.items():
            for v in votes:
                out[voter]["votes"] += 1
                out[voter]["matched"] += v.approve == (v.update_id in accepted)
    for m in ledger.mints:
        if m.round_id() is not None and m.round_id() in ledger.rounds:
            out[m.member]["reward"] += to_tokens(m.minted)
    return out


def member_detail(db: Any, address: str) -> dict[str, Any] | None:
    ledger = db.ledger
    m = next((x for x in ledger.members.values() if x.address.lower() == address.lower()), None)
    if m is None:
        return None
    row = next(x for x in members_table(db)["rows"] if x["address"] == m.address)
    updates = [
        {"round": rec.round, "id": u.update_id, "cid": u.cid, "accepted": u.update_id in {a.update_id for a in rec.accepted}}
        for rec in sorted(ledger.rounds.values(), key=lambda x: -x.round)
        for u in rec.updates
        if u.submitter == m.address
    ]
    mints = [
        {"block": x.block, "epoch": x.epoch, "round": x.round_id(), "minted": to_tokens(x.minted)}
        for x in ledger.mints
        if x.member == m.address
    ]
    changes = [{"block": b, "from": f.name.lower(), "to": t.name.lower()} for b, f, t in m.status_changes]
    return {**row, "updates": updates, "mints": mints[::-1], "changes": changes, "multiaddrs": _multiaddrs(db, m.address)}


def _multiaddrs(db: Any, address: str) -> list[str]:
    try:
        return list(db.deployment.members.member(address).multiaddrs)
    except Exception:  # noqa: BLE001 - the registry read is a nicety; the page shows none
        return []


# ---------------------------------------------------------------------- proposals
STATES = ["pending", "active", "canceled", "defeated", "succeeded", "queued", "expired", "executed"]
#: States a proposal never leaves.
FINAL_STATES = frozenset({"canceled", "defeated", "expired", "executed"})


def _proposal_row(db: Any, p: Any) -> dict[str, Any]:
    from codecoop.governance.proposals import describe_action

    d = db.deployment
    state = db.fact(
        ("proposal-state", p.id), lambda: d.governor.state(p.id).name.lower(), per_block=True, settled=FINAL_STATES.__contains__
    )
    tally = {"for": 0.0, "against": 0.0, "abstain": 0.0}
    for support, weight in p.votes.values():
        tally[SUPPORT.get(support, "abstain")] += to_tokens(weight)
    try:
        past = p.vote_start < db.head  # a snapshot in the past never changes
        quorum = to_tokens(db.fact(("quorum", p.vote_start), lambda: d.governor.quorum(p.vote_start), settled=lambda _: past))
    except Exception:  # noqa: BLE001 - the quorum of a snapshot in the future is not defined yet
        quorum = None
    actions = [describe_action(d, t, c) for t, c in zip(p.targets, p.calldatas)]
    return {
        "id": str(p.id),
        "state": state,
        "description": p.description,
        "title": p.description.strip().splitlines()[0][:120] if p.description.strip() else "(no description)",
        "actions": actions,
        "proposer": p.proposer,
        "block": p.block,
        "vote_start": p.vote_start,
        "vote_end": p.vote_end,
        "tally": tally,
        "quorum": quorum,
        "quorum_reached": quorum is not None and tally["for"] + tally["abstain"] >= quorum,
        "quorum_pct": min(100.0, 100 * (tally["for"] + tally["abstain"]) / quorum) if quorum else None,
        "queued": p.queued_block,
        "executed": p.executed_block,
        "canceled": p.canceled_block,
    }


def proposals_table(db: Any) -> dict[str, Any]:
    from codecoop.governance.proposals import MEMBER_ACTIONS, PARAMETERS

    rows = [_proposal_row(db, p) for p in sorted(db.ledger.proposals.values(), key=lambda x: -x.block)]
    by_state: dict[str, int] = defaultdict(int)
    for row in rows:
        by_state[row["state"]] += 1
    versions = [{"id": i + 1, "tag": rel.tag} for i, rel in enumerate(db.ledger.releases)]
    return {
        "rows": rows,
        "by_state": dict(by_state),
        "parameters": [{"name": n, "help": h} for n, (h, _) in PARAMETERS.items()],
        "member_actions": list(MEMBER_ACTIONS),
        "versions": versions,
        "members": [m.address for m in db.ledger.members.values()],
    }


def proposal_detail(db: Any, proposal_id: int) -> dict[str, Any] | None:
    p = db.ledger.proposals.get(proposal_id)
    if p is None:
        return None
    row = _proposal_row(db, p)
    votes = [
        {"voter": voter, "support": SUPPORT.get(support, "?"), "weight": to_tokens(weight), "reason": p.reasons.get(voter, "")}
        for voter, (support, weight) in p.votes.items()
    ]
    timeline = [("proposed", p.block), ("voting opens", p.vote_start), ("voting closes", p.vote_end)]
    timeline += [(what, b) for what, b in (("queued", p.queued_block), ("executed", p.executed_block), ("canceled", p.canceled_block)) if b]
    eta = None
    if p.queued_block:
        try:
            eta = db.deployment.governor.eta(p.id)
        except Exception:  # noqa: BLE001 - no eta: not queued in the timelock
            eta = None
    return {**row, "votes": votes, "timeline": [{"what": w, "block": b, "past": b <= db.head} for w, b in timeline], "eta": eta}


# ---------------------------------------------------------------------- models
def models_table(db: Any) -> dict[str, Any]:
    from codecoop.governance.versions import contributions

    ledger = db.ledger
    rows = []
    by_id = {i + 1: rel for i, rel in enumerate(ledger.releases)}
    for i, rel in enumerate(ledger.releases, start=1):
        parent = by_id.get(rel.parent)
        shares = contributions(ledger, rel.cid, parent.cid if parent else None)
        metrics, doc_error = None, None
        if rel.metrics_cid and db.store is not None:
            try:
                doc = json.loads(db.store.get(rel.metrics_cid))
                metrics = doc.get("metrics") if isinstance(doc, dict) else None
            except Exception as exc:  # noqa: BLE001 - shown beside the version
                doc_error = f"metrics document unreadable: {type(exc).__name__}"
        rows.append(
            {
                "id": i,
                "tag": rel.tag,
                "cid": rel.cid,
                "parent": parent.tag if parent else None,
                "metrics_cid": rel.metrics_cid,
                "metrics": metrics if isinstance(metrics, dict) else None,
                "doc_error": doc_error,
                "base_model_id": rel.base_model_id,
                "block": rel.block,
                "shares": [{"member": c.member, "share": c.share, "updates": c.accepted_updates} for c in shares],
                "pull": f"codecoop model pull {rel.tag} --chain URL --deployment deployment.json --store API --out {rel.tag}/",
            }
        )
    return {"rows": rows[::-1]}


# ---------------------------------------------------------------------- my node
def node_journal(db: Any) -> dict[str, Any] | None:
    journal = _journal(db)
    if journal is None:
        return None
    delta = float(db.config["training.dp_delta"])
    spent = journal.privacy_spent(delta)
    claimed: dict[int, float] = defaultdict(float)
    me = db.node_address or (db.signer.address if db.signer is not None else None)
    for m in db.ledger.mints:
        if me is not None and m.member == me and m.round_id() is not None:
            claimed[m.round_id()] += to_tokens(m.minted)
    rows = []
    for r, e in sorted(journal.rounds.items(), reverse=True):
        rows.append(
            {
                "round": r,
                "trained": e.trained_cid,
                "skipped": e.skipped,
                "samples": e.samples,
                "improvement": _micro(e.improvement_micro) if e.improvement_micro is not None else None,
                "votes": [{"uid": k, **v} for k, v in sorted(e.votes.items(), key=lambda kv: int(kv[0]))],
                "aggregate": e.aggregate_cid,
                "aggregate_error": e.aggregate_error,
                "done": e.done,
                "dp": e.dp,
                "claimed": claimed.get(r),
            }
        )
    from codecoop.node.transport import FetchCounters

    return {
        "path": str(journal.path),
        "rows": rows,
        "privacy": {"epsilon": spent[0], "rounds": spent[1], "delta": delta} if spent else None,
        "network": FetchCounters.from_json(journal.network).summary() if journal.network else None,
    }


# ---------------------------------------------------------------------- one CID
def cid_detail(db: Any, cid: str) -> dict[str, Any]:
    """Everything the ledger says about ``cid``: an update, a base or global version, a release, a metrics document."""
    ledger = db.ledger
    uses = []
    for rec in ledger.rounds.values():
        for u in rec.updates:
            if u.cid == cid:
                uses.append({"what": f"update #{u.update_id} of round {rec.round} by", "who": u.submitter, "round": rec.round})
        if rec.completed_cid == cid and rec.accepted_mask:
            uses.append({"what": f"global model of round {rec.round}", "who": None, "round": rec.round})
        if rec.base_cid == cid:
            uses.append({"what": f"base of round {rec.round}", "who": None, "round": rec.round})
    for rel in ledger.releases:
        if rel.cid == cid:
            uses.append({"what": f"released as {rel.tag}", "who": None, "round": None})
        if rel.metrics_cid == cid:
            uses.append({"what": f"metrics document of {rel.tag}", "who": None, "round": None})
    held = None
    if db.store is not None:
        try:
            held = db.store.has(cid)
        except Exception:  # noqa: BLE001 - a store that cannot answer: unknown
            held = None
    return {"cid": cid, "uses": uses, "held": held}
