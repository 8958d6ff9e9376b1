"""The identity of a base model: sha256 of the canonical safetensors bytes of its fp32 weights.

Every participant of a federation must fine-tune the same base, and adapters carry this hash so a
peer can refuse one trained on something else. The bytes are exactly those that
``codecoop.tensors.to_safetensors(state_dict_in_fp32)`` would write, but streamed tensor by tensor
so a large model is never serialised into memory at once.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping

import torch

__all__ = ["weights_sha256"]


def weights_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """Hex sha256 of the canonical fp32 safetensors serialisation of ``state``.

    fp32 is the canonical dtype, so a model loaded in fp32 on any device hashes the same; the
    header layout mirrors ``codecoop.tensors.to_safetensors`` (sorted names, sorted JSON keys, no
    spaces, padded to 8 bytes), which a test checks byte for byte.
    """
    names = sorted(state)
    header: dict[str, object] = {}
    offset = 0
    for name in names:
        t = state[name]
        size = t.numel() * 4
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    text += b" " * (-len(text) % 8)
    h = hashlib.sha256(struct.pack("<Q", len(text)))
    h.update(text)
    for name in names:
        t = state[name].detach().to("cpu", torch.float32).contiguous().reshape(-1)
        if t.numel():
            h.update(t.view(torch.uint8).numpy().data)
    return h.hexdigest()
