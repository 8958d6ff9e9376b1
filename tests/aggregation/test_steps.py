"""Clipping, seeded noise, their composition and the registry."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from codecoop.aggregation import (
    FedAvg,
    FedMedian,
    GaussianNoise,
    NormClip,
    Pipeline,
    available_strategies,
    get_strategy,
    update_norm,
)
from codecoop.errors import ConfigError

from . import reference as ref
from .data import make_updates


def test_update_norm_matches_numpy() -> None:
    u = make_updates(1, seed=80, big=True)[0]
    base = make_updates(1, seed=81, big=True)[0].tensors
    expected = np.sqrt(sum(np.sum((ref.arrays(u)[k] - base[k].double().numpy()) ** 2) for k in base))
    assert update_norm(u, base) == pytest.approx(expected, rel=1e-12)


def test_norm_clip_scales_only_updates_above_the_bound() -> None:
    ups = make_updates(5, seed=82, big=True, spread=0.02)
    ups[2] = make_updates(1, seed=83, big=True, spread=5.0)[0]
    base = {k: torch.zeros_like(v) + 0.01 for k, v in ups[0].tensors.items()}
    bound = 10.0
    clipped = NormClip(bound).apply(sorted(ups, key=lambda u: u.cid), base)
    for before, after in zip(sorted(ups, key=lambda u: u.cid), clipped):
        expected = ref.clip(before, {k: v.double().numpy() for k, v in base.items()}, bound)
        for name, t in after.tensors.items():
            np.testing.assert_allclose(t.numpy(), expected[name].astype(np.float32), rtol=1e-6, atol=1e-7)
        assert update_norm(after, base) <= bound * (1 + 1e-6)
    changed = [a.cid for b, a in zip(sorted(ups, key=lambda u: u.cid), clipped) if a.tensors is not b.tensors]
    assert changed == [ups[2].cid]


def test_noise_has_the_calibrated_standard_deviation() -> None:
    ups = make_updates(4, seed=84, big=True)
    plain = FedAvg().aggregate(ups).tensors
    noisy = Pipeline(FedAvg(), post=[GaussianNoise(2.0, 1.0, seed=5)]).aggregate(ups).tensors
    diffs = torch.cat([(noisy[k].double() - plain[k].double()).reshape(-1) for k in plain])
    assert float(diffs.std()) == pytest.approx(2.0 * 1.0 / 4, rel=0.03)
    assert abs(float(diffs.mean())) < 0.01


def test_noise_is_reproducible_by_seed_and_differs_between_seeds() -> None:
    ups = make_updates(3, seed=85)
    first = get_strategy("fedavg", clip_norm=1.0, noise_multiplier=1.0, noise_seed=11).aggregate(ups).to_bytes()
    again = get_strategy("fedavg", clip_norm=1.0, noise_multiplier=1.0, noise_seed=11).aggregate(ups).to_bytes()
    other = get_strategy("fedavg", clip_norm=1.0, noise_multiplier=1.0, noise_seed=12).aggregate(ups).to_bytes()
    assert first == again != other


def test_pipeline_records_strategy_and_step_parameters_in_metadata() -> None:
    ups = make_updates(3, seed=86)
    agg = get_strategy("fedmedian", clip_norm=0.5, noise_multiplier=0.1, noise_seed=3).aggregate(ups)
    assert agg.metadata["codecoop.strategy"] == "fedmedian"
    assert json.loads(agg.metadata["codecoop.params"]) == {"clip_norm": 0.5, "noise_multiplier": 0.1, "noise_seed": 3}
    assert [cid for cid, _ in json.loads(agg.metadata["codecoop.updates"])] == sorted(u.cid for u in ups)


def test_clip_then_median_equals_median_of_clipped_updates() -> None:
    ups = make_updates(5, seed=87)
    clipped = NormClip(1.0).apply(sorted(ups, key=lambda u: u.cid), None)
    direct = FedMedian().aggregate(clipped).tensors
    piped = Pipeline(FedMedian(), pre=[NormClip(1.0)]).aggregate(ups).tensors
    assert all(torch.equal(piped[k], direct[k]) for k in direct)


def test_registry_lists_every_strategy() -> None:
    assert available_strategies() == sorted(
        ["fedavg", "fedmedian", "fedtrimmedavg", "krum", "multikrum", "fedadam", "fedyogi", "fedadagrad"]
    )


def test_registry_refuses_unknown_names_and_parameters() -> None:
    with pytest.raises(ConfigError, match="choose one of"):
        get_strategy("fedsgd")
    with pytest.raises(ConfigError, match="no parameter beta"):
        get_strategy("fedavg", beta=0.1)
    with pytest.raises(ConfigError, match="needs clip_norm"):
        get_strategy("fedavg", noise_multiplier=1.0, noise_seed=1)
    with pytest.raises(ConfigError, match="noise_multiplier"):
        get_strategy("fedavg", noise_seed=1)


def test_registry_passes_parameters_through() -> None:
    strategy = get_strategy("fedtrimmedavg", beta=0.3)
    assert strategy.describe() == {"beta": 0.3}
