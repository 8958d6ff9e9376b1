"""The judge's paired sequential test: stops early only when the verdict is clear."""

from __future__ import annotations

import math

import numpy as np
import pytest

from codecoop.errors import ConfigError
from codecoop.node.evaluation import SequentialTest, block_order, paired_delta

RNG = np.random.default_rng(3)
BASE = 2.0 + RNG.normal(0.0, 0.5, size=64)  # per-block losses vary a lot from block to block ...


class Scorer:
    """Per-block losses of an update that shifts every block by ``shift`` (plus small paired noise)."""

    def __init__(self, shift: float, noise: float = 0.01):
        self.losses = BASE - shift + np.random.default_rng(5).normal(0.0, noise, size=len(BASE))
        self.scored = 0

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        self.scored += len(indices)
        return self.losses[indices]


def test_a_clearly_harmful_update_is_rejected_after_the_minimum_blocks() -> None:
    score = Scorer(shift=-0.5)  # ... but the paired delta barely does
    verdict = paired_delta(BASE, score, threshold=-0.02, test=SequentialTest(z=3, min_blocks=4, chunk=4))
    assert not verdict.approve and verdict.blocks == 4 and score.scored == 4 and verdict.stopped_early
    assert verdict.delta == pytest.approx(-0.5, abs=0.02)


def test_a_clearly_useful_update_is_approved_early() -> None:
    verdict = paired_delta(BASE, Scorer(shift=0.1), threshold=-0.02, test=SequentialTest(min_blocks=6, chunk=2))
    assert verdict.approve and verdict.blocks == 6


def test_a_borderline_update_is_scored_on_every_block_and_gets_the_full_figure() -> None:
    score = Scorer(shift=0.0)
    noise = np.random.default_rng(8).normal(0.0, 0.05, size=len(BASE))
    score.losses = BASE + 0.02 - (noise - noise.mean())  # the mean delta is exactly the threshold
    verdict = paired_delta(BASE, score, threshold=-0.02)
    assert verdict.blocks == verdict.total == len(BASE) and not verdict.stopped_early
    assert verdict.delta == pytest.approx(float((BASE - score.losses).mean()), abs=1e-12)


def test_z_zero_turns_early_stopping_off() -> None:
    score = Scorer(shift=-0.5)
    verdict = paired_delta(BASE, score, threshold=0.0, test=SequentialTest(z=0))
    assert verdict.blocks == len(BASE) and score.scored == len(BASE)
    assert verdict.delta == pytest.approx(float((BASE - score.losses).mean()), abs=1e-12)


def test_early_verdicts_agree_with_full_evaluation_over_many_updates() -> None:
    rng = np.random.default_rng(11)
    disagreements = 0
    for _ in range(300):
        shift, noise = rng.normal(0.0, 0.05), rng.uniform(0.005, 0.08)
        scorer = Scorer(shift, noise)
        scorer.losses = BASE - shift + rng.normal(0.0, noise, size=len(BASE))
        full = float((BASE - scorer.losses).mean()) >= -0.02
        disagreements += paired_delta(BASE, scorer, threshold=-0.02).approve != full
    assert disagreements <= 3, f"{disagreements} of 300 verdicts differ from a full evaluation"


def test_a_non_finite_loss_rejects_at_once() -> None:
    score = Scorer(shift=0.1)
    score.losses[block_order(len(BASE))[1]] = math.nan
    verdict = paired_delta(BASE, score, threshold=-0.02)
    assert not verdict.approve and verdict.delta == -math.inf


def test_the_block_order_is_a_fixed_permutation() -> None:
    order = block_order(16)
    assert sorted(order.tolist()) == list(range(16)) and order.tolist() != list(range(16))
    assert order.tolist() == block_order(16).tolist()


@pytest.mark.parametrize(
    ("kwargs", "key"), [({"z": -1}, "early_stop_z"), ({"z": math.inf}, "early_stop_z"), ({"min_blocks": 1}, "min_blocks")]
)
def test_bad_settings_name_the_key(kwargs: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        SequentialTest(**kwargs)
