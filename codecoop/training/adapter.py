"""LoRA adapters: canonical bytes out, validated bytes in, attach to and merge into a base model.

An adapter is only its LoRA tensors plus metadata. ``to_bytes`` writes canonical safetensors
(``codecoop.tensors``): names sorted, one fixed dtype, metadata naming the format version, the
base model id and the sha256 of its weights, and the LoRA configuration, so the same tensors always
give the same bytes and hence the same CID. ``from_bytes`` never unpickles anything and refuses an
adapter that does not fit the base with an ``AdapterMismatch`` that says what differs.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from codecoop.errors import AdapterMismatch, TensorFormatError, TrainingError
from codecoop.tensors import from_safetensors, to_safetensors
from codecoop.training.base import BaseModel
from codecoop.training.cache import atomic_write_bytes
from codecoop.training.config import LoraSpec
from codecoop.training.hashing import weights_sha256

__all__ = [
    "Adapter",
    "AdapterSlot",
    "FORMAT",
    "FORMAT_VERSION",
    "EXPORT_DTYPES",
    "adapter_slot",
    "attached",
    "expected_lora_shapes",
    "lora_state",
]

FORMAT = "codecoop-lora"
FORMAT_VERSION = 1
#: Dtypes an adapter may be exported in; fp16/bf16 halve the bytes a peer has to fetch.
EXPORT_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
_PREFIX = "base_model.model."


def _lora_targets(model: Any, spec: LoraSpec) -> dict[str, tuple[int, int]]:
    """``module name -> (in_features, out_features)`` for every module LoRA would wrap.

    Matching follows peft: a module matches a target when its name equals it or ends with
    ``"." + target``. ``nn.Linear`` and transformers' ``Conv1D`` (GPT-2 style, weight stored
    transposed) are the layer kinds LoRA adapts here. A layer peft has already wrapped (LoRA layers
    attached, as while an :class:`AdapterSlot` is open) counts as the layer it wraps.
    """
    out: dict[str, tuple[int, int]] = {}
    for name, module in model.named_modules():
        if not any(name == t or name.endswith("." + t) for t in spec.target_modules):
            continue
        module = getattr(module, "base_layer", module)
        if isinstance(module, torch.nn.Linear):
            out[name] = (module.in_features, module.out_features)
        elif type(module).__name__ == "Conv1D":
            in_f, out_f = module.weight.shape
            out[name] = (int(in_f), int(out_f))
    return out


def expected_lora_shapes(base: BaseModel, spec: LoraSpec) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of every LoRA tensor an adapter with ``spec`` must hold for ``base``."""
    targets = _lora_targets(base.model, spec)
    if not targets:
        raise AdapterMismatch(f"none of the LoRA target modules {list(spec.target_modules)} exists in base model {base.model_id!r}")
    shapes: dict[str, tuple[int, ...]] = {}
    for name, (in_f, out_f) in targets.items():
        shapes[f"{_PREFIX}{name}.lora_A.weight"] = (spec.r, in_f)
        shapes[f"{_PREFIX}{name}.lora_B.weight"] = (out_f, spec.r)
    return dict(sorted(shapes.items()))


#: Training facts that differ from run to run (wall clock, throughput): never written into an adapter's bytes.
RUN_MEASUREMENTS = frozenset({"wall_time_s", "tokens_per_s"})


@dataclass(frozen=True)
class Adapter:
    """A LoRA adapter: fp32 tensors (peft names), what base it belongs to, and how it was trained.

    Attributes
    ----------
    tensors:
        peft state-dict names (``base_model.model.<module>.lora_A.weight``) to fp32 CPU tensors.
    base_model_id, base_weights_hash:
        The base model it was trained on; loading checks the hash, not the id.
    lora:
        r, alpha, dropout, target modules.
    training:
        Wall time, device, tokens seen, samples, steps, final loss... (JSON-serialisable values).
    """

    tensors: Mapping[str, torch.Tensor]
    base_model_id: str
    base_weights_hash: str
    lora: LoraSpec
    training: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        """Training sequences in the corpus it was trained on: the weight FedAvg gives it."""
        return int(self.training.get("samples", 0))

    def num_parameters(self) -> int:
        """Number of LoRA parameters."""
        return sum(t.numel() for t in self.tensors.values())

    def metadata(self, include_training: bool = True) -> dict[str, str]:
        """The safetensors metadata written by ``to_bytes`` (the run's measurements, :data:`RUN_MEASUREMENTS`, stay
        in memory: the bytes of an update are a function of its inputs, so a rerun with the same seed publishes the
        same CID, and aggregation, which orders updates by CID, sums in the same order)."""
        meta = {
            "format": FORMAT,
            "format_version": str(FORMAT_VERSION),
            "base_model_id": self.base_model_id,
            "base_weights_sha256": self.base_weights_hash,
            "lora": self.lora.to_json(),
        }
        written = {k: v for k, v in self.training.items() if k not in RUN_MEASUREMENTS}
        if include_training and written:
            meta["training"] = json.dumps(written, sort_keys=True, separators=(",", ":"))
        return meta

    def to_bytes(self, dtype: torch.dtype = torch.float32, *, include_training: bool = True) -> bytes:
        """Canonical safetensors bytes of the LoRA tensors in ``dtype`` (fp32, fp16 or bf16).

        ``include_training=False`` leaves out the run's metadata (wall time, device), so two runs
        that produced the same tensors give the same bytes.

        Raises
        ------
        TrainingError
            If ``dtype`` is not an export dtype, or a value overflows it (fp16 tops out at 65504).
        """
        if dtype not in EXPORT_DTYPES:
            raise TrainingError(f"adapters export as float32, float16 or bfloat16, not {dtype}")
        tensors = {}
        for name, t in self.tensors.items():
            converted = t.detach().to("cpu", dtype)
            if dtype != torch.float32 and not bool(torch.isfinite(converted).all()):
                raise TrainingError(f"tensor {name!r} overflows {dtype}; export in float32 instead")
            tensors[name] = converted
        return to_safetensors(tensors, self.metadata(include_training))

    def digest(self) -> str:
        """sha256 of the fp32 bytes without training metadata: the identity of the tensors."""
        return hashlib.sha256(self.to_bytes(include_training=False)).hexdigest()

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, base: BaseModel | None) -> Adapter:
        """Parse and validate adapter bytes against ``base``; tensors come back as fp32.

        With ``base=None`` only the format is checked (for code that never runs the model, such as
        an aggregator); anything that will be attached to a model must pass a base.

        Raises
        ------
        TensorFormatError
            The bytes are not a well-formed codecoop adapter.
        AdapterMismatch
            The adapter belongs to a different base, or its names, shapes or dtypes do not fit.
        """
        tensors, meta = from_safetensors(data)
        if meta.get("format") != FORMAT:
            raise TensorFormatError(f"not a codecoop adapter: metadata 'format' is {meta.get('format')!r}, expected {FORMAT!r}")
        if meta.get("format_version") != str(FORMAT_VERSION):
            raise AdapterMismatch(
                f"adapter format version {meta.get('format_version')!r} is not supported; this codecoop reads version {FORMAT_VERSION}"
            )
        for key in ("base_model_id", "base_weights_sha256", "lora"):
            if key not in meta:
                raise TensorFormatError(f"adapter metadata lacks {key!r}")
        try:
            spec = LoraSpec.from_json(meta["lora"])
            training = json.loads(meta["training"]) if "training" in meta else {}
        # OverflowError: an infinite r or alpha; RecursionError: JSON nested past the parser's stack.
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:
            raise TensorFormatError(f"adapter metadata is malformed: {str(exc)[:200]}") from None
        if not isinstance(training, dict):
            raise TensorFormatError("adapter metadata 'training' must be a JSON object")
        # peft builds nn.Dropout(p) from it when the adapter is attached: refuse what it would not take.
        if not 0.0 <= spec.dropout < 1.0:
            raise TensorFormatError(f"adapter metadata 'lora': dropout must be in [0, 1), got {spec.dropout}")
        dtypes = {t.dtype for t in tensors.values()}
        if not dtypes <= set(EXPORT_DTYPES) or len(dtypes) != 1:
            found = ", ".join(sorted(str(d) for d in dtypes)) or "none"
            raise AdapterMismatch(f"adapter tensors must all be one of float32/float16/bfloat16; found {found}")
        adapter = cls(
            {k: v.to(torch.float32) for k, v in tensors.items()},
            meta["base_model_id"],
            meta["base_weights_sha256"],
            spec,
            training,
        )
        if base is not None:
            adapter.check_fits(base)
        return adapter

    def check_fits(self, base: BaseModel) -> None:
        """Raise ``AdapterMismatch`` unless this adapter was made for ``base`` and has its exact LoRA layout."""
        if self.base_weights_hash != base.weights_hash:
            raise AdapterMismatch(
                f"adapter was trained on base model {self.base_model_id!r} (weights sha256 {self.base_weights_hash[:16]}...), "
                f"but the loaded base is {base.model_id!r} (weights sha256 {base.weights_hash[:16]}...); "
                "load the base model the federation agreed on"
            )
        expected = expected_lora_shapes(base, self.lora)
        missing = sorted(set(expected) - set(self.tensors))
        unexpected = sorted(set(self.tensors) - set(expected))
        if missing or unexpected:
            raise AdapterMismatch(
                f"adapter tensor names do not fit base {base.model_id!r} with LoRA targets {list(self.lora.target_modules)}: "
                f"{len(missing)} missing (e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})"
            )
        for name, shape in expected.items():
            got = tuple(self.tensors[name].shape)
            if got != shape:
                raise AdapterMismatch(
                    f"adapter tensor {name!r} has shape {list(got)}, base {base.model_id!r} with r={self.lora.r} needs {list(shape)}"
                )
        for name, t in self.tensors.items():
            if not bool(torch.isfinite(t).all()):
                raise AdapterMismatch(f"adapter tensor {name!r} holds NaN or infinite values")

    def save(self, path: str | Path, dtype: torch.dtype = torch.float32) -> Path:
        """Write ``to_bytes(dtype)`` atomically: an interrupted save never leaves half a file.

        Raises
        ------
        TrainingError
            When the file cannot be written (disk full, no permission); nothing is left behind.
        """
        path = Path(path)
        data = self.to_bytes(dtype)
        try:
            atomic_write_bytes(path, data)
        except OSError as exc:
            raise TrainingError(f"cannot write the adapter to {path}: {exc}") from exc
        return path

    @classmethod
    def load(cls, path: str | Path, base: BaseModel | None) -> Adapter:
        """Read and validate an adapter file (see ``from_bytes``); ``TrainingError`` when it cannot be read."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise TrainingError(f"cannot read the adapter file {path}: {exc}") from exc
        return cls.from_bytes(data, base)

    def merge(self, base: BaseModel) -> BaseModel:
        """A new ``BaseModel`` with this adapter merged into a copy of the base weights, ready to serve.

        The base itself is left untouched. The merged model's id names the adapter's digest and its
        weights hash is recomputed, so an adapter trained on it is not mistaken for one on the base.
        """
        self.check_fits(base)
        from peft import set_peft_model_state_dict

        peft_model = _wrap(copy.deepcopy(base.model), self.lora)
        set_peft_model_state_dict(peft_model, {k: v.to(base.device) for k, v in self.tensors.items()})
        merged = peft_model.merge_and_unload()
        merged.requires_grad_(False)
        merged.eval()
        return BaseModel(
            model_id=f"{base.model_id}+lora-{self.digest()[:16]}",
            model=merged,
            tokenizer=base.tokenizer,
            weights_hash=weights_sha256(merged.state_dict()),
            plan=base.plan,
            path=None,
            info={"merged_from": base.model_id, "adapter_digest": self.digest()},
        )


def _wrap(model: Any, spec: LoraSpec) -> Any:
    """Inject LoRA layers into ``model`` in place and return the peft wrapper."""
    from peft import get_peft_model

    with warnings.catch_warnings():
        # peft 0.21 reads a transformers attribute that transformers 5 deprecates; nothing to act on.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, spec.to_peft())


@contextlib.contextmanager
def attached(base: BaseModel, adapter: Adapter | None, spec: LoraSpec | None = None) -> Iterator[Any]:
    """Wrap ``base.model`` with LoRA layers (loaded from ``adapter``, or freshly initialised from ``spec``).

    Yields the peft model; on exit, even on an exception or Ctrl-C, the LoRA layers are removed
    again, so the shared base model is never left modified. Fresh LoRA A matrices are drawn from
    torch's global generator: seed it first for reproducible runs.
    """
    if adapter is None and spec is None:
        raise TrainingError("attached() needs an adapter or a LoRA spec")
    if adapter is not None:
        adapter.check_fits(base)
        spec = adapter.lora
    assert spec is not None
    peft_model = _wrap(base.model, spec)
    try:
        if adapter is not None:
            _load_state(peft_model, adapter, base)
        yield peft_model
    finally:
        peft_model.unload()
        _strip_peft_marks(base.model)
        base.model.requires_grad_(False)
        base.model.eval()


def _load_state(peft_model: Any, adapter: Adapter, base: BaseModel) -> None:
    """Copy ``adapter``'s tensors into the LoRA layers of ``peft_model`` (every one: it fits the base)."""
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(peft_model, {k: v.to(base.device) for k, v in adapter.tensors.items()})
    if getattr(result, "unexpected_keys", None):
        raise AdapterMismatch(f"peft did not accept adapter tensors {result.unexpected_keys[:3]}")


class AdapterSlot:
    """LoRA layers of one layout attached to a base model once, loaded with one adapter after another.

    Made by :func:`adapter_slot`. ``load(adapter)`` copies the adapter's tensors into the attached
    layers and returns the peft model, which then computes base + that adapter. Scoring many
    adapters of one layout (a judge scoring every peer's update) so costs one attach and one
    detach instead of one of each per adapter. Only an adapter of the slot's layout (rank, alpha,
    target modules) that fits the base is loaded; anything else is an ``AdapterMismatch`` and the
    slot keeps what it held.
    """

    def __init__(self, base: BaseModel, model: Any, spec: LoraSpec) -> None:
        self.base = base
        self.model = model
        self.spec = spec

    def load(self, adapter: Adapter) -> Any:
        """Put ``adapter`` into the slot; the peft model (in eval mode), ready for forward passes."""
        if not adapter.lora.same_layout(self.spec):
            raise AdapterMismatch(f"adapter LoRA layout {adapter.lora} differs from the slot's {self.spec}")
        adapter.check_fits(self.base)
        _load_state(self.model, adapter, self.base)
        return self.model


@contextlib.contextmanager
def adapter_slot(base: BaseModel, spec: LoraSpec) -> Iterator[AdapterSlot]:
    """Attach LoRA layers of ``spec`` to ``base`` once (see :class:`AdapterSlot`); removed on exit, as by :func:`attached`."""
    with attached(base, None, spec) as model:
        model.eval()
        yield AdapterSlot(base, model, spec)


def _strip_peft_marks(model: Any) -> None:
    """Remove the bookkeeping attributes peft leaves on an unloaded model (it would warn next time)."""
    for attr in ("peft_config", "_hf_peft_config_loaded"):
        if hasattr(model, attr):
            with contextlib.suppress(AttributeError):
                delattr(model, attr)


def lora_state(peft_model: Any) -> dict[str, torch.Tensor]:
    """The LoRA tensors of a peft model as fp32 CPU copies, in sorted name order."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(peft_model)
    return {k: state[k].detach().to("cpu", torch.float32).clone() for k in sorted(state)}
