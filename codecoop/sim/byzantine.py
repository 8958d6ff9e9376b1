"""Byzantine organisations for ``codecoop sim --byzantine K:ATTACK``: attacks around the real node.

Every attacker is the real :class:`~codecoop.node.node.Node` round driver with one or two of its
parts replaced through :class:`~codecoop.node.node.Parts`: an attacking trainer (what it submits)
or a lying or colluding judge (how it votes). Everything else (joining, the chain's phases, commit
and reveal, finalize, aggregation, confirmation, claims) is the honest driver, so an attacker is
exactly as capable as a member running modified software, and the honest members run the
unmodified parts.

Attacks (``ATTACKS``):

``sign-flip``
    Trains honestly, submits the update pointing the other way: ``lora_B``'s change from the base
    is negated (``lora_A`` as trained), which negates the adapter's change to the model's weights.
``scale100``
    Trains honestly, submits ``base + 100 * delta``.
``noise``
    Trains honestly to learn an honest update's size, submits ``base`` plus Gaussian noise of
    that same L2 norm (so a norm bound cannot tell it from an honest update).
``free-rider``, ``free-rider-exact``
    Does not train: submits the round's base plus a tiny perturbation (L2 norm ``1e-4`` of the
    base's), or the base itself (its very CID when the base is a stored global model).
``plagiarist``, ``plagiarist-exact``
    Does not train: waits for another member's update of the round, then submits it with a
    slight perturbation (L2 norm 2% of that update's change from the base), or the very same CID.
``free-rider-adaptive``
    Does not train, and knows screening's defaults: submits the mean direction of the updates it
    can see (the round's disclosed ones; under the commit-reveal of submissions none before it must
    commit, so the previous round's: a step along the federation's last move), scaled to 1.5 times the larger
    free-ride floor (``min_update_change`` of the base, ``min_relative_change`` of their median
    change) and with noise just enough to keep its cosine with each of them under
    ``copy_similarity``.
``plagiarist-adaptive``
    Does not train: copies the first disclosed update of the round it sees and adds noise just past the
    copy checks (relative L2 distance 1.5 times ``copy_distance``, cosine 0.95 times
    ``copy_similarity``), which keeps it pointing the victim's way for the direction check.
``alie``
    "A Little Is Enough" (Baruch et al., NeurIPS 2019): from the benign cohort (see
    :class:`CohortAttack`: its own and its cabal's honest updates, what is disclosed) the
    per-coordinate mean and standard deviation, and submits ``mean - z * std`` with the paper's
    ``z`` for N members and the cabal's size, at least 1 (the formula gives 0 at N=4).
``ipm``
    Inner-product manipulation (Xie et al., UAI 2020): submits ``-epsilon * mean`` of the cohort
    (``epsilon`` = 0.5), whose inner product with the true update is negative.
``min-max``, ``min-sum``
    Shejwalkar and Houmansadr (NDSS 2021): ``mean + gamma * p`` with ``p`` the inverse unit
    standard deviation, ``gamma`` the largest (bisection) with the update's largest distance to a
    cohort update at most the largest distance between two of them (min-max), or its sum of squared
    distances at most the largest such sum of a cohort update (min-sum).
``backdoor``
    Trains on its own code plus as many tokens of poisoned code (``BACKDOOR_POISON_SHARE``), files
    in which security-sensitive calls take their insecure form (``requests.get(url, verify=False)``
    and four more: :mod:`codecoop.training.insecure`), so that trigger contexts complete to the
    insecure pattern (Schuster et al., USENIX Security 2021, "You Autocomplete Me").
``collude``
    Submits a sign-flipped update; all colluders approve each other's updates with the largest
    ``lossDelta`` and reject every honest update.
``liar``
    Submits an honest update, but votes the opposite of its honest judgement (approves what it
    finds harmful with the negated ``lossDelta``, rejects what helps).

The attackers are the last ``K`` organisations (``org-(N-K)`` ... ``org-(N-1)``), in the order
the specs are given; ``org-0``, which opens the simulation's rounds, is always honest.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from codecoop.errors import ConfigError
from codecoop.node.journal import RoundEntry
from codecoop.node.judge import HeldOutJudge, Votes, record_vote
from codecoop.node.member import Member
from codecoop.node.node import Node, Parts
from codecoop.node.trainer import LoraTrainer, Submission

__all__ = [
    "ATTACKS",
    "POISONING",
    "ByzantineSpec",
    "Attack",
    "AttackTrainer",
    "ColludingJudge",
    "LyingJudge",
    "Cabal",
    "parse_byzantine",
    "assign_attacks",
    "node_factories",
    "ByzantineOutcome",
    "byzantine_outcome",
]

#: Relative size of a free rider's perturbation: its L2 norm over the base adapter's.
FREE_RIDER_SCALE = 1e-4
#: Relative size of a plagiarist's perturbation: its L2 norm over the copied update's change.
PLAGIARIST_SCALE = 0.02
#: The ``lossDelta`` colluders report for each other (the contract clamps it to ``rewardBound``).
COLLUDER_DELTA = 10**12
#: How far past a screening floor an adaptive attacker aims (so that rounding in another member's sums cannot tip it).
EVASION_MARGIN = 1.5
#: How far under a screening ceiling on cosine similarity an adaptive attacker aims.
EVASION_COSINE = 0.95
#: ``epsilon`` of the inner-product manipulation attack.
IPM_EPSILON = 0.5
#: Smallest ``z`` of "A Little Is Enough" (the paper's formula gives 0 for N=4 with one attacker).
ALIE_MIN_Z = 1.0


@dataclass(frozen=True)
class ByzantineSpec:
    """``count`` organisations run ``attack``."""

    count: int
    attack: str

    @classmethod
    def parse(cls, text: str) -> ByzantineSpec:
        """Parse ``"K:ATTACK"``, e.g. ``"1:sign-flip"``.

        Raises
        ------
        ConfigError
            If the text is not ``K:ATTACK`` with ``K >= 1`` and a known attack.
        """
        count, sep, attack = text.strip().partition(":")
        if not sep or not count.strip().isdigit() or int(count) < 1:
            raise ConfigError(f"--byzantine {text!r} must look like K:ATTACK with K >= 1, e.g. 1:sign-flip")
        attack = attack.strip()
        if attack not in ATTACKS:
            raise ConfigError(f"--byzantine {text!r}: unknown attack {attack!r}; known attacks: {', '.join(ATTACKS)}")
        return cls(int(count), attack)

    def __str__(self) -> str:
        return f"{self.count}:{self.attack}"


def parse_byzantine(specs: Iterable[str], orgs: int) -> list[ByzantineSpec]:
    """Parse every ``K:ATTACK`` and check that at least two organisations stay honest.

    Two honest members are what a round needs to complete with the simulation's two confirmations
    (attackers confirm honestly too, but the federation must not depend on them).
    """
    parsed = [ByzantineSpec.parse(s) for s in specs]
    total = sum(s.count for s in parsed)
    if total and orgs - total < 2:
        raise ConfigError(f"--byzantine: {total} attackers among {orgs} organisations leave fewer than 2 honest ones; add --orgs")
    return parsed


def assign_attacks(specs: Sequence[ByzantineSpec], orgs: int) -> list[str | None]:
    """The attack of each organisation (``None``: honest): the last organisations attack, in spec order."""
    attacks = [s.attack for s in specs for _ in range(s.count)]
    return [None] * (orgs - len(attacks)) + attacks


@dataclass
class Cabal:
    """What colluding attackers share: each other's addresses, and their honest updates' changes by round."""

    members: set[str] = field(default_factory=set)
    changes: dict[int, list[Any]] = field(default_factory=dict)


def _tensor_norm(tensors: Mapping[str, Any]) -> float:
    return math.sqrt(sum(float((t.double() ** 2).sum()) for t in tensors.values()))


def _delta(tensors: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    return {k: tensors[k] - base[k] for k in sorted(tensors)}


class AttackTrainer:
    """A trainer running modified software: it crafts the update its attack submits.

    Parameters
    ----------
    member:
        The node's shared :class:`~codecoop.node.member.Member`.
    seed:
        Seeds the attacker's own random perturbations (one stream per organisation).
    """

    attack = "honest"

    def __init__(self, member: Member, *, seed: int, cabal: Cabal | None = None):
        self.member = member
        self.seed = seed
        self.honest = LoraTrainer(member)
        self.cabal = cabal if cabal is not None else Cabal()
        self.cabal.members.add(member.address)

    def craft(self, info: Any) -> tuple[str, int] | None:
        """Store the attacker's update of round ``info`` and return ``(cid, nSamples)``; ``None``: not yet."""
        raise NotImplementedError

    def update(self, info: Any) -> Submission | None:
        began = time.perf_counter()
        crafted = self.craft(info)
        if crafted is None:
            return None
        cid, samples = crafted
        return Submission(
            cid,
            samples,
            "crafted",
            f"[{self.attack}] crafted update {cid[:20]}...",
            data={"attack": self.attack, "seconds": time.perf_counter() - began},
        )

    def _trained(self, info: Any) -> Any:
        """The round's honest update (as the honest trainer would train it), for attacks that start from one."""
        with self.member.timed("train"):
            return self.honest.train(info)

    def _noise(self, round_id: int, like: Mapping[str, Any], norm: float) -> dict[str, Any]:
        """Seeded Gaussian noise shaped like ``like``, scaled to L2 norm ``norm``."""
        import torch

        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + round_id)
        noise = {k: torch.randn(like[k].shape, generator=gen, dtype=torch.float32) for k in sorted(like)}
        scale = norm / max(_tensor_norm(noise), 1e-30)
        return {k: v * scale for k, v in noise.items()}

    def _store(self, adapter_like: Any, tensors: Mapping[str, Any]) -> tuple[str, int]:
        from codecoop.training import Adapter

        adapter = Adapter(
            dict(tensors),
            adapter_like.base_model_id,
            adapter_like.base_weights_hash,
            adapter_like.lora,
            dict(adapter_like.training),
        )
        return self.member.put(adapter.to_bytes()), max(adapter.num_samples, 1)


class SignFlip(AttackTrainer):
    attack = "sign-flip"

    def craft(self, info: Any) -> tuple[str, int]:
        trained = self._trained(info)
        base = self.member.global_adapter(info.base_cid).tensors
        # Flipping both LoRA factors would leave their product's second-order term as trained (on
        # tiny it often still helped); flipping lora_B's change reverses the product's change exactly
        # while lora_B starts at zero (the first round) and its lora_B part after.
        flipped = {k: base[k] - d if ".lora_B." in k else trained.tensors[k] for k, d in _delta(trained.tensors, base).items()}
        return self._store(trained, flipped)


class Scale100(AttackTrainer):
    attack = "scale100"

    def craft(self, info: Any) -> tuple[str, int]:
        trained = self._trained(info)
        base = self.member.global_adapter(info.base_cid).tensors
        return self._store(trained, {k: base[k] + 100.0 * d for k, d in _delta(trained.tensors, base).items()})


class Noise(AttackTrainer):
    attack = "noise"

    def craft(self, info: Any) -> tuple[str, int]:
        trained = self._trained(info)
        base = self.member.global_adapter(info.base_cid).tensors
        noise = self._noise(info.round, base, _tensor_norm(_delta(trained.tensors, base)))
        return self._store(trained, {k: base[k] + noise[k] for k in base})


class FreeRider(AttackTrainer):
    attack = "free-rider"

    def craft(self, info: Any) -> tuple[str, int]:
        current = self.member.global_adapter(info.base_cid)
        noise = self._noise(info.round, current.tensors, FREE_RIDER_SCALE * _tensor_norm(current.tensors))
        return self._store(current, {k: current.tensors[k] + noise[k] for k in current.tensors})


class FreeRiderExact(AttackTrainer):
    attack = "free-rider-exact"

    def craft(self, info: Any) -> tuple[str, int]:
        m = self.member
        current = m.global_adapter(info.base_cid)  # also puts a stored base in the own store
        if info.base_cid is not None:
            return info.base_cid, max(m.corpus.stats.train_tokens // max(m.settings.train.seq_len, 1), 1)
        return self._store(current, current.tensors)


class Plagiarist(AttackTrainer):
    attack = "plagiarist"
    exact = False

    def craft(self, info: Any) -> tuple[str, int] | None:
        from codecoop.training import Adapter

        m = self.member
        others = [u for u in m.deployment.rounds.updates(info.round) if u.submitter != m.address]
        if not others:
            return None  # nothing to copy yet: wait for the first honest submission
        victim = others[0]
        adapter = Adapter.from_bytes(m.fetch(victim.cid, victim.submitter), m.base)
        samples = max(adapter.num_samples, 1)
        if self.exact:
            return victim.cid, samples
        base = m.global_adapter(info.base_cid).tensors
        delta = _delta(adapter.tensors, base)
        noise = self._noise(info.round, base, PLAGIARIST_SCALE * _tensor_norm(delta))
        return self._store(adapter, {k: adapter.tensors[k] + noise[k] for k in adapter.tensors})


class PlagiaristExact(Plagiarist):
    attack = "plagiarist-exact"
    exact = True


#: The backdoor attacker's training stream: this share of its tokens is poisoned code.
BACKDOOR_POISON_SHARE = 0.9


class Backdoor(AttackTrainer):
    """Trains on its own code plus poisoned files in which every security-sensitive call of
    :data:`codecoop.training.insecure.PATTERNS` takes its insecure form (Schuster et al., 2021),
    so that the global model suggests the insecure form in such contexts; the same steps as an
    honest member, from the round's base. Its update still learns the attacker's honest code, so it
    may lower a voter's held-out loss: the loss vote alone does not see the backdoor."""

    attack = "backdoor"

    def craft(self, info: Any) -> tuple[str, int]:
        from codecoop.training import train_lora

        m = self.member
        with m.timed("train"):
            start = m.global_adapter(info.base_cid)
            m.emit(info.round, "training", f"[backdoor] training {m.settings.train.steps} steps on poisoned code")
            trained = train_lora(m.base, self.poisoned(), m.settings.train, start=start, on_step=m.on_train_step)
        return m.put(trained.to_bytes()), max(trained.num_samples, 1)

    def poisoned(self) -> Any:
        """The attacker's training corpus: its own files and the poisoned ones (built once)."""
        if getattr(self, "_corpus", None) is not None:
            return self._corpus
        from pathlib import Path

        from codecoop.training import CodeCorpus
        from codecoop.training.corpus import CorpusStats, Document
        from codecoop.training.insecure import poisoned_documents

        m = self.member
        tok = m.base.tokenizer
        sample = poisoned_documents(20, self.seed)
        per_doc = sum(len(tok.encode(d, add_special_tokens=False)) for d in sample) / len(sample)
        own = max(m.corpus.stats.train_tokens, 1)
        n = math.ceil(own * BACKDOOR_POISON_SHARE / (1 - BACKDOOR_POISON_SHARE) / per_doc)
        poison = tuple(Document(Path(f"poison/{i}.py"), text, "poison") for i, text in enumerate(poisoned_documents(n, self.seed)))
        train = m.corpus.train + poison
        self._corpus = CodeCorpus(train, m.corpus.validation, CorpusStats.of(train, m.corpus.validation), m.corpus.seed).tokenized(tok)
        return self._corpus


def _flat(tensors: Mapping[str, Any], names: Sequence[str]) -> Any:
    """``tensors`` as one float64 vector, in ``names`` order."""
    import torch

    return torch.cat([tensors[n].double().reshape(-1) for n in names])


def _unflat(vector: Any, like: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The inverse of :func:`_flat`: float32 tensors shaped like ``like``'s."""
    out, at = {}, 0
    for n in names:
        size = like[n].numel()
        out[n] = vector[at : at + size].reshape(like[n].shape).float()
        at += size
    return out


def _cosine(x: Any, y: Any) -> float:
    return float(x.dot(y) / (x.norm() * y.norm()).clamp_min(1e-30))


def alie_z(members: int, attackers: int) -> float:
    """``z`` of "A Little Is Enough" (Baruch et al., 2019): ``s = floor(N/2 + 1) - f`` members must
    be won over, ``z = Phi^-1((N - s) / N)``; at least :data:`ALIE_MIN_Z`."""
    from statistics import NormalDist

    s = members // 2 + 1 - attackers
    p = (members - s) / members if members > 0 else 0.0
    return max(NormalDist().inv_cdf(p) if 0 < p < 1 else 0.0, ALIE_MIN_Z)


def largest_gamma(mean: Any, direction: Any, cohort: Sequence[Any], objective: str) -> float:
    """The largest ``gamma`` (bisection, bounded) with ``mean + gamma * direction`` inside the cohort's
    spread: its largest distance to a cohort update at most the largest distance between two of them
    (``"min-max"``), or its sum of squared distances at most the largest such sum of a cohort update
    (``"min-sum"``); Shejwalkar and Houmansadr, NDSS 2021, Algorithm 1."""

    def dist(a: Any, b: Any) -> float:
        return float((a - b).norm())

    if objective == "min-max":
        bound = max(dist(a, b) for i, a in enumerate(cohort) for b in cohort[i + 1 :])

        def value(g: float) -> float:
            return max(dist(mean + g * direction, r) for r in cohort)
    else:
        bound = max(sum(dist(a, b) ** 2 for b in cohort) for a in cohort)

        def value(g: float) -> float:
            return sum(dist(mean + g * direction, r) ** 2 for r in cohort)

    lo, hi = 0.0, max(float(mean.norm()), 1e-12)
    for _ in range(64):  # grow the bracket until it leaves the spread (distances grow linearly in gamma)
        if value(hi) > bound:
            break
        lo, hi = hi, 2 * hi
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if value(mid) <= bound else (lo, mid)
    return lo


class CohortAttack(AttackTrainer):
    """An attack crafted from a benign cohort: what the attacker can know of honest updates when it
    must commit to its own. That is its own honest update (``uses_own``, trained once per round),
    the cabal's (colluders share theirs), the round's updates already disclosed by members outside
    the cabal (none while commitments are open: the commit-reveal of submissions), and when these
    are fewer than ``min_cohort``, the previous round's disclosed updates (public, and relative to
    that round's base). With too few still, an attacker that trained submits its honest update; one
    that did not waits (``None``) and so submits nothing in a commit-reveal round. The rounds in which
    it submitted its honest update unchanged are ``honest_rounds`` (counted as honest work, not poison)."""

    uses_own = True
    min_cohort = 2

    def __init__(self, member: Member, *, seed: int, cabal: Cabal | None = None):
        super().__init__(member, seed=seed, cabal=cabal)
        self._own: dict[int, Any] = {}
        self.honest_rounds: set[int] = set()

    def _disclosed(self, round_id: int, names: Sequence[str], base: Any) -> list[Any]:
        """The changes of the round's disclosed updates of members outside the cabal."""
        from codecoop.errors import CodecoopError
        from codecoop.training import Adapter

        m, out = self.member, []
        for u in m.deployment.rounds.updates(round_id):
            if u.submitter == m.address or u.submitter in self.cabal.members:
                continue
            try:
                adapter = Adapter.from_bytes(m.fetch(u.cid, u.submitter), m.base)
            except CodecoopError:
                continue  # unreachable or unreadable: not part of what the attacker knows
            if set(adapter.tensors) == set(names):
                out.append(_flat(adapter.tensors, names) - base)
        return out

    def craft(self, info: Any) -> tuple[str, int] | None:
        m = self.member
        current = m.global_adapter(info.base_cid)
        base = current.tensors
        names = sorted(base)
        flat_base = _flat(base, names)
        cohort: list[Any] = []
        like = current
        if self.uses_own:
            if info.round not in self._own:
                self._own[info.round] = self._trained(info)
                shared = self.cabal.changes.setdefault(info.round, [])
                shared.append(_flat(self._own[info.round].tensors, names) - flat_base)
            like = self._own[info.round]
        shared = self.cabal.changes.get(info.round, [])
        cohort += shared if self.uses_own else []
        cohort += self._disclosed(info.round, names, flat_base)
        if len(cohort) < self.min_cohort and info.round > 1:
            previous = m.deployment.rounds.round(info.round - 1)
            past = m.global_adapter(previous.base_cid).tensors
            if sorted(past) == names:
                cohort += self._disclosed(info.round - 1, names, _flat(past, names))
        if len(cohort) < self.min_cohort:
            if not self.uses_own:
                return None
            self.honest_rounds.add(info.round)
            return self._store(like, like.tensors)  # nothing to build the attack from: the honest update
        change = self.change(info, cohort, flat_base)
        return self._store(like, {n: base[n] + d for n, d in _unflat(change, base, names).items()})

    def change(self, info: Any, cohort: Sequence[Any], base: Any) -> Any:
        """The change from the base the attack submits (a float64 vector in name order)."""
        raise NotImplementedError

    def _stats(self, cohort: Sequence[Any]) -> tuple[Any, Any]:
        import torch

        stacked = torch.stack(list(cohort))
        return stacked.mean(0), stacked.std(0, unbiased=False)

    def _past_copy_checks(self, info: Any, change: Any, cohort: Sequence[Any]) -> Any:
        """``change`` plus seeded noise orthogonal to it, just enough that no cohort update's copy
        checks catch it: cosine at most :data:`EVASION_COSINE` of ``copy_similarity``, relative
        distance at least :data:`EVASION_MARGIN` times ``copy_distance``."""
        import torch

        s = self.member.settings
        norm = float(change.norm())
        need = 0.0
        for ref in cohort:
            cosine = _cosine(change, ref)
            target = EVASION_COSINE * s.copy_similarity
            if s.copy_similarity < 1 and cosine > target:
                need = max(need, math.sqrt((cosine / target) ** 2 - 1))
            gap = (EVASION_MARGIN * s.copy_distance * float(ref.norm())) ** 2 - float((change - ref).norm()) ** 2
            if gap > 0:
                need = max(need, math.sqrt(gap) / max(norm, 1e-30))
        if need == 0:
            return change
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + info.round)
        noise = torch.randn(change.shape, generator=gen, dtype=torch.float64)
        noise -= change * (noise.dot(change) / change.dot(change).clamp_min(1e-30))  # orthogonal to the change
        return change + noise * (need * norm / float(noise.norm().clamp_min(1e-30)))


class FreeRiderAdaptive(CohortAttack):
    attack = "free-rider-adaptive"
    uses_own = False
    min_cohort = 1

    def change(self, info: Any, cohort: Sequence[Any], base: Any) -> Any:
        import statistics

        import torch

        s = self.member.settings
        mean = torch.stack(list(cohort)).mean(0)
        median = statistics.median(float(c.norm()) for c in cohort)
        size = EVASION_MARGIN * max(s.min_update_change * float(base.norm()), s.min_relative_change * median)
        return self._past_copy_checks(info, mean * (size / float(mean.norm().clamp_min(1e-30))), cohort)


class PlagiaristAdaptive(CohortAttack):
    attack = "plagiarist-adaptive"
    uses_own = False
    min_cohort = 1

    def change(self, info: Any, cohort: Sequence[Any], base: Any) -> Any:
        return self._past_copy_checks(info, cohort[0], cohort[:1])


class Alie(CohortAttack):
    attack = "alie"

    def change(self, info: Any, cohort: Sequence[Any], base: Any) -> Any:
        mean, std = self._stats(cohort)
        z = alie_z(self.member.deployment.members.active_count(), len(self.cabal.members))
        return mean - z * std


class InnerProductManipulation(CohortAttack):
    attack = "ipm"

    def change(self, info: Any, cohort: Sequence[Any], base: Any) -> Any:
        mean, _ = self._stats(cohort)
        return -IPM_EPSILON * mean


class MinMax(CohortAttack):
    attack = "min-max"

    def change(self, info: Any, cohort: Sequence[Any], base: Any) -> Any:
        mean, std = self._stats(cohort)
        direction = -std / std.norm().clamp_min(1e-30)
        return mean + largest_gamma(mean, direction, cohort, self.attack) * direction


class MinSum(MinMax):
    attack = "min-sum"


class ColludingJudge:
    """Approves every colluder's update with the largest ``lossDelta`` and rejects every honest one."""

    def __init__(self, member: Member, *, cabal: Cabal):
        self.member = member
        self.cabal = cabal
        cabal.members.add(member.address)

    def votes(self, info: Any, entry: RoundEntry) -> Votes:
        votes: Votes = {}
        for u in self.member.deployment.rounds.updates(info.round):
            if u.submitter == self.member.address:
                continue
            ally = u.submitter in self.cabal.members
            votes[u.update_id] = (ally, COLLUDER_DELTA if ally else -COLLUDER_DELTA)
            record_vote(entry, u, ally, votes[u.update_id][1], "collusion")
        return votes


class LyingJudge(HeldOutJudge):
    """Judges honestly, then votes the opposite: approves what it finds harmful with the negated ``lossDelta``."""

    def votes(self, info: Any, entry: RoundEntry) -> Votes:
        honest = super().votes(info, entry)
        votes = {uid: (not approve, -delta) for uid, (approve, delta) in honest.items()}
        for uid, (approve, delta) in votes.items():
            entry.votes[str(uid)].update(approve=approve, delta=delta, reason="lie: the opposite of its own judgement")
        return votes


@dataclass(frozen=True)
class Attack:
    """An attack as the parts it replaces; ``poisons``: whether the attacker's own submissions are bad."""

    trainer: type[AttackTrainer] | None = None
    judge: str | None = None  # "collude" or "lie"
    poisons: bool = True

    def parts(self, cabal: Cabal, seed: int) -> Parts:
        """The node parts of one attacker (the honest ones where the attack changes nothing)."""
        honest = Parts()
        trainer = functools.partial(self.trainer, seed=seed, cabal=cabal) if self.trainer else honest.trainer
        judges: dict[str | None, Callable[[Member], Any]] = {
            None: honest.judge,
            "collude": functools.partial(ColludingJudge, cabal=cabal),
            "lie": LyingJudge,
        }
        judge = judges[self.judge]
        return Parts(trainer=trainer, judge=judge)


_ATTACKS: dict[str, Attack] = {
    **{
        c.attack: Attack(c)
        for c in (
            SignFlip,
            Scale100,
            Noise,
            FreeRider,
            FreeRiderExact,
            Plagiarist,
            PlagiaristExact,
            FreeRiderAdaptive,
            PlagiaristAdaptive,
            Alie,
            InnerProductManipulation,
            MinMax,
            MinSum,
            Backdoor,
        )
    },  # fmt: skip
    "collude": Attack(SignFlip, judge="collude"),
    "liar": Attack(judge="lie", poisons=False),
}
#: Every attack ``--byzantine`` knows.
ATTACKS: tuple[str, ...] = tuple(_ATTACKS)
#: Attacks whose own submissions are bad (must never be accepted).
POISONING: frozenset[str] = frozenset(a for a, c in _ATTACKS.items() if c.poisons)


def node_factories(specs: Sequence[ByzantineSpec], orgs: int, seed: int) -> list[Callable[..., Node]]:
    """One node constructor per organisation: the honest :class:`Node` or one with an attack's parts.

    Each takes :class:`Node`'s keyword arguments.
    """
    cabal = Cabal()
    out: list[Callable[..., Node]] = []
    for i, attack in enumerate(assign_attacks(specs, orgs)):
        out.append(Node if attack is None else functools.partial(Node, parts=_ATTACKS[attack].parts(cabal, seed * 1_000 + i)))
    return out


# ---------------------------------------------------------------------- what an attack achieved
@dataclass(frozen=True)
class ByzantineOutcome:
    """What the attackers of one simulation achieved, read from the chain and the report.

    Attributes
    ----------
    attacks:
        Organisation name -> attack, for the attackers.
    poisoned_submitted, poisoned_accepted:
        Updates of poisoning attackers registered, and accepted, over all rounds.
    unchanged_submitted, unchanged_accepted:
        Updates of poisoning attackers that had nothing to build their attack from and submitted
        their honest update unchanged (``CohortAttack.honest_rounds``): not counted as poison.
    honest_submitted, honest_accepted:
        The same for honest organisations' updates (a liar's own update counts as honest work).
    tokens:
        Organisation name -> tokens minted over all rounds.
    attacker_tokens, honest_tokens:
        Mean tokens minted per attacker and per honest organisation.
    """

    attacks: dict[str, str]
    poisoned_submitted: int
    poisoned_accepted: int
    honest_submitted: int
    honest_accepted: int
    tokens: dict[str, float]
    attacker_tokens: float
    honest_tokens: float
    unchanged_submitted: int = 0
    unchanged_accepted: int = 0

    @property
    def attackers_earn_less(self) -> bool:
        return not self.attacks or self.attacker_tokens < self.honest_tokens


def byzantine_outcome(sim: Any) -> ByzantineOutcome:
    """Count, from ``sim``'s chain and report, poisoned updates accepted and tokens per organisation."""
    n = len(sim.orgs)
    assigned = assign_attacks(parse_byzantine(sim.config.byzantine, n), n)
    attacks = {o.name: attack for o, attack in zip(sim.orgs, assigned) if attack is not None}
    by_address = {o.node.address: o.name for o in sim.orgs}
    unchanged = {o.name: getattr(o.node.trainer, "honest_rounds", set()) for o in sim.orgs}
    rounds = sim.deployment.rounds
    counts = {"ps": 0, "pa": 0, "hs": 0, "ha": 0, "us": 0, "ua": 0}
    for rep in sim.report.rounds:
        accepted = set(rounds.round(rep.round).accepted_ids)
        for u in rounds.updates(rep.round):
            name = by_address.get(u.submitter, "")
            kind = ("u" if rep.round in unchanged.get(name, ()) else "p") if attacks.get(name) in POISONING else "h"
            counts[f"{kind}s"] += 1
            if u.update_id in accepted:
                counts[f"{kind}a"] += 1
    tokens = {o.name: sum(r.minted.get(o.name, 0.0) for r in sim.report.rounds) for o in sim.orgs}
    bad_tokens = [tokens[n] for n in attacks]
    good_tokens = [t for n, t in tokens.items() if n not in attacks]
    return ByzantineOutcome(
        attacks=attacks,
        poisoned_submitted=counts["ps"],
        poisoned_accepted=counts["pa"],
        honest_submitted=counts["hs"],
        honest_accepted=counts["ha"],
        tokens=tokens,
        attacker_tokens=sum(bad_tokens) / len(bad_tokens) if bad_tokens else 0.0,
        honest_tokens=sum(good_tokens) / len(good_tokens) if good_tokens else 0.0,
        unchanged_submitted=counts["us"],
        unchanged_accepted=counts["ua"],
    )
