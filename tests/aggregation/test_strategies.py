"""Each strategy against a plain numpy reference on random data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codecoop.aggregation import FedAvg, FedMedian, FedTrimmedAvg, Krum, MultiKrum, Update, sample_weights
from codecoop.errors import AggregationError, ConfigError

from . import reference as ref
from .data import make_updates


def assert_same(result: dict[str, torch.Tensor], expected: dict[str, np.ndarray]) -> None:
    """Bit-identical to the float64 reference rounded once to float32."""
    assert sorted(result) == sorted(expected)
    for name, t in result.items():
        assert t.dtype == torch.float32 and tuple(t.shape) == expected[name].shape
        assert torch.equal(t, torch.from_numpy(expected[name].astype(np.float32))), name


def test_fedavg_is_the_sample_weighted_mean_bit_for_bit(updates: list[Update]) -> None:
    assert_same(dict(FedAvg().aggregate(updates).tensors), ref.fedavg(updates))


def test_fedavg_weight_cap_holds_every_weight_at_or_below_the_cap() -> None:
    weights = sample_weights([1000, 10, 20, 30, 40], max_weight=0.3)
    assert max(weights) == pytest.approx(0.3)
    assert sum(weights) == pytest.approx(1.0)
    # The uncapped ones keep their proportions.
    assert weights[2] / weights[1] == pytest.approx(2.0)
    assert weights[4] / weights[1] == pytest.approx(4.0)


def test_fedavg_weight_cap_below_one_over_n_gives_equal_weights() -> None:
    assert sample_weights([5, 1, 1], max_weight=0.1) == pytest.approx([1 / 3] * 3)


def test_fedavg_with_cap_matches_the_reference_with_capped_weights(updates: list[Update]) -> None:
    ordered = sorted(updates, key=lambda u: u.cid)
    weights = sample_weights([u.num_samples for u in ordered], max_weight=0.2)
    assert_same(dict(FedAvg(max_weight=0.2).aggregate(updates).tensors), ref.fedavg(updates, weights))


@pytest.mark.parametrize("n", [1, 2, 5, 6])
def test_fedmedian_matches_numpy_median_for_odd_and_even_counts(n: int) -> None:
    ups = make_updates(n, seed=n, big=n == 6)
    assert_same(dict(FedMedian().aggregate(ups).tensors), ref.fedmedian(ups))


@pytest.mark.parametrize(("n", "beta"), [(5, 0.2), (10, 0.1), (10, 0.25), (4, 0.0)])
def test_fedtrimmedavg_matches_the_trimmed_mean(n: int, beta: float) -> None:
    ups = make_updates(n, seed=10 + n, big=n == 10)
    result = FedTrimmedAvg(beta=beta).aggregate(ups).tensors
    for name, expected in ref.fedtrimmedavg(ups, beta).items():
        np.testing.assert_allclose(result[name].numpy(), expected.astype(np.float32), rtol=1e-6, atol=1e-7)


def test_fedtrimmedavg_refuses_beta_of_one_half() -> None:
    with pytest.raises(ConfigError, match="beta"):
        FedTrimmedAvg(beta=0.5)


@pytest.mark.parametrize("f", [0, 1, 2])
def test_krum_returns_exactly_the_update_numpy_krum_selects(f: int) -> None:
    ups = make_updates(8, seed=20 + f)
    (chosen,) = ref.krum_select(ups, f=f, m=1)
    expected = next(u for u in ups if u.cid == chosen)
    result = Krum(f=f).aggregate(ups).tensors
    assert all(torch.equal(result[k], expected.tensors[k]) for k in expected.tensors)


def test_multikrum_averages_the_selected_updates() -> None:
    ups = make_updates(9, seed=30, big=True)
    chosen = set(ref.krum_select(ups, f=2, m=5))
    kept = [u for u in ups if u.cid in chosen]
    assert_same(dict(MultiKrum(f=2, m=5).aggregate(ups).tensors), ref.fedavg(kept))


def test_multikrum_keeps_n_minus_f_by_default() -> None:
    ups = make_updates(7, seed=31)
    agg = MultiKrum(f=2).aggregate(ups)
    chosen = set(ref.krum_select(ups, f=2, m=5))
    assert_same(dict(agg.tensors), ref.fedavg([u for u in ups if u.cid in chosen]))


def test_krum_refuses_too_few_updates_for_f() -> None:
    with pytest.raises(AggregationError, match="at least 5"):
        Krum(f=2).aggregate(make_updates(4))


def test_strategies_keep_bfloat16_adapters_in_bfloat16() -> None:
    ups = make_updates(4, seed=40, dtype=torch.bfloat16)
    for strategy in (FedAvg(), FedMedian(), FedTrimmedAvg(0.25), Krum(f=1)):
        result = strategy.aggregate(ups).tensors
        assert all(t.dtype == torch.bfloat16 for t in result.values()), strategy.name
    avg = FedAvg().aggregate(ups).tensors
    for name, expected in ref.fedavg(ups).items():
        np.testing.assert_allclose(avg[name].float().numpy(), expected, rtol=1e-2, atol=1e-2)
