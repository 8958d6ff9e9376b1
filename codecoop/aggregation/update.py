"""The plain data strategies work on: an :class:`Update` in, an :class:`Aggregate` out, and their dtypes.

An :class:`Update` is one participant's adapter (tensor name to tensor) with its CID and sample
count; an :class:`Aggregate` is the merged adapter plus the next server-optimiser state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from codecoop.errors import InvalidUpdate, TensorFormatError
from codecoop.tensors import from_safetensors, to_safetensors

__all__ = ["ACCUM_DTYPE", "FLOAT_DTYPES", "Update", "Aggregate", "Tensors"]

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
