"""Training configuration and the LoRA shape it implies."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from codecoop.errors import ConfigError
from codecoop.settings import setting_field

__all__ = ["TrainConfig", "LoraSpec", "default_target_modules"]

# Attention projections per architecture: what LoRA papers and peft's own table adapt by default.
_TARGETS: dict[str, tuple[str, ...]] = {
    "llama": ("q_proj", "v_proj"),
    "mistral": ("q_proj", "v_proj"),
    "qwen2": ("q_proj", "v_proj"),
    "gemma": ("q_proj", "v_proj"),
    "starcoder2": ("q_proj", "v_proj"),
    "opt": ("q_proj", "v_proj"),
    "gpt2": ("c_attn",),
    "gpt_bigcode": ("c_attn",),
    "gpt_neox": ("query_key_value",),
    "codegen": ("qkv_proj",),
}


def default_target_modules(architecture: str) -> tuple[str, ...]:
    """LoRA target modules for a ``model_type``: our table first, then peft's, else a clear error."""
    if architecture in _TARGETS:
        return _TARGETS[architecture]
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as peft_table

    if architecture in peft_table:
        return tuple(sorted(peft_table[architecture]))
    raise ConfigError(f"no default LoRA target modules for architecture {architecture!r}; set TrainConfig.target_modules")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a LoRA training run (the device is chosen by ``load_base``).

    The defaults of the fields a node configures are its ``[training]`` settings
    (``codecoop.settings``, docs/SETTINGS.md); the others are the library's own.

    ``epochs``, when set, overrides ``steps``: steps = ceil(epochs * blocks / (batch_size * grad_accum)).
    ``mu`` > 0 adds the FedProx term mu/2 * ||w - w_start||^2 over the LoRA weights, where w_start is
    the round's starting adapter (or the seeded initial LoRA weights when there is none).
    ``dp_clip_norm`` set turns on client-side differential privacy (``codecoop.training.dp``): the
    update's change from its starting point is clipped to that L2 norm and Gaussian noise of std
    ``dp_noise_multiplier * dp_clip_norm`` is added, seeded by ``dp_seed`` (None: a fresh secret seed);
    ``dp_delta`` is the delta its (epsilon, delta) accounting reports at.
    """

    r: int = setting_field("training.r")
    alpha: int = setting_field("training.alpha")
    dropout: float = setting_field("training.dropout")
    target_modules: tuple[str, ...] | None = setting_field("training.target_modules")
    lr: float = setting_field("training.lr")
    steps: int = setting_field("training.steps")
    epochs: float | None = None
    batch_size: int = setting_field("training.batch_size")
    seq_len: int = setting_field("training.seq_len")
    grad_accum: int = 1
    seed: int = setting_field("training.seed")
    mu: float = setting_field("training.mu")
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float | None = 1.0
    progress: bool = True
    dp_clip_norm: float | None = setting_field("training.dp_clip_norm")
    dp_noise_multiplier: float = setting_field("training.dp_noise_multiplier")
    dp_delta: float = setting_field("training.dp_delta")
    dp_seed: int | None = None

    def __post_init__(self) -> None:
        positive = {
            "r": self.r,
            "alpha": self.alpha,
            "lr": self.lr,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "seq_len": self.seq_len,
            "grad_accum": self.grad_accum,
        }
        for key, value in positive.items():
            if value <= 0:
                raise ConfigError(f"TrainConfig.{key} must be positive, got {value}")
        if self.seq_len < 2:
            raise ConfigError(f"TrainConfig.seq_len must be at least 2, got {self.seq_len}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"TrainConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.mu < 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ConfigError("TrainConfig.mu, weight_decay and warmup_steps must not be negative")
        if self.epochs is not None and self.epochs <= 0:
            raise ConfigError(f"TrainConfig.epochs must be positive when set, got {self.epochs}")
        if self.target_modules is not None:
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        if self.dp_clip_norm is not None and not self.dp_clip_norm > 0:
            raise ConfigError(f"TrainConfig.dp_clip_norm must be positive when set, got {self.dp_clip_norm}")
        if self.dp_noise_multiplier < 0 or (self.dp_noise_multiplier > 0 and self.dp_clip_norm is None):
            raise ConfigError(
                "TrainConfig.dp_noise_multiplier must not be negative, and noise needs dp_clip_norm (it scales with the clip)"
            )
        if not 0.0 < self.dp_delta < 1.0:
            raise ConfigError(f"TrainConfig.dp_delta must be in (0, 1), got {self.dp_delta}")
        if self.dp_seed is not None and self.dp_seed < 0:
            raise ConfigError(f"TrainConfig.dp_seed must not be negative, got {self.dp_seed}")


@dataclass(frozen=True)
class LoraSpec:
    """The part of a LoRA configuration that shapes or scales the adapter; stored in its metadata."""

    r: int
    alpha: int
    dropout: float
    target_modules: tuple[str, ...]

    @classmethod
    def for_base(cls, cfg: TrainConfig, architecture: str) -> LoraSpec:
        """The spec ``cfg`` asks for on a base of this architecture."""
        targets = cfg.target_modules or default_target_modules(architecture)
        return cls(cfg.r, cfg.alpha, cfg.dropout, tuple(sorted(targets)))

    def same_layout(self, other: LoraSpec) -> bool:
        """Whether ``other`` has this rank, alpha and target modules: what shapes an adapter's tensors
        and scales its output (dropout changes training only)."""
        return (self.r, self.alpha, tuple(self.target_modules)) == (other.r, other.alpha, tuple(other.target_modules))

    @property
    def scaling(self) -> float:
        """LoRA's output scale alpha / r."""
        return self.alpha / self.r

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces), as written into adapter metadata."""
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> LoraSpec:
        """Parse ``to_json`` output; raises ``ValueError``/``KeyError``/``TypeError`` on anything else."""
        d: dict[str, Any] = json.loads(text)
        spec = cls(int(d["r"]), int(d["alpha"]), float(d["dropout"]), tuple(str(t) for t in d["target_modules"]))
        if spec.r <= 0 or not spec.target_modules:
            raise ValueError("r must be positive and target_modules non-empty")
        return spec

    def to_peft(self) -> Any:
        """The matching ``peft.LoraConfig`` for a causal LM."""
        from peft import LoraConfig

        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
