"""Local training and evaluation: code corpora, partitioning, LoRA fine-tuning (peft), metrics.

Typical use::

    from codecoop.training import CodeCorpus, TrainConfig, evaluate, load_base, train_lora

    base = load_base("tiny")                       # or "smollm2-135m", a directory, a hub id
    corpus = CodeCorpus.from_path("path/to/code", base.tokenizer)
    adapter = train_lora(base, corpus, TrainConfig(steps=100, lr=2e-3))
    print(evaluate(base, adapter, corpus))         # Metrics(perplexity, token_accuracy, n_tokens, loss)
    blob = adapter.to_bytes()                      # canonical safetensors, for the content store

Importing this package loads torch but not transformers or peft; those load on first use.
"""

from codecoop.training.adapter import Adapter, AdapterSlot, adapter_slot, attached, expected_lora_shapes
from codecoop.training.base import BUILTIN_MODELS, BaseModel, load_base
from codecoop.training.cache import cache_root
from codecoop.training.config import LoraSpec, TrainConfig, default_target_modules
from codecoop.training.corpus import CodeCorpus, CorpusStats, Document, collect_files, repository_of
from codecoop.training.device import DevicePlan, plan_device
from codecoop.training.evaluate import BlockScorer, Metrics, adapter_scorers, block_scorer, evaluate, generate
from codecoop.training.hashing import weights_sha256
from codecoop.training.humaneval import (
    ExecutionResult,
    PassAtK,
    Problem,
    check_completion,
    estimate_pass_at_k,
    humaneval_problems,
    pass_at_k,
    run_sandboxed,
)
from codecoop.training.partition import STRATEGIES, file_kind, partition
from codecoop.training.tiny import stdlib_python_files
from codecoop.training.train import StepInfo, train_lora

__all__ = [
    "Adapter",
    "AdapterSlot",
    "BUILTIN_MODELS",
    "BaseModel",
    "BlockScorer",
    "CodeCorpus",
    "CorpusStats",
    "DevicePlan",
    "Document",
    "ExecutionResult",
    "LoraSpec",
    "Metrics",
    "PassAtK",
    "Problem",
    "STRATEGIES",
    "StepInfo",
    "TrainConfig",
    "adapter_scorers",
    "adapter_slot",
    "attached",
    "block_scorer",
    "cache_root",
    "check_completion",
    "collect_files",
    "default_target_modules",
    "estimate_pass_at_k",
    "evaluate",
    "expected_lora_shapes",
    "file_kind",
    "generate",
    "humaneval_problems",
    "load_base",
    "partition",
    "pass_at_k",
    "plan_device",
    "repository_of",
    "run_sandboxed",
    "stdlib_python_files",
    "train_lora",
    "weights_sha256",
]
