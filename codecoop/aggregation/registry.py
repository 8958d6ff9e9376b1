"""Strategies by name, so a federation's charter can name its strategy and parameters as data."""

from __future__ import annotations

import inspect

from codecoop.aggregation.base import StrategyBase
from codecoop.aggregation.fedavg import FedAvg
from codecoop.aggregation.fedmedian import FedMedian
from codecoop.aggregation.fedopt import FedAdagrad, FedAdam, FedYogi
from codecoop.aggregation.fedtrimmedavg import FedTrimmedAvg
from codecoop.aggregation.krum import Krum, MultiKrum
from codecoop.aggregation.pipeline import Pipeline
from codecoop.aggregation.steps import GaussianNoise, NormClip, PostStep, PreStep
from codecoop.errors import ConfigError

__all__ = ["STRATEGIES", "available_strategies", "get_strategy"]

#: Name to strategy class.
STRATEGIES: dict[str, type[StrategyBase]] = {
    cls.name: cls for cls in (FedAvg, FedMedian, FedTrimmedAvg, Krum, MultiKrum, FedAdam, FedYogi, FedAdagrad)
}


def available_strategies() -> list[str]:
    """The registered strategy names, sorted."""
    return sorted(STRATEGIES)


def get_strategy(
    name: str,
    *,
    clip_norm: float | None = None,
    noise_multiplier: float | None = None,
    noise_seed: int | None = None,
    **params: object,
) -> StrategyBase:
    """Build the strategy ``name`` with ``params``, wrapped in clipping and noise steps if asked.

    Parameters
    ----------
    name:
        One of :func:`available_strategies`.
    clip_norm:
        Clip every update's change from the base adapter to this L2 norm first.
    noise_multiplier, noise_seed:
        Add seeded Gaussian noise of std ``noise_multiplier * clip_norm / n`` to the result
        (central DP); needs ``clip_norm``.
    **params:
        The strategy's own parameters (e.g. ``beta`` for ``fedtrimmedavg``, ``f`` for ``krum``).

    Raises
    ------
    ConfigError
        For an unknown name, an unknown or invalid parameter, or noise without clipping or seed.
    """
    cls = STRATEGIES.get(name)
    if cls is None:
        raise ConfigError(f"unknown aggregation strategy {name!r}; choose one of {', '.join(available_strategies())}")
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"strategy {name!r} has no parameter {', '.join(unknown)}; it accepts {', '.join(accepted) or 'none'} "
            "plus clip_norm, noise_multiplier, noise_seed"
        )
    strategy = cls(**params)  # type: ignore[arg-type]
    pre: list[PreStep] = []
    post: list[PostStep] = []
    if clip_norm is not None:
        pre.append(NormClip(clip_norm))
    if noise_multiplier is not None:
        if clip_norm is None or noise_seed is None:
            raise ConfigError("noise_multiplier needs clip_norm (the noise is calibrated to it) and noise_seed")
        post.append(GaussianNoise(noise_multiplier, clip_norm, noise_seed))
    elif noise_seed is not None:
        raise ConfigError("noise_seed is set but noise_multiplier is not; set both or neither")
    if not pre and not post:
        return strategy
    return Pipeline(strategy, pre=pre, post=post)
