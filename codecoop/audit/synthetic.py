"""Federation histories with real adapters in a real store, for the audit's tests and benchmark.

:class:`codecoop.chain.devtools.DevFederation` drives rounds through the contracts with placeholder
CIDs; an audit that re-fetches updates and recomputes aggregates needs the real thing. Here every
update is a small random LoRA-shaped adapter put in a content store, every voter reports a loss
delta around the update's true quality, and the confirmed aggregate is the one the round's strategy
really produces, so an honest history audits clean. Deviations are opt-in per round: rejected
(harmful) updates, lying voters and colluding confirmers.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch

from codecoop.aggregation import Update, get_strategy
from codecoop.aggregation.spec import parse_strategy
from codecoop.chain.clients import Ballot, Phase, UpdateDisclosure
from codecoop.chain.devtools import DevFederation, commit_and_disclose
from codecoop.storage import ContentStore
from codecoop.tensors import to_safetensors

__all__ = ["SyntheticFederation", "SyntheticRound", "LORA_SHAPES"]

#: Two LoRA pairs of a small attention block: enough for aggregation to be real, fast to hash.
LORA_SHAPES = {
    "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": (4, 32),
    "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": (32, 4),
    "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight": (4, 32),
    "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight": (32, 4),
}


@dataclass
class SyntheticRound:
    """What one synthetic round did."""

    round: int
    update_cids: dict[int, str] = field(default_factory=dict)  # member index -> CID
    accepted: tuple[int, ...] = ()
    aggregate_cid: str | None = None
    honest_aggregate_cid: str | None = None


class SyntheticFederation:
    """Runs rounds of a :class:`DevFederation` with real adapters in ``store``."""

    def __init__(self, fed: DevFederation, store: ContentStore, *, seed: int = 0):
        self.fed = fed
        self.store = store
        self.rng = random.Random(seed)
        self.seed = seed

    def adapter(self, round_id: int, member: int) -> bytes:
        """The canonical safetensors bytes of ``member``'s adapter in ``round_id`` (seeded, reproducible)."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + round_id * 1_009 + member)
        tensors = {name: torch.randn(shape, generator=g) * 0.01 for name, shape in LORA_SHAPES.items()}
        return to_safetensors(tensors, {"format": "synthetic-lora", "round": str(round_id), "member": str(member)})

    def run_round(
        self,
        *,
        submitters: Sequence[int] | None = None,
        voters: Sequence[int] | None = None,
        harmful: Iterable[int] = (),
        liars: Iterable[int] = (),
        colluders: Sequence[int] = (),
        claim: bool = True,
    ) -> SyntheticRound:
        """One round from opening to claims.

        Parameters
        ----------
        harmful:
            Submitters whose update makes the loss worse: honest voters reject it.
        liars:
            Voters who approve everything and report the largest loss improvement (to inflate rewards).
        colluders:
            Members who confirm a forged aggregate instead of the real one; with at least ``k`` of them
            confirming first, the forged CID completes the round.
        """
        fed, d = self.fed, self.fed.deployment
        n = len(fed.members)
        submitters = list(range(n)) if submitters is None else list(submitters)
        voters = list(range(n)) if voters is None else list(voters)
        harmful_set, liar_set = set(harmful), set(liars)
        r = d.rounds.open_round(fed.members[(submitters or voters)[0]])
        info = d.rounds.round(r)
        rec = SyntheticRound(r)
        owner: dict[int, int] = {}
        quality: dict[int, int] = {}
        n_samples: dict[int, int] = {}
        blobs: dict[int, bytes] = {}
        blobs_by_member: dict[int, bytes] = {}
        disclosures = []
        for i in submitters:
            data = self.adapter(r, i)
            cid = self.store.put(data)
            n_samples[i] = 100 + self.rng.randrange(900)
            disclosures.append((fed.members[i], UpdateDisclosure(r, cid, n_samples[i], salt=self.rng.randbytes(32))))
            rec.update_cids[i] = cid
            blobs_by_member[i] = data
        for i, (_, submitted) in zip(submitters, commit_and_disclose(d, disclosures)):
            uid = submitted.update_id
            owner[uid], blobs[uid] = i, blobs_by_member[i]
            q = self.rng.randrange(20_000, 80_000)
            quality[uid] = -q if i in harmful_set else q
        fed.chain.mine_to(info.disclose_end + 1)
        bound = d.rounds.params().reward_bound
        ballots: dict[int, Ballot] = {}
        for j in voters:
            votes: dict[int, tuple[bool, int]] = {}
            for uid, i in owner.items():
                if i == j:
                    continue
                if j in liar_set:
                    votes[uid] = (True, bound)
                else:
                    delta = quality[uid] + self.rng.randrange(-3_000, 3_001)
                    votes[uid] = (delta > 0, delta)
            ballots[j] = Ballot.of(votes, salt=self.rng.randbytes(32))
            d.rounds.commit_votes(fed.members[j], r, ballots[j])
        fed.chain.mine_to(info.commit_end + 1)
        for j in voters:
            d.rounds.reveal_votes(fed.members[j], r, ballots[j])
        fed.chain.mine_to(info.reveal_end + 1)
        fin = d.rounds.finalize(fed.members[voters[0] if voters else 0], r)
        rec.accepted = fin.accepted_ids
        if fin.accepted_ids:
            spec = parse_strategy(d.rounds.aggregation_strategy())
            updates = [Update.from_bytes(rec.update_cids[owner[u]], blobs[u], n_samples[owner[u]]) for u in fin.accepted_ids]
            honest = self.store.put(spec.build().aggregate(updates).to_bytes())
            rec.honest_aggregate_cid = honest
            forged = None
            if colluders:
                # the colluders' "aggregate" leaves the first accepted update out: plausible bytes, wrong content
                forged_updates = updates[1:] or updates
                forged = self.store.put(
                    to_safetensors({k: v * 1.5 for k, v in get_strategy("fedavg").aggregate(forged_updates).tensors.items()})
                )
            order = list(colluders) + [j for j in voters if j not in colluders]
            for j in order:
                if d.rounds.phase(r) is not Phase.CONFIRM:
                    break
                d.rounds.confirm_aggregate(fed.members[j], r, forged if j in colluders and forged else honest)
            rec.aggregate_cid = d.rounds.round(r).global_cid
        if claim:
            for i in range(n):
                if d.rounds.entitlement(r, fed.members[i].address):
                    d.rounds.claim(fed.members[i], r)
        return rec
