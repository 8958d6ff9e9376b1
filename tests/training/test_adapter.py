"""Adapter bytes: canonical, reproducible, validated against the base model on load."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from codecoop.errors import AdapterMismatch, TensorFormatError, TrainingError
from codecoop.tensors import from_safetensors, to_safetensors
from codecoop.training import Adapter, BaseModel, CodeCorpus, LoraSpec, TrainConfig, evaluate, train_lora
from codecoop.training.adapter import RUN_MEASUREMENTS

CFG = TrainConfig(steps=3, batch_size=4, seq_len=64, lr=5e-3, progress=False)


@pytest.fixture(scope="module")
def adapter(tiny: BaseModel, corpus: CodeCorpus) -> Adapter:
    return train_lora(tiny, corpus, CFG)


def _rewrite(adapter: Adapter, tensors=None, **meta_changes) -> bytes:
    """Adapter bytes with some tensors or metadata swapped, as a hostile or buggy peer might send."""
    t, meta = from_safetensors(adapter.to_bytes())
    meta.update(meta_changes)
    return to_safetensors(tensors if tensors is not None else t, meta)


def test_bytes_are_canonical_and_round_trip(adapter: Adapter, tiny: BaseModel) -> None:
    blob = adapter.to_bytes()
    assert blob == adapter.to_bytes()
    again = Adapter.from_bytes(blob, tiny)
    assert again.to_bytes() == blob
    # everything but the run's measurements (wall time, throughput) travels with the bytes
    assert again.training == {k: v for k, v in adapter.training.items() if k not in RUN_MEASUREMENTS}
    tensors, meta = from_safetensors(blob)
    assert list(tensors) == sorted(tensors)
    assert all(name.endswith((".lora_A.weight", ".lora_B.weight")) for name in tensors)
    assert meta["format"] == "codecoop-lora" and meta["format_version"] == "1"
    assert meta["base_model_id"] == "tiny" and meta["base_weights_sha256"] == tiny.weights_hash
    assert LoraSpec.from_json(meta["lora"]) == adapter.lora


def test_only_lora_tensors_are_exported(adapter: Adapter, tiny: BaseModel) -> None:
    # r=8 on q_proj and v_proj of 4 layers of width 256: 4 * 2 * (8*256 + 256*8).
    assert adapter.num_parameters() == 4 * 2 * 2 * 8 * 256
    assert len(adapter.to_bytes(include_training=False)) < 4 * adapter.num_parameters() + 4096


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_export_halves_the_bytes(adapter: Adapter, tiny: BaseModel, dtype: torch.dtype) -> None:
    full, half = adapter.to_bytes(), adapter.to_bytes(dtype)
    assert len(half) < 0.55 * len(full)
    loaded = Adapter.from_bytes(half, tiny)
    for name, t in adapter.tensors.items():
        assert loaded.tensors[name].dtype == torch.float32
        torch.testing.assert_close(loaded.tensors[name], t, atol=1e-2, rtol=1e-2)


def test_fp16_overflow_is_refused(adapter: Adapter) -> None:
    name = next(iter(adapter.tensors))
    huge = replace(adapter, tensors={**adapter.tensors, name: adapter.tensors[name] + 1e6})
    with pytest.raises(TrainingError, match="overflows"):
        huge.to_bytes(torch.float16)


def test_a_different_base_model_is_refused(adapter: Adapter, tiny: BaseModel) -> None:
    other = replace(tiny, model_id="other", weights_hash="0" * 64)
    with pytest.raises(AdapterMismatch, match="trained on base model 'tiny'.*loaded base is 'other'"):
        Adapter.from_bytes(adapter.to_bytes(), other)


def test_mismatched_shapes_are_refused(adapter: Adapter, tiny: BaseModel) -> None:
    tensors = dict(adapter.tensors)
    name = sorted(tensors)[0]
    tensors[name] = torch.zeros(4, tensors[name].shape[1])
    with pytest.raises(AdapterMismatch, match=r"has shape \[4, 256\].*needs \[8, 256\]"):
        Adapter.from_bytes(_rewrite(adapter, tensors), tiny)


def test_missing_or_extra_tensors_are_refused(adapter: Adapter, tiny: BaseModel) -> None:
    tensors = dict(adapter.tensors)
    tensors.pop(sorted(tensors)[0])
    with pytest.raises(AdapterMismatch, match="1 missing"):
        Adapter.from_bytes(_rewrite(adapter, tensors), tiny)
    tensors = {**adapter.tensors, "base_model.model.lm_head.weight": torch.zeros(2, 2)}
    with pytest.raises(AdapterMismatch, match="1 unexpected"):
        Adapter.from_bytes(_rewrite(adapter, tensors), tiny)


def test_other_lora_config_is_refused(adapter: Adapter, tiny: BaseModel) -> None:
    spec = replace(adapter.lora, r=4)
    with pytest.raises(AdapterMismatch, match="needs"):
        Adapter.from_bytes(_rewrite(adapter, lora=spec.to_json()), tiny)
    spec = replace(adapter.lora, target_modules=("c_attn",))
    with pytest.raises(AdapterMismatch, match="none of the LoRA target modules"):
        Adapter.from_bytes(_rewrite(adapter, lora=spec.to_json()), tiny)


def test_mixed_or_integer_dtypes_are_refused(adapter: Adapter, tiny: BaseModel) -> None:
    tensors = dict(adapter.tensors)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name].half()
    with pytest.raises(AdapterMismatch, match="one of float32/float16/bfloat16"):
        Adapter.from_bytes(_rewrite(adapter, tensors), tiny)
    ints = {k: v.to(torch.int32) for k, v in adapter.tensors.items()}
    with pytest.raises(AdapterMismatch, match="one of float32/float16/bfloat16"):
        Adapter.from_bytes(_rewrite(adapter, ints), tiny)


def test_non_finite_values_are_refused(adapter: Adapter, tiny: BaseModel) -> None:
    tensors = dict(adapter.tensors)
    name = sorted(tensors)[0]
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    with pytest.raises(AdapterMismatch, match="NaN"):
        Adapter.from_bytes(_rewrite(adapter, tensors), tiny)


def test_foreign_files_and_versions_are_refused(adapter: Adapter, tiny: BaseModel) -> None:
    with pytest.raises(TensorFormatError, match="not a codecoop adapter"):
        Adapter.from_bytes(to_safetensors(dict(adapter.tensors), {}), tiny)
    with pytest.raises(AdapterMismatch, match="version '2' is not supported"):
        Adapter.from_bytes(_rewrite(adapter, format_version="2"), tiny)
    with pytest.raises(TensorFormatError):
        Adapter.from_bytes(b"\x80\x04pickle", tiny)


def test_save_is_atomic_and_load_validates(adapter: Adapter, tiny: BaseModel, tmp_path: Path) -> None:
    path = adapter.save(tmp_path / "a.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]
    assert Adapter.load(path, tiny).to_bytes() == adapter.to_bytes()


def test_merge_serves_the_same_predictions_and_leaves_the_base_alone(adapter: Adapter, tiny: BaseModel, corpus: CodeCorpus) -> None:
    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    merged = adapter.merge(tiny)
    attached = evaluate(tiny, adapter, corpus, block_size=64, max_blocks=8)
    served = evaluate(merged, None, corpus, block_size=64, max_blocks=8)
    assert served.loss == pytest.approx(attached.loss, rel=1e-4)
    assert merged.weights_hash != tiny.weights_hash and merged.model_id.startswith("tiny+lora-")
    assert all(torch.equal(before[k], v) for k, v in tiny.model.state_dict().items())
