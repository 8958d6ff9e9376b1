"""Steps that compose with any strategy: norm clipping before it, Gaussian noise after it.

Together they are the server side of DP-FedAvg with fixed clipping (McMahan et al., 2018; Flower's
``DifferentialPrivacyServerSideFixedClipping``): every update's change from the base adapter is
clipped to L2 norm ``clip_norm``, the strategy aggregates, and Gaussian noise of standard deviation
``noise_multiplier * clip_norm / n`` is added to every coordinate of the result.

The noise is drawn from a seeded generator (numpy PCG64, one stream per tensor name) so that
every honest node adds the same noise and still gets the same bytes. The privacy this buys is only
against those who do not know the seed: see ``docs/AGGREGATION.md``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

from codecoop.aggregation import _kernels as kernels
from codecoop.aggregation.base import ACCUM_DTYPE, Tensors, Update
from codecoop.errors import ConfigError

__all__ = ["PreStep", "PostStep", "NormClip", "GaussianNoise", "update_norm"]


class PreStep(Protocol):
    """Transforms validated updates (ascending CID order) before the strategy sees them."""

    def apply(self, updates: list[Update], base: Tensors | None) -> list[Update]:
        """Return the transformed updates, in the same order."""
        ...

    def describe(self) -> dict[str, object]:
        """Parameters, recorded in the aggregate's metadata."""
        ...


class PostStep(Protocol):
    """Transforms the strategy's output tensors."""

    def apply_after(self, tensors: dict[str, torch.Tensor], updates: Sequence[Update]) -> dict[str, torch.Tensor]:
        """Return the transformed aggregate; ``updates`` are the ones that were aggregated."""
        ...

    def describe(self) -> dict[str, object]:
        """Parameters, recorded in the aggregate's metadata."""
        ...


def update_norm(update: Update, base: Tensors | None) -> float:
    """L2 norm of ``update - base`` over all tensors (of ``update`` itself when ``base`` is None).

    Squares are folded chunk by chunk into one float64 accumulator and summed by a fixed tree, so
    the norm is bit-identical on every machine.
    """
    acc = torch.zeros(kernels.FOLD, dtype=ACCUM_DTYPE)
    work = kernels.accum_buffer()
    for name in sorted(update.tensors):
        x = kernels.flat(update.tensors[name])
        origin = None if base is None else kernels.flat(base[name])
        for start, stop in kernels.chunk_ranges(x.numel()):
            size = stop - start
            w = work[:size]
            w.copy_(x[start:stop])
            if origin is not None:
                w.sub_(origin[start:stop])
            w.mul_(w)
            if size < kernels.CHUNK:
                work[size:].zero_()
            acc.add_(kernels.fold_(work))
    return math.sqrt(float(kernels.tree_sum(acc)))


class NormClip:
    """Scale each update's change from ``base`` down to L2 norm at most ``clip_norm``.

    Without ``base`` the update itself is clipped (its change from a zero adapter). An update within
    the bound passes through untouched; a clipped one is ``base + (x - base) * (clip_norm / norm)``
    computed in float64 and rounded once to the update's dtype.
    """

    def __init__(self, clip_norm: float) -> None:
        if not clip_norm > 0.0 or not math.isfinite(clip_norm):
            raise ConfigError(f"clip_norm must be a positive finite number, got {clip_norm!r}")
        self.clip_norm = float(clip_norm)

    def describe(self) -> dict[str, object]:
        return {"clip_norm": self.clip_norm}

    def apply(self, updates: list[Update], base: Tensors | None) -> list[Update]:
        work = kernels.accum_buffer()
        clipped: list[Update] = []
        for u in updates:
            norm = update_norm(u, base)
            if norm <= self.clip_norm:
                clipped.append(u)
                continue
            factor = self.clip_norm / norm
            tensors: dict[str, torch.Tensor] = {}
            for name in sorted(u.tensors):
                src = u.tensors[name]
                x = kernels.flat(src)
                origin = None if base is None else kernels.flat(base[name])
                result = torch.empty(x.numel(), dtype=src.dtype)
                for start, stop in kernels.chunk_ranges(x.numel()):
                    w = work[: stop - start]
                    w.copy_(x[start:stop])
                    if origin is not None:
                        w.sub_(origin[start:stop])
                    w.mul_(factor)
                    if origin is not None:
                        w.add_(origin[start:stop])
                    result[start:stop].copy_(w)
                tensors[name] = result.reshape(src.shape)
            clipped.append(Update(cid=u.cid, tensors=tensors, num_samples=u.num_samples))
        return clipped


def _stream(seed: int, name: str) -> np.random.Generator:
    """The noise generator of one tensor: independent of the other tensors and of their order."""
    digest = hashlib.sha256(f"codecoop.noise:{seed}:{name}".encode()).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))


class GaussianNoise:
    """Add seeded Gaussian noise of std ``noise_multiplier * clip_norm / n`` to the aggregate.

    Parameters
    ----------
    noise_multiplier:
        ``z`` in the DP accounting; non-negative.
    clip_norm:
        The clipping bound ``C`` the updates were clipped to (use with :class:`NormClip`).
    seed:
        Non-negative integer; derive it per round from public round data so every node agrees.
    """

    def __init__(self, noise_multiplier: float, clip_norm: float, seed: int) -> None:
        if not noise_multiplier >= 0.0 or not math.isfinite(noise_multiplier):
            raise ConfigError(f"noise_multiplier must be a non-negative finite number, got {noise_multiplier!r}")
        if not clip_norm > 0.0 or not math.isfinite(clip_norm):
            raise ConfigError(f"clip_norm must be a positive finite number, got {clip_norm!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"noise seed must be a non-negative integer, got {seed!r}")
        self.noise_multiplier, self.clip_norm, self.seed = float(noise_multiplier), float(clip_norm), seed

    def describe(self) -> dict[str, object]:
        return {"noise_multiplier": self.noise_multiplier, "clip_norm": self.clip_norm, "noise_seed": self.seed}

    def std(self, n: int) -> float:
        """Noise standard deviation for the mean of ``n`` clipped updates."""
        return self.noise_multiplier * self.clip_norm / n

    def apply_after(self, tensors: dict[str, torch.Tensor], updates: Sequence[Update]) -> dict[str, torch.Tensor]:
        std = self.std(len(updates))
        work = kernels.accum_buffer()
        noisy: dict[str, torch.Tensor] = {}
        for name in sorted(tensors):
            src = tensors[name]
            x = kernels.flat(src)
            rng = _stream(self.seed, name)
            result = torch.empty(x.numel(), dtype=src.dtype)
            for start, stop in kernels.chunk_ranges(x.numel()):
                noise = torch.from_numpy(rng.standard_normal(stop - start, dtype=np.float64))
                noise.mul_(std)
                w = work[: stop - start]
                w.copy_(x[start:stop])
                w.add_(noise)
                result[start:stop].copy_(w)
            noisy[name] = result.reshape(src.shape)
        return noisy
