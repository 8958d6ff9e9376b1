"""Device and numeric precision: CUDA with bf16 autocast and TF32 when present, CPU fp32 otherwise."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

__all__ = ["DevicePlan", "plan_device"]


@dataclass(frozen=True)
class DevicePlan:
    """Where tensors live and which dtype the forward pass computes in.

    Parameters stay fp32 everywhere (the LoRA weights are exported from them); on CUDA the matmuls
    run under bf16 autocast, which is what makes GPU training fast without a loss-scaling dance.
    """

    device: torch.device
    autocast_dtype: torch.dtype | None

    @property
    def description(self) -> str:
        """A short human-readable name, recorded in the adapter's training metadata."""
        if self.device.type == "cuda":
            name = torch.cuda.get_device_name(self.device)
            return f"cuda ({name}, {'bf16' if self.autocast_dtype == torch.bfloat16 else 'fp32'})"
        return f"{self.device.type} (fp32)"

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Autocast to the plan's dtype on CUDA; a no-op on CPU."""
        if self.autocast_dtype is None:
            yield
        else:
            with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype):
                yield


def plan_device(device: str | torch.device = "auto") -> DevicePlan:
    """Resolve ``"auto"`` (CUDA when available, else CPU) and pick the compute precision.

    On CUDA this also allows TF32 matmuls, which cost nothing in accuracy that matters here and
    double fp32 throughput on Ampere and later.
    """
    if isinstance(device, str) and device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return DevicePlan(dev, torch.bfloat16 if torch.cuda.is_bf16_supported() else None)
    return DevicePlan(dev, None)
