"""``tiny``: a small Llama built locally, for tests and the default simulation.

No model hub is needed. A byte-level BPE tokenizer is trained on Python's own standard library, a
4-layer Llama is initialised from the seed and pre-trained for a fixed number of steps on the same
code, so that a LoRA adapter on top of it learns measurably (on random weights, LoRA has nothing to
steer). The result is cached; building it takes well under two minutes on two CPU cores.

The build is deterministic for a given seed, Python version (the standard library is the corpus)
and torch build; it is not meant to be shared between machines as a federation's base model.
It runs on a fixed number of torch threads (``_THREADS``), whatever the caller set: CPU matrix
products sum in another order on another thread count, and the weights then differ in their last
bits (measured: 1 and 2 threads gave two weights hashes for seed 0).
"""

from __future__ import annotations

import json
import math
import random
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import torch

from codecoop.training._hf import quiet_transformers

__all__ = ["TINY_VERSION", "build_tiny", "stdlib_python_files"]

#: Bumped whenever the recipe changes, so an old cache entry is never mistaken for a new one.
TINY_VERSION = 2  # 2: a fixed thread count (v1 caches were built on whatever threads the caller had)

_VOCAB = 4096
_EOS = "<|endoftext|>"
_CORPUS_BYTES = 3_000_000
_STEPS = 150
_BATCH = 16
_SEQ = 128
_LR = 3e-3
_WARMUP = 10
_THREADS = 2  # part of the recipe: the weights depend on the thread count


def stdlib_python_files() -> list[Path]:
    """The standard library's ``.py`` files, sorted, without its own test suite."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}
    return sorted(p for p in root.rglob("*.py") if not skip.intersection(p.relative_to(root).parts))


def _pick_texts(seed: int) -> list[str]:
    files = stdlib_python_files()
    random.Random(seed).shuffle(files)
    texts: list[str] = []
    total = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        texts.append(text)
        total += len(text)
        if total >= _CORPUS_BYTES:
            break
    return texts


def _train_tokenizer(texts: list[str]) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB,
        special_tokens=[_EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=_EOS, eos_token=_EOS, pad_token=_EOS, model_max_length=1024)


def _pretrain(tokenizer: Any, blocks: torch.Tensor, seed: int, eos: int) -> tuple[Any, list[float]]:
    """A 4-layer Llama initialised from ``seed`` and trained ``_STEPS`` steps on ``blocks``; with its losses."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    model = LlamaForCausalLM(config)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=_LR, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (s + 1) / _WARMUP if s < _WARMUP else 0.1 + 0.45 * (1 + math.cos(math.pi * (s - _WARMUP) / (_STEPS - _WARMUP))),
    )
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    for _ in range(_STEPS):
        batch = blocks[torch.randint(len(blocks), (_BATCH,), generator=gen)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    return model, losses


def build_tiny(out: Path, seed: int = 0, log: bool = True) -> None:
    """Build the tokenizer and the pre-trained model into the empty directory ``out``."""
    from codecoop.training.hashing import weights_sha256

    started = time.perf_counter()
    if log:
        print(f"codecoop: building the tiny model once into {out.parent} (about a minute)...", file=sys.stderr)
    texts = _pick_texts(seed)
    tokenizer = _train_tokenizer(texts)
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for enc in tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False):
        ids.extend(enc.ids)
        ids.append(eos)
    stream = torch.tensor(ids, dtype=torch.long)
    blocks = stream[: len(stream) // _SEQ * _SEQ].view(-1, _SEQ)

    threads = torch.get_num_threads()
    torch.set_num_threads(_THREADS)
    try:
        model, losses = _pretrain(tokenizer, blocks, seed, eos)
    finally:
        torch.set_num_threads(threads)

    with quiet_transformers():
        model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "weights.sha256").write_text(weights_sha256(model.state_dict()) + "\n")
    info = {
        "recipe_version": TINY_VERSION,
        "seed": seed,
        "corpus_files": len(texts),
        "corpus_tokens": int(stream.numel()),
        "steps": _STEPS,
        "first_loss": round(losses[0], 4),
        "last_loss": round(sum(losses[-10:]) / 10, 4),
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    (out / "build.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    if log:
        print(
            f"codecoop: built tiny model in {info['build_seconds']} s (loss {info['first_loss']} -> {info['last_loss']})", file=sys.stderr
        )
