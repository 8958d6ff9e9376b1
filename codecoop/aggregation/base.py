"""Plain data and the template every strategy follows.

:class:`Update` and :class:`Aggregate` (``codecoop.aggregation.update``) are the data. A strategy
is anything with a ``name`` and an ``aggregate`` method (:class:`Strategy`); the strategies shipped
here share :class:`StrategyBase`, whose ``aggregate`` validates and orders the updates once and then
calls the one hook a strategy overrides, :meth:`StrategyBase.combine` (Flower's template-method
layout).

Determinism rule (see ``docs/AGGREGATION.md``): updates are taken in ascending CID order, tensors in
ascending name order, and only separate, correctly rounded IEEE operations are used (no fused
multiply-add, no library reduction whose order depends on the thread count), in a fixed order and
fixed dtypes: weighted sums (FedAvg) accumulate in float32 (float64 for float64 adapters), every
other statistic in ``ACCUM_DTYPE`` (float64); the result is cast to the updates' dtype once.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch

from codecoop.aggregation.update import ACCUM_DTYPE, FLOAT_DTYPES, Aggregate, Tensors, Update
from codecoop.aggregation.validation import validate_updates

__all__ = ["ACCUM_DTYPE", "FLOAT_DTYPES", "Update", "Aggregate", "Strategy", "StrategyBase", "Tensors"]


@runtime_checkable
class Strategy(Protocol):
    """What the node needs from an aggregation strategy.

    ``base`` is the round's starting global adapter. Server optimisers (FedAdam, FedYogi,
    FedAdagrad) and norm clipping need it; the other strategies check it against the updates when
    it is given and otherwise ignore it.
    """

    name: str

    def aggregate(self, updates: Sequence[Update], state: bytes | None = None, *, base: Tensors | None = None) -> Aggregate:
        """Merge ``updates`` into the next global adapter."""
        ...


class StrategyBase(abc.ABC):
    """Template for the strategies shipped here: validate and order once, then :meth:`combine`."""

    name: str

    def aggregate(self, updates: Sequence[Update], state: bytes | None = None, *, base: Tensors | None = None) -> Aggregate:
        """Validate ``updates`` (and ``base``), sort them by CID and combine them.

        Raises
        ------
        InvalidUpdate
            Naming the first offending update, before any arithmetic.
        AggregationError
            If the strategy cannot run on these inputs (too few updates, missing ``base``, a state
            that does not fit).
        """
        ordered = validate_updates(updates, base=base)
        tensors, new_state = self.combine(ordered, state, base)
        return Aggregate(tensors=tensors, state=new_state, metadata=self.metadata(ordered))

    @abc.abstractmethod
    def combine(self, updates: list[Update], state: bytes | None, base: Tensors | None) -> tuple[dict[str, torch.Tensor], bytes | None]:
        """Merge validated updates, already in ascending CID order; return tensors and next state."""

    def describe(self) -> dict[str, object]:
        """The strategy's parameters as JSON-able values (recorded in the aggregate's metadata)."""
        return {}

    def metadata(self, updates: Sequence[Update]) -> dict[str, str]:
        """Header metadata of the aggregate: strategy, parameters and accepted updates, canonical JSON."""
        return {
            "codecoop.strategy": self.name,
            "codecoop.params": json.dumps(self.describe(), sort_keys=True, separators=(",", ":")),
            "codecoop.updates": json.dumps([[u.cid, u.num_samples] for u in updates], separators=(",", ":")),
        }
