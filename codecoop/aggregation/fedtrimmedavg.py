"""FedTrimmedAvg: the coordinate-wise mean after dropping the extremes (Yin et al., 2018).

For each coordinate the ``k = floor(beta * n)`` smallest and ``k`` largest values are dropped and
the remaining ``n - 2k`` are averaged without weights (as ``scipy.stats.trim_mean`` and Flower do),
so up to ``k`` arbitrary updates are trimmed away on every coordinate.
"""

from __future__ import annotations

import torch

from codecoop.aggregation import _kernels as kernels
from codecoop.aggregation.base import StrategyBase, Tensors, Update
from codecoop.errors import ConfigError

__all__ = ["FedTrimmedAvg"]


class FedTrimmedAvg(StrategyBase):
    """Coordinate-wise trimmed mean (``fedtrimmedavg``).

    Parameters
    ----------
    beta:
        Fraction cut from each end, in ``[0, 0.5)``.
    """

    name = "fedtrimmedavg"

    def __init__(self, beta: float = 0.2) -> None:
        if not 0.0 <= beta < 0.5:
            raise ConfigError(f"fedtrimmedavg: beta must be in [0, 0.5), got {beta!r}")
        self.beta = float(beta)

    def describe(self) -> dict[str, object]:
        return {"beta": self.beta}

    def combine(self, updates: list[Update], state: bytes | None, base: Tensors | None) -> tuple[dict[str, torch.Tensor], bytes | None]:
        n = len(updates)
        cut = int(self.beta * n)
        keep = range(cut, n - cut)
        acc = kernels.accum_buffer()
        out: dict[str, torch.Tensor] = {}
        for name in sorted(updates[0].tensors):
            ref = updates[0].tensors[name]
            stack = kernels.SortedStack([kernels.flat(u.tensors[name]) for u in updates], wanted=tuple(keep))
            result = torch.empty(ref.numel(), dtype=ref.dtype)
            for start, stop in kernels.chunk_ranges(ref.numel()):
                stack.load(start, stop)
                a = acc[: stop - start]
                a.copy_(stack.row(keep[0]))
                for k in keep[1:]:
                    a.add_(stack.row(k))
                a.div_(len(keep))
                result[start:stop].copy_(a)
            out[name] = result.reshape(ref.shape)
        return out, None
