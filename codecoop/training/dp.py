"""Differential privacy for a participant's update: clip its change, add Gaussian noise, account (epsilon, delta).

**Mechanism (client side, per round).** After local training, the change of the LoRA tensors from
the round's starting point (the round's base adapter, or the seeded initial LoRA weights in a first
round) is clipped to L2 norm ``C = dp_clip_norm`` and Gaussian noise of standard deviation
``z * C`` (``z = dp_noise_multiplier``) is added to every coordinate. The arithmetic is the server
side's (:class:`codecoop.aggregation.NormClip` and :class:`codecoop.aggregation.GaussianNoise`
applied to one update), so both sides clip and noise bit for bit alike.

**Accounting.** One round is the Gaussian mechanism with L2 sensitivity ``C`` and noise ``z * C``
applied to the whole update, i.e. *client-level* DP: neighbouring datasets differ in the
organisation's entire data, and every round the organisation takes part in is one composition step
with sampling rate ``q = 1`` (no subsampling of participants, so no amplification is claimed).
Rounds are composed with Rényi DP (Mironov 2017; Abadi et al. 2016) by opacus' ``RDPAccountant``:
``RDP(alpha) = T * alpha / (2 z^2)`` for ``q = 1``, converted to ``(epsilon, delta)`` with opacus'
conversion, minimised over its default orders.

**Seeded noise.** The noise is drawn from a seeded generator so that runs are reproducible. Anyone
who knows the seed can regenerate the noise and subtract it, so the guarantee holds only against
those who do not: set ``dp_seed`` to a secret (or leave it unset: a fresh seed from the operating
system per run) and never publish it; the adapter's metadata records the DP parameters, not the seed.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from codecoop.errors import ConfigError

__all__ = ["DPResult", "privatize_update", "noise_seed", "epsilon", "PrivacyAccountant"]


@dataclass(frozen=True)
class DPResult:
    """A privatised update and what clipping did to it (the norm stays local: it says something about the data)."""

    tensors: dict[str, torch.Tensor]
    norm: float  # L2 norm of the change before clipping
    clipped: bool
    noise_std: float


def noise_seed(dp_seed: int | None, start_digest: str | None) -> int:
    """The noise seed of one round: the secret ``dp_seed`` mixed with the round's starting adapter.

    Mixing in the starting point gives every round its own noise; reusing one noise vector would let
    anyone subtract two rounds' updates and cancel it. ``dp_seed=None`` draws a fresh seed from the
    operating system (private, not reproducible).
    """
    if dp_seed is None:
        return secrets.randbits(63)
    digest = hashlib.sha256(f"codecoop.dp:{dp_seed}:{start_digest or 'initial'}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def privatize_update(
    tensors: Mapping[str, torch.Tensor],
    origin: Mapping[str, torch.Tensor] | None,
    clip_norm: float,
    noise_multiplier: float,
    seed: int,
) -> DPResult:
    """Clip ``tensors - origin`` to L2 norm ``clip_norm`` and add N(0, (noise_multiplier * clip_norm)^2) noise.

    ``origin`` None clips the tensors themselves (their change from a zero adapter).
    """
    from codecoop.aggregation import GaussianNoise, NormClip, Update, update_norm

    update = Update(cid="local", tensors=dict(tensors), num_samples=1)
    norm = update_norm(update, origin)
    (clipped,) = NormClip(clip_norm).apply([update], origin)
    noise = GaussianNoise(noise_multiplier, clip_norm, seed)
    out = noise.apply_after(dict(clipped.tensors), [clipped]) if noise_multiplier > 0 else dict(clipped.tensors)
    return DPResult(out, norm, norm > clip_norm, noise.std(1))


def epsilon(noise_multiplier: float, rounds: int, delta: float, sample_rate: float = 1.0) -> float:
    """Epsilon after ``rounds`` compositions of the (subsampled) Gaussian mechanism at ``delta``.

    Zero noise gives ``inf``; zero rounds give 0.

    Raises
    ------
    ConfigError
        A negative noise multiplier or round count, delta outside (0, 1) or a sample rate outside (0, 1].
    """
    acc = PrivacyAccountant(delta)
    acc.step(noise_multiplier, sample_rate, rounds)
    return acc.epsilon()


@dataclass
class PrivacyAccountant:
    """Running (epsilon, delta) of one participant over the rounds it took part in (opacus RDP accountant).

    ``step`` once per round with that round's noise multiplier; ``epsilon`` at any time.
    """

    delta: float
    history: list[tuple[float, float, int]] = field(default_factory=list)  # (noise multiplier, sample rate, rounds)

    def __post_init__(self) -> None:
        if not 0.0 < self.delta < 1.0:
            raise ConfigError(f"dp delta must be in (0, 1), got {self.delta}; 1e-5 or below 1/(number of organisations) is usual")

    def step(self, noise_multiplier: float, sample_rate: float = 1.0, rounds: int = 1) -> None:
        """Record ``rounds`` rounds of the Gaussian mechanism with these parameters."""
        if not noise_multiplier >= 0.0 or not math.isfinite(noise_multiplier):
            raise ConfigError(f"noise multiplier must be a non-negative number, got {noise_multiplier}")
        if not 0.0 < sample_rate <= 1.0:
            raise ConfigError(f"sample rate must be in (0, 1], got {sample_rate}")
        if rounds < 0:
            raise ConfigError(f"rounds must not be negative, got {rounds}")
        if rounds:
            self.history.append((float(noise_multiplier), float(sample_rate), int(rounds)))

    @property
    def rounds(self) -> int:
        """Rounds recorded so far."""
        return sum(r for _, _, r in self.history)

    def epsilon(self) -> float:
        """Epsilon of everything recorded, at ``delta`` (``inf`` once any round had no noise)."""
        if not self.history:
            return 0.0
        if any(z == 0.0 for z, _, _ in self.history):
            return math.inf
        from opacus.accountants import RDPAccountant

        acc = RDPAccountant()
        acc.history = list(self.history)
        return float(acc.get_epsilon(self.delta))
