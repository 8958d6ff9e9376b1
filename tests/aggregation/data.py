"""Random LoRA-shaped updates, shared by the tests and the cross-process probe (no pytest here)."""

from __future__ import annotations

import torch

from codecoop.aggregation import Update

#: A small adapter: two LoRA pairs of rank 4 on width 40, one of them longer than a chunk when
#: ``big`` is set, so the chunked code paths (partial last chunk included) are exercised.
SHAPES = {
    "layers.0.q_proj.lora_A.weight": (4, 40),
    "layers.0.q_proj.lora_B.weight": (40, 4),
    "layers.1.v_proj.lora_A.weight": (4, 40),
    "layers.1.v_proj.lora_B.weight": (40, 4),
}
BIG = {"layers.2.o_proj.lora_A.weight": (8, 4500)}


def make_updates(n: int, seed: int = 0, *, big: bool = False, dtype: torch.dtype = torch.float32, spread: float = 1.0) -> list[Update]:
    """``n`` updates with random tensors, random sample counts and CIDs that do not sort by index."""
    g = torch.Generator().manual_seed(seed)
    shapes = SHAPES | (BIG if big else {})
    updates = []
    for i in range(n):
        tensors = {name: (torch.randn(shape, generator=g) * spread).to(dtype) for name, shape in shapes.items()}
        samples = int(torch.randint(1, 1000, (1,), generator=g))
        updates.append(Update(cid=f"bafk{(i * 7919) % 1009:04d}x{i}", tensors=tensors, num_samples=samples))
    return updates
