"""A strategy wrapped in steps: clip the updates, aggregate, add noise.

``Pipeline(FedAvg(), pre=[NormClip(1.0)], post=[GaussianNoise(1.1, 1.0, seed)])`` is itself a
strategy with the inner strategy's name; its metadata records the steps' parameters beside the
strategy's, so the aggregate's bytes say exactly how they were made.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from codecoop.aggregation.base import StrategyBase, Tensors, Update
from codecoop.aggregation.steps import PostStep, PreStep

__all__ = ["Pipeline"]


class Pipeline(StrategyBase):
    """``strategy`` with ``pre`` steps applied to the updates and ``post`` steps to its output.

    Parameters
    ----------
    strategy:
        The strategy that aggregates.
    pre:
        Applied in order to the validated, CID-ordered updates (e.g. :class:`NormClip`).
    post:
        Applied in order to the aggregated tensors (e.g. :class:`GaussianNoise`).
    """

    def __init__(self, strategy: StrategyBase, pre: Sequence[PreStep] = (), post: Sequence[PostStep] = ()) -> None:
        self.strategy = strategy
        self.name = strategy.name
        self.pre = tuple(pre)
        self.post = tuple(post)

    def describe(self) -> dict[str, object]:
        params = dict(self.strategy.describe())
        for step in (*self.pre, *self.post):
            params.update(step.describe())
        return params

    def combine(self, updates: list[Update], state: bytes | None, base: Tensors | None) -> tuple[dict[str, torch.Tensor], bytes | None]:
        for pre in self.pre:
            updates = pre.apply(updates, base)
        tensors, new_state = self.strategy.combine(updates, state, base)
        for post in self.post:
            tensors = post.apply_after(tensors, updates)
        return tensors, new_state
