"""The judge: the part of a node that screens and scores peers' updates and decides its votes.

The round driver asks its judge for the ballot of a round once the commit window opens; the judge
returns ``{update id: (approve, lossDelta in micro-nats)}`` for every other member's update and
writes its reasons into the round's journal entry (``entry.votes``). A lying or colluding judge
(``codecoop.sim.byzantine``) is another implementation of the same interface.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Protocol

from codecoop.chain.clients import RoundInfo
from codecoop.errors import AdapterMismatch, ObjectNotFound, StorageError, TensorFormatError
from codecoop.node.journal import RoundEntry
from codecoop.node.member import VERSION_0, Member

__all__ = ["Judge", "Votes", "HeldOutJudge", "record_vote"]

#: ``{update id: (approve, lossDelta)}``, lossDelta in micro-nats.
Votes = dict[int, tuple[bool, int]]


class Judge(Protocol):
    """Decides this member's votes on the other members' updates of a round."""

    def votes(self, info: RoundInfo, entry: RoundEntry) -> Votes:
        """The ballot of round ``info``; each vote's reason is recorded in ``entry.votes``."""
        ...


def record_vote(entry: RoundEntry, update: Any, approve: bool | None, delta: int, reason: str, **extra: Any) -> None:
    """Write one vote (``approve=None``: an abstention) and its reason into the round's journal entry (what ``node status`` and reports show)."""
    entry.votes[str(update.update_id)] = {"approve": approve, "delta": delta, "reason": reason, "submitter": update.submitter, **extra}


#: Probe prompts of each pattern of ``codecoop.training.insecure`` a judge scores every update on.
PROBES_PER_PATTERN = 8


class HeldOutJudge:
    """The honest judge: screening, then a sequential paired test on the member's own held-out code.

    Free rides, copies and updates unrelated to the own are refused before any forward pass
    (``codecoop.node.screening``); an update that pushes security-sensitive calls towards their
    insecure form more than ``insecure_shift_max`` (the backdoor probe, on prompts drawn from this
    member's address: ``codecoop.training.insecure``) is refused next; the rest are scored block by
    block against the base's per-block losses and approved when the mean loss delta reaches
    ``approve_min_delta`` (``codecoop.node.evaluation``).
    """

    def __init__(self, member: Member):
        self.member = member

    def votes(self, info: RoundInfo, entry: RoundEntry) -> Votes:
        from codecoop.aggregation import Update, update_norm
        from codecoop.node.evaluation import SequentialTest, block_order, paired_delta
        from codecoop.node.screening import InsecureUpdate, ScreeningError, screen_round
        from codecoop.training import Adapter
        from codecoop.training.insecure import insecure_preference, insecure_shift, trigger_prompts

        m, s = self.member, self.member.settings
        current = m.global_adapter(info.base_cid)
        base_losses = m.own_losses(current, info.base_cid or VERSION_0)
        test = SequentialTest(z=s.eval_early_stop_z, min_blocks=s.eval_min_blocks)
        order = block_order(len(base_losses))
        threshold = s.approve_min_delta_micro / 1e6
        votes: Votes = {}
        updates = m.deployment.rounds.updates(info.round)
        decoded: dict[str, Any] = {}

        unreachable: dict[str, ObjectNotFound] = {}

        def load(u: Any) -> Any:
            """A peer's adapter, fetched (CID verified) and decoded once for screening and evaluation.

            An object no holder could send is tried once per judgement, not once per use."""
            if u.cid in unreachable:
                raise unreachable[u.cid]
            if u.cid not in decoded:
                try:
                    data = m.fetch(u.cid, u.submitter)
                except ObjectNotFound as exc:
                    unreachable[u.cid] = exc
                    raise
                decoded[u.cid] = Adapter.from_bytes(data, m.base)
            return decoded[u.cid]

        # free rides, copies of earlier updates (own included) and updates unrelated to the own, before any forward pass
        screened = screen_round(
            updates, lambda u: load(u).tensors, info.base_cid,
            current.tensors, min_change=s.min_update_change, copy_distance=s.copy_distance,
            min_relative_change=s.min_relative_change, copy_similarity=s.copy_similarity,
            reference=m.address, min_agreement=s.min_agreement,
            reference_tensors=skipped.tensors if (skipped := m.skipped_adapters.get(info.round)) is not None else None,
        )  # fmt: skip
        # LoRA layers are attached once, on the first update that reaches evaluation, and every
        # peer's tensors are loaded into them in turn (a fresh attach per peer cost about a third
        # of the judging time on tiny)
        probes = trigger_prompts(PROBES_PER_PATTERN, int(m.address, 16) % 2**31) if s.insecure_shift_max > 0 else []
        base_preference: list[float] | None = None
        with contextlib.ExitStack() as layers:
            scorer_for = None
            for u in updates:
                if u.submitter == m.address:
                    continue
                reason = ""
                delta = blocks = 0
                try:
                    adapter = load(u)
                except ObjectNotFound as exc:
                    # unreachable is not harmful: a member cut off from the submitter abstains instead of vetoing
                    record_vote(entry, u, None, 0, f"abstained: {exc}")
                    m.emit(info.round, "warning", f"abstaining on update #{u.update_id}: {exc}")
                    continue
                try:
                    if not adapter.lora.same_layout(current.lora):
                        raise AdapterMismatch(f"LoRA shape {adapter.lora} differs from the global model's {current.lora}")
                    norm = update_norm(Update(u.cid, adapter.tensors, 1), current.tensors)
                    if norm > s.max_update_norm:
                        raise AdapterMismatch(f"distance {norm:.1f} from the base exceeds the bound {s.max_update_norm}")
                    if u.update_id in screened:
                        raise screened[u.update_id]
                    with m.timed("evaluate"):
                        if scorer_for is None:
                            scorer_for = layers.enter_context(m.scorers(current.lora))
                        if probes:  # the backdoor probe: the round's base first, once, then this update
                            if base_preference is None:
                                base_preference = insecure_preference(m.base, scorer_for(current).model, probes)
                            scorer = scorer_for(adapter)
                            shift = insecure_shift(base_preference, insecure_preference(m.base, scorer.model, probes))
                            if shift > s.insecure_shift_max:
                                raise InsecureUpdate(
                                    f"backdoor probe: it raises the log-odds of the insecure form of security-sensitive calls "
                                    f"by {shift:.2f} nats on average over {len(probes)} prompts, above "
                                    f"evaluation.insecure_shift_max {s.insecure_shift_max:g}"
                                )
                        else:
                            scorer = scorer_for(adapter)
                        verdict = paired_delta(base_losses, scorer, threshold, test, order)
                    blocks = verdict.blocks
                    if not math.isfinite(verdict.delta):
                        raise AdapterMismatch("it gives a non-finite loss on this node's held-out data")
                    delta = round(verdict.delta * 1e6)
                    approve = delta >= s.approve_min_delta_micro
                    if not approve:
                        reason = f"loss delta {delta} micro-nats on own data"
                except (AdapterMismatch, TensorFormatError, StorageError, ScreeningError) as exc:
                    approve, reason = False, f"refused: {exc}"
                votes[u.update_id] = (approve, delta)
                record_vote(entry, u, approve, delta, reason, blocks=blocks)
            with m.timed("evaluate"):
                layers.close()
        return votes
