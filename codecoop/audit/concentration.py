"""Concentration of voting power: Gini coefficient, Nakamoto coefficient, top-1 share."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Concentration", "concentration", "gini", "nakamoto", "top_share"]


def gini(values: Iterable[int]) -> float:
    """Gini coefficient of non-negative holdings: 0 for perfect equality, towards 1 for one holder.

    Computed over the holders given (zero holdings count as holders), by the sorted-rank formula
    ``G = sum_i (2i - n - 1) x_i / (n sum x)`` with ranks ``i = 1..n`` in ascending order.
    """
    xs = sorted(values)
    n, total = len(xs), sum(xs)
    if n == 0 or total == 0:
        return 0.0
    return sum((2 * i - n - 1) * x for i, x in enumerate(xs, start=1)) / (n * total)


def nakamoto(values: Iterable[int], threshold: float = 0.5) -> int:
    """Fewest holders who together hold more than ``threshold`` of the total (0 when nobody holds any)."""
    xs = sorted(values, reverse=True)
    total = sum(xs)
    if total == 0:
        return 0
    held = 0
    for k, x in enumerate(xs, start=1):
        held += x
        if held > threshold * total:
            return k
    return len(xs)


def top_share(values: Iterable[int]) -> float:
    """The largest holder's share of the total."""
    xs = list(values)
    total = sum(xs)
    return max(xs) / total if total else 0.0


@dataclass(frozen=True)
class Concentration:
    """Concentration of one distribution of voting power (e.g. at the end of an epoch)."""

    holders: int
    total: int
    gini: float
    nakamoto: int
    top1: float


def concentration(power: dict[str, int], members: Iterable[str] = ()) -> Concentration:
    """Concentration of ``power`` (holder to amount); ``members`` without power count as holding 0."""
    holders = dict.fromkeys(members, 0)
    holders.update(power)
    values = list(holders.values())
    return Concentration(len(values), sum(values), gini(values), nakamoto(values), top_share(values))
