"""With f of n updates poisoned, robust strategies stay near the honest mean; FedAvg does not.

Stated bound: the robust aggregate lies within the honest radius ``R = max_i ||x_i - mu||`` of the
honest mean ``mu`` (no farther than the farthest honest update), while FedAvg is pushed more than
``5 R`` away. Here ``n = 10`` and ``f = 2``, and the attackers claim 100 times the honest sample
count so that FedAvg weighs them heavily.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from codecoop.aggregation import Update, get_strategy, update_norm

from .data import SHAPES

N_HONEST, F = 8, 2
ROBUST = {
    "fedmedian": {},
    "fedtrimmedavg": {"beta": 0.2},
    "krum": {"f": F},
    "multikrum": {"f": F},
}


def sign_flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return -10.0 * x


def scaled(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return 100.0 * x


def noise(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return 10.0 * torch.randn(x.shape, generator=g)


ATTACKS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "sign_flip_x10": sign_flip,
    "scaled_x100": scaled,
    "random_noise": noise,
}


def scenario(attack: str) -> tuple[list[Update], dict[str, torch.Tensor], float]:
    """Honest updates around a common direction plus ``F`` attackers; returns (updates, mu, R)."""
    g = torch.Generator().manual_seed(2024)
    centre = {k: torch.randn(s, generator=g) for k, s in SHAPES.items()}
    honest = [{k: c + 0.1 * torch.randn(c.shape, generator=g) for k, c in centre.items()} for _ in range(N_HONEST)]
    mu = {k: torch.stack([h[k] for h in honest]).mean(0) for k in centre}
    radius = max(distance(h, mu) for h in honest)
    bad = [{k: ATTACKS[attack](honest[i][k], g) for k in centre} for i in range(F)]
    updates = [Update(f"honest{i}", h, 100) for i, h in enumerate(honest)]
    updates += [Update(f"attacker{i}", b, 10_000) for i, b in enumerate(bad)]
    return updates, mu, radius


def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return float(torch.sqrt(sum(((a[k].double() - b[k].double()) ** 2).sum() for k in a)))


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("name", sorted(ROBUST))
def test_robust_strategy_stays_within_the_honest_radius(name: str, attack: str) -> None:
    updates, mu, radius = scenario(attack)
    agg = get_strategy(name, **ROBUST[name]).aggregate(updates)
    assert distance(dict(agg.tensors), mu) <= radius


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_fedavg_is_pulled_far_outside_the_honest_radius(attack: str) -> None:
    updates, mu, radius = scenario(attack)
    agg = get_strategy("fedavg").aggregate(updates)
    assert distance(dict(agg.tensors), mu) > 5 * radius


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_fedavg_weight_cap_and_clipping_limit_but_do_not_remove_the_damage(attack: str) -> None:
    updates, mu, radius = scenario(attack)
    plain = distance(dict(get_strategy("fedavg").aggregate(updates).tensors), mu)
    bound = 1.5 * max(update_norm(u, None) for u in updates if u.cid.startswith("honest"))
    guarded = distance(dict(get_strategy("fedavg", max_weight=0.1, clip_norm=bound).aggregate(updates).tensors), mu)
    assert guarded < plain
