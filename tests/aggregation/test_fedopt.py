"""Server optimisers against numpy, over several rounds with the state carried as bytes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codecoop.aggregation import FedAdagrad, FedAdam, FedAvg, FedYogi, Update, from_safetensors, get_strategy
from codecoop.aggregation.fedopt import FedOpt
from codecoop.errors import AggregationError

from . import reference as ref
from .data import make_updates

PARAMS = {
    "fedadam": {"eta": 0.1, "beta_1": 0.9, "beta_2": 0.99, "tau": 1e-9},
    "fedyogi": {"eta": 0.01, "beta_1": 0.9, "beta_2": 0.99, "tau": 1e-3},
    "fedadagrad": {"eta": 0.1, "beta_1": 0.0, "beta_2": 0.0, "tau": 1e-9},
}


@pytest.mark.parametrize("kind", sorted(PARAMS))
def test_server_optimiser_matches_numpy_over_three_rounds(kind: str) -> None:
    base = {k: v * 0.1 for k, v in make_updates(1, seed=99, big=True)[0].tensors.items()}
    rounds = [make_updates(5, seed=50 + r, big=True) for r in range(3)]
    expected = ref.fedopt(kind, rounds, {k: v.double().numpy() for k, v in base.items()}, **PARAMS[kind])
    strategy = get_strategy(kind)
    state: bytes | None = None
    current = base
    for ups, want in zip(rounds, expected):
        agg = strategy.aggregate(ups, state, base=current)
        for name, t in agg.tensors.items():
            np.testing.assert_allclose(t.numpy(), want[name].astype(np.float32), rtol=2e-6, atol=1e-7)
        state, current = agg.state, agg.tensors
    assert state is not None
    _, meta = from_safetensors(state)
    assert meta == {"codecoop.step": "3", "codecoop.strategy": kind}


def test_state_is_canonical_safetensors_of_float64_moments() -> None:
    ups = make_updates(3, seed=60)
    base = {k: torch.zeros_like(v) for k, v in ups[0].tensors.items()}
    agg = FedAdam().aggregate(ups, base=base)
    assert agg.state is not None
    tensors, _ = from_safetensors(agg.state)
    assert sorted(tensors) == sorted(f"{kind}/{name}" for name in base for kind in "mv")
    assert all(t.dtype == torch.float64 for t in tensors.values())


def test_server_optimiser_needs_the_base_adapter() -> None:
    with pytest.raises(AggregationError, match="base="):
        FedAdam().aggregate(make_updates(3))


def test_state_of_another_strategy_is_refused() -> None:
    ups = make_updates(3, seed=61)
    base = {k: torch.zeros_like(v) for k, v in ups[0].tensors.items()}
    state = FedYogi().aggregate(ups, base=base).state
    with pytest.raises(AggregationError, match="fedyogi"):
        FedAdam().aggregate(ups, state, base=base)


def test_state_for_another_adapter_layout_is_refused() -> None:
    ups = make_updates(3, seed=62)
    base = {k: torch.zeros_like(v) for k, v in ups[0].tensors.items()}
    state = FedAdagrad().aggregate(ups, base=base).state
    other = [Update(u.cid, {"x.lora_A.weight": torch.ones(2, 2)}, 1) for u in ups]
    with pytest.raises(AggregationError, match="layout"):
        FedAdagrad().aggregate(other, state, base={"x.lora_A.weight": torch.zeros(2, 2)})


def test_garbage_state_is_refused() -> None:
    ups = make_updates(3, seed=63)
    base = {k: torch.zeros_like(v) for k, v in ups[0].tensors.items()}
    with pytest.raises(AggregationError, match="unreadable"):
        FedAdam().aggregate(ups, b"not a state", base=base)


def test_fedadagrad_first_step_moves_every_coordinate_by_eta_towards_the_mean() -> None:
    # With v = d^2 and m = d after one step, x = base + eta * d / (|d| + tau), which is eta * sign(d)
    # except where |d| is within a few orders of magnitude of tau.
    ups = make_updates(4, seed=64)
    base = {k: torch.zeros_like(v) for k, v in ups[0].tensors.items()}
    mean = FedAvg().aggregate(ups).tensors
    result = FedAdagrad(eta=0.5).aggregate(ups, base=base).tensors
    for name, t in result.items():
        torch.testing.assert_close(t, 0.5 * torch.sign(mean[name]), rtol=0.0, atol=1e-3)


def test_fedopt_is_abstract() -> None:
    with pytest.raises(TypeError):
        FedOpt()  # type: ignore[abstract]
