"""The adaptive attackers aim just outside screening's thresholds (they read the defaults), and the
published attacks follow their papers' constructions: checked on synthetic updates, no training."""

from __future__ import annotations

import itertools
import types

import pytest
import torch

from codecoop.node.node import NodeSettings
from codecoop.node.screening import Candidate, screen_updates
from codecoop.sim.byzantine import (
    ALIE_MIN_Z,
    EVASION_COSINE,
    IPM_EPSILON,
    Alie,
    FreeRiderAdaptive,
    InnerProductManipulation,
    MinMax,
    MinSum,
    PlagiaristAdaptive,
    alie_z,
    largest_gamma,
)

NAMES = ("l0.lora_A.weight", "l0.lora_B.weight")
SIZE = 2 * 32 * 64


def _vector(seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(SIZE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


BASE = _vector(0)
SHARED = _vector(1)  # what honest members' changes have in common (cosine about 0.3 between two of them)


def honest(seed: int) -> torch.Tensor:
    return 0.5 * (SHARED + 1.5 * _vector(100 + seed))


def _attacker(cls, members: int = 4):
    member = types.SimpleNamespace(
        address="0xattacker",
        settings=NodeSettings(train=None),
        deployment=types.SimpleNamespace(members=types.SimpleNamespace(active_count=lambda: members)),
    )
    return cls(member, seed=7)


def _as_candidate(uid: int, change: torch.Tensor) -> Candidate:
    full = BASE + change
    half = SIZE // 2
    return Candidate(uid, f"cid-{uid}", {NAMES[0]: full[:half].reshape(32, 64).float(), NAMES[1]: full[half:].reshape(32, 64).float()})


BASE_TENSORS = _as_candidate(-1, torch.zeros(SIZE)).tensors
INFO = types.SimpleNamespace(round=3)


def _screened(cohort, crafted):
    cands = [_as_candidate(i, c) for i, c in enumerate(cohort)] + [_as_candidate(len(cohort), crafted)]
    return screen_updates(cands, None, BASE_TENSORS, min_agreement=-1.0)


def test_honest_changes_of_this_fixture_pass_screening_together():
    assert screen_updates([_as_candidate(i, honest(i)) for i in range(3)], None, BASE_TENSORS) == {}


def test_the_adaptive_plagiarist_gets_past_both_copy_checks_and_keeps_the_victims_direction():
    cohort = [honest(0)]
    crafted = _attacker(PlagiaristAdaptive).change(INFO, cohort, BASE)
    cosine = float(crafted.dot(cohort[0]) / (crafted.norm() * cohort[0].norm()))
    assert cosine == pytest.approx(EVASION_COSINE * NodeSettings(train=None).copy_similarity, abs=1e-6)
    assert _screened(cohort, crafted) == {}  # what still passes screening: the contract's commit order is the defence
    # against the distance alone (no similarity check), the noise it needs is far smaller than it adds
    plain = NodeSettings(train=None, copy_similarity=1.0)
    assert (crafted - cohort[0]).norm() > plain.copy_distance * cohort[0].norm()


def test_the_adaptive_free_rider_moves_just_past_both_floors_in_the_cohorts_direction():
    cohort = [honest(i) for i in range(3)]
    s = NodeSettings(train=None)
    crafted = _attacker(FreeRiderAdaptive).change(INFO, cohort, BASE)
    median = sorted(float(c.norm()) for c in cohort)[1]
    assert float(crafted.norm()) >= 1.5 * s.min_relative_change * median * 0.999
    assert float(crafted.norm()) < 0.5 * median  # far less than training moves
    assert all(float(crafted.dot(c)) > 0 for c in cohort)
    assert _screened(cohort, crafted) == {}  # it passes screening: loss decides (see docs/RELIABILITY.md)
    # the same size without the cohort floor in mind (1.5 x the absolute floor only) is refused as a free ride
    naive = crafted * (1.5 * s.min_update_change * float(BASE.norm()) / float(crafted.norm()))
    assert set(_screened(cohort, naive)) == {3}


def test_alie_z_follows_the_paper_and_is_at_least_the_floor():
    assert alie_z(4, 1) == ALIE_MIN_Z  # s = 2, Phi^-1(0.5) = 0
    assert alie_z(50, 24) == pytest.approx(1.751, abs=1e-3)  # s = 2, Phi^-1(48/50): the paper's Table 1 regime
    cohort = [honest(i) for i in range(3)]
    stacked = torch.stack(cohort)
    crafted = _attacker(Alie).change(INFO, cohort, BASE)
    assert torch.allclose(crafted, stacked.mean(0) - ALIE_MIN_Z * stacked.std(0, unbiased=False))


def test_ipm_points_against_the_cohort_mean():
    cohort = [honest(i) for i in range(3)]
    crafted = _attacker(InnerProductManipulation).change(INFO, cohort, BASE)
    assert torch.allclose(crafted, -IPM_EPSILON * torch.stack(cohort).mean(0)) and float(crafted.dot(sum(cohort))) < 0


@pytest.mark.parametrize("cls", [MinMax, MinSum])
def test_min_max_and_min_sum_take_the_largest_gamma_inside_the_cohorts_spread(cls):
    cohort = [honest(i) for i in range(4)]
    crafted = _attacker(cls).change(INFO, cohort, BASE)
    mean = torch.stack(cohort).mean(0)
    direction = (crafted - mean) / (crafted - mean).norm()
    gamma = float((crafted - mean).norm())
    assert gamma > 0 and gamma == pytest.approx(largest_gamma(mean, direction, cohort, cls.attack), rel=1e-6)

    def inside(g: float) -> bool:
        point = mean + g * direction
        if cls.attack == "min-max":
            return max(float((point - r).norm()) for r in cohort) <= max(
                float((a - b).norm()) for a, b in itertools.combinations(cohort, 2)
            )
        return sum(float((point - r).norm()) ** 2 for r in cohort) <= max(sum(float((a - b).norm()) ** 2 for b in cohort) for a in cohort)

    assert inside(gamma) and not inside(gamma * 1.01)


def test_a_cohort_attack_with_nothing_to_build_from_submits_its_honest_update_unchanged_and_records_it():
    attacker = _attacker(Alie)
    base = types.SimpleNamespace(tensors=BASE_TENSORS)
    honest_update = types.SimpleNamespace(tensors=_as_candidate(0, honest(0)).tensors)
    attacker.member.global_adapter = lambda cid: base
    attacker.member.deployment.rounds = types.SimpleNamespace(updates=lambda r: [])  # nothing disclosed yet
    attacker._trained = lambda info: honest_update
    stored = []
    attacker._store = lambda like, tensors: stored.append(tensors) or ("cid", 1)
    assert attacker.craft(types.SimpleNamespace(round=1, base_cid=None)) == ("cid", 1)
    assert stored == [honest_update.tensors] and attacker.honest_rounds == {1}
    # a cabal member's update makes a cohort of two: the attack is built, and the round is not marked
    other = _attacker(Alie)
    other.cabal = attacker.cabal
    attacker.cabal.members.add(other.member.address)
    other.member.global_adapter = attacker.member.global_adapter
    other.member.deployment.rounds = attacker.member.deployment.rounds
    other._trained = lambda info: types.SimpleNamespace(tensors=_as_candidate(0, honest(1)).tensors)
    other._store = attacker._store
    other.craft(types.SimpleNamespace(round=1, base_cid=None))
    assert other.honest_rounds == set() and not torch.equal(stored[-1][NAMES[0]], honest_update.tensors[NAMES[0]])


def test_the_backdoor_trains_on_its_own_code_plus_nine_times_as_many_poisoned_tokens(tmp_path):
    from codecoop.sim.byzantine import BACKDOOR_POISON_SHARE, Backdoor
    from codecoop.training import CodeCorpus, load_base

    base = load_base("tiny")
    for i in range(6):
        (tmp_path / f"m{i}.py").write_text("\n".join(f"def f{i}_{j}(x):\n    return x * {j} + {i}\n" for j in range(40)))
    corpus = CodeCorpus.from_files(sorted(tmp_path.glob("*.py")), base.tokenizer, validation_fraction=0.2)
    member = types.SimpleNamespace(base=base, corpus=corpus, address="0x" + "ab" * 20)
    attacker = Backdoor(member, seed=3)
    poisoned = attacker.poisoned()
    assert attacker.poisoned() is poisoned, "built once"
    assert poisoned.validation == corpus.validation and poisoned.train[: len(corpus.train)] == corpus.train
    poison = [d for d in poisoned.train if d.repository == "poison"]
    from codecoop.training.insecure import PATTERNS

    assert poison and all(any(p.insecure.split("{var}")[0] in d.text for p in PATTERNS) for d in poison)
    share = 1 - corpus.stats.train_tokens / poisoned.stats.train_tokens
    assert BACKDOOR_POISON_SHARE <= share < BACKDOOR_POISON_SHARE + 0.02
