"""FedAvg: the sample-weighted mean of the updates, with an optional cap on any one weight.

McMahan et al., 2017. Weight ``w_i = n_i / sum_j n_j``; with ``max_weight = c`` the weights are
water-filled: any update above ``c`` is held at ``c`` and the rest of the mass is shared among the
others in proportion to their sample counts, repeatedly, so no participant dominates by claiming a
large sample count. The weights are computed exactly with fractions and rounded to float64 once.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import torch

from codecoop.aggregation import _kernels as kernels
from codecoop.aggregation.base import StrategyBase, Tensors, Update
from codecoop.errors import ConfigError

__all__ = ["FedAvg", "sample_weights", "weighted_mean"]


def sample_weights(num_samples: Sequence[int], max_weight: float | None = None) -> list[float]:
    """FedAvg weights for these sample counts, each at most ``max_weight`` when given.

    A cap below ``1/n`` cannot be met by weights that sum to one; it is raised to ``1/n`` (equal
    weights) rather than failing the round.
    """
    total = sum(num_samples)
    if max_weight is None:
        return [float(Fraction(c, total)) for c in num_samples]
    cap = max(Fraction(max_weight), Fraction(1, len(num_samples)))
    capped: set[int] = set()
    while True:
        free = [i for i in range(len(num_samples)) if i not in capped]
        if not free:
            return [float(cap)] * len(num_samples)
        rest = 1 - cap * len(capped)
        free_total = sum(num_samples[i] for i in free)
        over = {i for i in free if Fraction(num_samples[i]) * rest / free_total > cap}
        if not over:
            weights = [cap] * len(num_samples)
            for i in free:
                weights[i] = Fraction(num_samples[i]) * rest / free_total
            return [float(w) for w in weights]
        capped |= over


def weighted_mean(updates: list[Update], weights: list[float]) -> dict[str, torch.Tensor]:
    """``sum_i w_i x_i`` per tensor, streamed chunk by chunk, in the updates' dtype."""
    out: dict[str, torch.Tensor] = {}
    for name in sorted(updates[0].tensors):
        ref = updates[0].tensors[name]
        acc_dtype = kernels.sum_dtype(ref.dtype)
        tmp = torch.empty(kernels.CHUNK, dtype=acc_dtype)
        # float32 adapters are summed straight into the result; others through a float32 buffer.
        acc = None if acc_dtype == ref.dtype else torch.empty(kernels.CHUNK, dtype=acc_dtype)
        inputs = [kernels.flat(u.tensors[name]) for u in updates]
        result = torch.empty(ref.numel(), dtype=ref.dtype)
        for start, stop in kernels.chunk_ranges(ref.numel()):
            if acc is None:
                kernels.weighted_sum(result[start:stop], tmp, inputs, weights, start, stop)
            else:
                result[start:stop].copy_(kernels.weighted_sum(acc[: stop - start], tmp, inputs, weights, start, stop))
        out[name] = result.reshape(ref.shape)
    return out


class FedAvg(StrategyBase):
    """Sample-weighted mean (``fedavg``).

    Parameters
    ----------
    max_weight:
        Largest weight any one update may get, in ``(0, 1]``; ``None`` for plain FedAvg.
    """

    name = "fedavg"

    def __init__(self, max_weight: float | None = None) -> None:
        if max_weight is not None and not 0.0 < max_weight <= 1.0:
            raise ConfigError(f"fedavg: max_weight must be in (0, 1], got {max_weight!r}")
        self.max_weight = None if max_weight is None else float(max_weight)

    def describe(self) -> dict[str, object]:
        return {"max_weight": self.max_weight}

    def combine(self, updates: list[Update], state: bytes | None, base: Tensors | None) -> tuple[dict[str, torch.Tensor], bytes | None]:
        weights = sample_weights([u.num_samples for u in updates], self.max_weight)
        return weighted_mean(updates, weights), None
