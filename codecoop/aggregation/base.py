"""Plain data and the template every strategy follows.

An :class:`Update` is one participant's adapter (tensor name to tensor) with its CID and sample
count; an :class:`Aggregate` is the merged adapter plus the next server-optimiser state. A strategy
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch

from codecoop.errors import InvalidUpdate, TensorFormatError
from codecoop.tensors import from_safetensors, to_safetensors

__all__ = ["ACCUM_DTYPE", "FLOAT_DTYPES", "Update", "Aggregate", "Strategy", "StrategyBase", "Tensors"]

#: Dtype of medians, trimmed means, norms, distances and server-optimiser moments: float64 keeps
#: their sums and squares far from overflow and rounding. (Weighted sums use ``_kernels.sum_dtype``.)
ACCUM_DTYPE = torch.float64

#: Dtypes an adapter tensor may have. Integer tensors cannot be averaged meaningfully.
FLOAT_DTYPES: frozenset[torch.dtype] = frozenset({torch.float64, torch.float32, torch.float16, torch.bfloat16})

#: Tensor name to tensor: one adapter (LoRA ``lora_A`` / ``lora_B`` weights).
Tensors = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Update:
    """One participant's adapter as accepted in a round.

    Parameters
    ----------
    cid:
        Content identifier of the adapter's safetensors bytes; the canonical sort key and the name
        used in every error about this update.
    tensors:
        Tensor name to CPU tensor, all of a floating dtype.
    num_samples:
        Training samples behind the update (the FedAvg weight), a positive integer.
    """

    cid: str
    tensors: Tensors
    num_samples: int

    @classmethod
    def from_bytes(cls, cid: str, data: bytes | bytearray | memoryview, num_samples: int) -> Update:
        """Build an update from safetensors bytes (validated, never unpickled).

        Raises
        ------
        InvalidUpdate
            If the bytes are not an acceptable safetensors file; the message names ``cid``.
        """
        try:
            tensors, _ = from_safetensors(data)
        except TensorFormatError as exc:
            raise InvalidUpdate(f"update {cid}: {exc}; refuse it and ask its author to re-publish", update=cid) from exc
        return cls(cid=cid, tensors=tensors, num_samples=num_samples)


@dataclass(frozen=True)
class Aggregate:
    """The result of one aggregation.

    Parameters
    ----------
    tensors:
        The next global adapter, tensor name to tensor, in the updates' dtypes.
    state:
        Server-optimiser state to pass to the next round's ``aggregate`` (canonical safetensors
        bytes, so it can be stored content-addressed), or ``None`` for stateless strategies.
    metadata:
        Strategy, parameters and the accepted ``cid:num_samples`` list; written into the
        safetensors header by :meth:`to_bytes` so the file says how it was made.
    """

    tensors: Tensors
    state: bytes | None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """Canonical safetensors bytes of ``tensors`` with ``metadata``: the bytes every honest node
        produces for the same inputs, hence the same CID."""
        return to_safetensors(self.tensors, self.metadata)


@runtime_checkable
class Strategy(Protocol):
    """What the node needs from an aggregation strategy.

    ``base`` is the round's starting global adapter. Server optimisers (FedAdam, FedYogi,
    FedAdagrad) and norm clipping need it; the other strategies check it against the updates when
    it is given and otherwise ignore it.
    """

    name: str

    def aggregate(
        self, updates: Sequence[Update], state: bytes | None = None, *, base: Tensors | None = None
    ) -> Aggregate:
        """Merge ``updates`` into the next global adapter."""
        ...


class StrategyBase(abc.ABC):
    """Template for the strategies shipped here: validate and order once, then :meth:`combine`."""

    name: str

    def aggregate(
        self, updates: Sequence[Update], state: bytes | None = None, *, base: Tensors | None = None
    ) -> Aggregate:
        """Validate ``updates`` (and ``base``), sort them by CID and combine them.

        Raises
        ------
        InvalidUpdate
            Naming the first offending update, before any arithmetic.
        AggregationError
            If the strategy cannot run on these inputs (too few updates, missing ``base``, a state
            that does not fit).
        """
        from codecoop.aggregation.validation import validate_updates

        ordered = validate_updates(updates, base=base)
        tensors, new_state = self.combine(ordered, state, base)
        return Aggregate(tensors=tensors, state=new_state, metadata=self.metadata(ordered))

    @abc.abstractmethod
    def combine(
        self, updates: list[Update], state: bytes | None, base: Tensors | None
    ) -> tuple[dict[str, torch.Tensor], bytes | None]:
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
