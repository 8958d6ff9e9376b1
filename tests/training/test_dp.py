"""Client-side differential privacy: clipping bounds the update, the noise has the promised scale and
seed, and the (epsilon, delta) accountant composes rounds the way the Gaussian mechanism's RDP says."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from codecoop.errors import ConfigError
from codecoop.training import Adapter, BaseModel, CodeCorpus, TrainConfig, train_lora
from codecoop.training.dp import PrivacyAccountant, epsilon, noise_seed, privatize_update

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CFG = TrainConfig(steps=3, batch_size=4, seq_len=64, lr=1e-2, target_modules=ALL_LINEAR, progress=False)


def _norm(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor] | None = None) -> float:
    return math.sqrt(sum(float(((a[k].double() - (b[k].double() if b else 0)) ** 2).sum()) for k in a))


def _tensors(scale: float, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"a.weight": torch.randn(64, 32, generator=g) * scale, "b.weight": torch.randn(10_000, generator=g) * scale}


def test_clipping_bounds_the_change_from_the_origin_and_keeps_its_direction():
    origin, x = _tensors(1.0, 0), _tensors(1.0, 1)
    out = privatize_update(x, origin, clip_norm=0.5, noise_multiplier=0.0, seed=0)
    assert out.clipped and out.norm == pytest.approx(_norm(x, origin), rel=1e-9)
    assert _norm(out.tensors, origin) == pytest.approx(0.5, rel=1e-5)
    delta, clipped = x["b.weight"] - origin["b.weight"], out.tensors["b.weight"] - origin["b.weight"]
    assert torch.nn.functional.cosine_similarity(delta, clipped, dim=0) > 0.9999


def test_an_update_within_the_bound_passes_unchanged_without_noise():
    origin = _tensors(1.0, 0)
    x = {k: v + 1e-4 for k, v in origin.items()}
    out = privatize_update(x, origin, clip_norm=10.0, noise_multiplier=0.0, seed=0)
    assert not out.clipped and all(torch.equal(out.tensors[k], x[k]) for k in x)


def test_noise_has_std_noise_multiplier_times_clip_and_is_reproducible_by_seed():
    zero = {"w": torch.zeros(200_000)}
    a = privatize_update(zero, None, clip_norm=0.5, noise_multiplier=1.2, seed=7)
    b = privatize_update(zero, None, clip_norm=0.5, noise_multiplier=1.2, seed=7)
    c = privatize_update(zero, None, clip_norm=0.5, noise_multiplier=1.2, seed=8)
    assert a.noise_std == pytest.approx(0.6)
    assert float(a.tensors["w"].std()) == pytest.approx(0.6, rel=0.01) and abs(float(a.tensors["w"].mean())) < 0.01
    assert torch.equal(a.tensors["w"], b.tensors["w"]) and not torch.equal(a.tensors["w"], c.tensors["w"])


def test_each_round_gets_its_own_noise_seed_and_an_unset_seed_is_fresh():
    assert noise_seed(5, "round1") == noise_seed(5, "round1") != noise_seed(5, "round2")
    assert noise_seed(5, None) != noise_seed(6, None)
    assert noise_seed(None, "round1") != noise_seed(None, "round1")


def test_epsilon_grows_with_rounds_and_shrinks_with_noise():
    by_rounds = [epsilon(1.0, t, 1e-5) for t in (1, 2, 5, 10, 50)]
    assert by_rounds == sorted(by_rounds) and len(set(by_rounds)) == 5
    by_noise = [epsilon(z, 10, 1e-5) for z in (0.5, 1.0, 2.0, 4.0)]
    assert by_noise == sorted(by_noise, reverse=True) and len(set(by_noise)) == 4
    assert epsilon(1.0, 10, 1e-6) > epsilon(1.0, 10, 1e-4)
    assert epsilon(0.0, 1, 1e-5) == math.inf and epsilon(1.0, 0, 1e-5) == 0.0


def test_epsilon_is_the_rdp_of_the_composed_gaussian_mechanism():
    """Without subsampling the Gaussian mechanism's RDP is T*alpha/(2 z^2); opacus converts it to
    (epsilon, delta) with Balle et al.'s bound, minimised over its orders."""
    from opacus.accountants.rdp import RDPAccountant

    z, t, delta = 1.3, 20, 1e-5
    orders = RDPAccountant.DEFAULT_ALPHAS
    expected = min(t * a / (2 * z * z) + math.log((a - 1) / a) - (math.log(delta) + math.log(a)) / (a - 1) for a in orders if a > 1)
    assert epsilon(z, t, delta) == pytest.approx(expected, rel=1e-6)


def test_the_accountant_composes_rounds_with_different_noise():
    acc = PrivacyAccountant(1e-5)
    acc.step(1.0, rounds=3)
    acc.step(2.0, rounds=2)
    assert acc.rounds == 5
    assert epsilon(2.0, 5, 1e-5) < acc.epsilon() < epsilon(1.0, 5, 1e-5)
    with pytest.raises(ConfigError):
        PrivacyAccountant(1.5)


def test_noise_without_a_clip_norm_is_refused():
    with pytest.raises(ConfigError, match="dp_clip_norm"):
        TrainConfig(dp_noise_multiplier=1.0)
    with pytest.raises(ConfigError, match="dp_delta"):
        TrainConfig(dp_clip_norm=1.0, dp_delta=0.0)


def test_training_with_dp_clips_the_update_from_the_start_adapter(tiny: BaseModel, corpus: CodeCorpus) -> None:
    start = train_lora(tiny, corpus, CFG)
    free = train_lora(tiny, corpus, replace(CFG, seed=1), start=start)
    clip = 0.25 * _norm(free.tensors, start.tensors)
    clipped = train_lora(tiny, corpus, replace(CFG, seed=1, dp_clip_norm=clip), start=start)
    assert _norm(clipped.tensors, start.tensors) == pytest.approx(clip, rel=1e-4)
    meta = Adapter.from_bytes(clipped.to_bytes(), tiny).training["dp"]
    assert meta == {"clip_norm": clip, "noise_multiplier": 0.0, "delta": 1e-5, "epsilon_per_round": None}


def test_training_with_dp_noise_is_reproducible_with_a_seed_and_records_epsilon(tiny: BaseModel, corpus: CodeCorpus) -> None:
    cfg = replace(CFG, dp_clip_norm=0.1, dp_noise_multiplier=1.0, dp_seed=3)
    a, b = train_lora(tiny, corpus, cfg), train_lora(tiny, corpus, cfg)
    c = train_lora(tiny, corpus, replace(cfg, dp_seed=4))
    assert a.digest() == b.digest() != c.digest()
    eps = a.training["dp"]["epsilon_per_round"]
    assert eps == pytest.approx(epsilon(1.0, 1, 1e-5), rel=1e-5)
    assert "dp_seed" not in a.training and 3 not in a.training["dp"].values()


def test_the_cli_prints_epsilon_over_rounds_and_refuses_a_bad_delta(capsys):
    from codecoop.cli import main

    assert main(["audit", "dp", "--noise-multiplier", "1.0", "--rounds", "10", "--delta", "1e-5"]) == 0
    out = capsys.readouterr().out
    assert f"{epsilon(1.0, 10, 1e-5):.3f}" in out and f"{epsilon(1.0, 5, 1e-5):.3f}" in out
    assert main(["audit", "dp", "--noise-multiplier", "1.0", "--delta", "2"]) == 1
    assert "delta" in capsys.readouterr().err
