"""Evaluation on a corpus (perplexity, next-token accuracy) and a generation helper."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from codecoop.errors import TrainingError
from codecoop.training.adapter import Adapter, adapter_slot, attached
from codecoop.training.base import BaseModel
from codecoop.training.config import LoraSpec
from codecoop.training.corpus import CodeCorpus, Split

__all__ = ["BlockScorer", "Metrics", "adapter_scorers", "block_scorer", "evaluate", "generate"]


@dataclass(frozen=True)
class Metrics:
    """Held-out quality of a model on a corpus split.

    ``loss`` is the mean next-token cross-entropy in nats, ``perplexity`` its exponential,
    ``token_accuracy`` the share of positions where the most likely token is the true next one,
    ``n_tokens`` the number of predicted positions.
    """

    perplexity: float
    token_accuracy: float
    n_tokens: int
    loss: float


def _with_adapter(base: BaseModel, adapter: Adapter | None):
    return attached(base, adapter) if adapter is not None else contextlib.nullcontext(base.model)


@torch.no_grad()
def evaluate(
    base: BaseModel,
    adapter: Adapter | None,
    corpus: CodeCorpus,
    *,
    split: Split = "validation",
    block_size: int = 256,
    batch_size: int = 8,
    max_blocks: int | None = None,
) -> Metrics:
    """Perplexity and next-token accuracy of ``base`` (+ ``adapter``) on a corpus split.

    The split's token stream is cut into non-overlapping ``block_size`` blocks; each block predicts
    its own tokens 2..n. ``max_blocks`` evaluates only the first blocks (a fixed, seed-independent
    prefix), so two models compared with the same arguments see the same tokens.
    """
    blocks = _blocks(base, corpus, split, block_size, max_blocks)
    total_loss = 0.0
    correct = 0
    count = 0
    with _with_adapter(base, adapter) as model:
        model.eval()
        for i in range(0, len(blocks), batch_size):
            batch = blocks[i : i + batch_size].to(base.device)
            with base.plan.autocast():
                logits = model(input_ids=batch).logits
            logits = logits[:, :-1].float()
            target = batch[:, 1:]
            total_loss += torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum"
            ).item()
            correct += int((logits.argmax(-1) == target).sum())
            count += target.numel()
    if count == 0:
        raise TrainingError(f"the {split} split gives no tokens to evaluate")
    loss = total_loss / count
    return Metrics(math.exp(min(loss, 700.0)), correct / count, count, loss)


class BlockScorer:
    """Per-block held-out loss of one model, block by block, for tests that may stop early.

    Made by :func:`block_scorer`; ``scorer(indices)`` returns the mean next-token loss (nats) of
    each listed block. Every block has ``block_size - 1`` predicted positions, so the mean over
    all blocks equals :func:`evaluate`'s ``loss`` on the same arguments.
    """

    def __init__(self, base: BaseModel, model: torch.nn.Module, blocks: torch.Tensor, batch_size: int) -> None:
        self._base = base
        self._model = model
        self._blocks = blocks
        self._batch_size = batch_size

    @property
    def model(self) -> torch.nn.Module:
        """The model this scorer runs (the base with the adapter attached or loaded), for other probes of it."""
        return self._model

    @property
    def n_blocks(self) -> int:
        """How many blocks there are to score."""
        return int(self._blocks.shape[0])

    @torch.no_grad()
    def __call__(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        out = []
        for i in range(0, len(index), self._batch_size):
            batch = self._blocks[index[i : i + self._batch_size]].to(self._base.device)
            with self._base.plan.autocast():
                logits = self._model(input_ids=batch).logits
            logits = logits[:, :-1].float()
            target = batch[:, 1:]
            per_token = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none")
            out.append(per_token.view(target.shape).double().mean(dim=1).cpu())
        return torch.cat(out).numpy() if out else np.zeros(0)


@contextlib.contextmanager
def block_scorer(
    base: BaseModel,
    adapter: Adapter | None,
    corpus: CodeCorpus,
    *,
    split: Split = "validation",
    block_size: int = 256,
    batch_size: int = 8,
    max_blocks: int | None = None,
) -> Iterator[BlockScorer]:
    """Attach ``adapter`` once and score blocks of a corpus split on demand (see :class:`BlockScorer`).

    The blocks are those :func:`evaluate` uses with the same arguments.
    """
    blocks = _blocks(base, corpus, split, block_size, max_blocks)
    with _with_adapter(base, adapter) as model:
        model.eval()
        yield BlockScorer(base, model, blocks, batch_size)


@contextlib.contextmanager
def adapter_scorers(
    base: BaseModel,
    spec: LoraSpec,
    corpus: CodeCorpus,
    *,
    split: Split = "validation",
    block_size: int = 256,
    batch_size: int = 8,
    max_blocks: int | None = None,
) -> Iterator[Callable[[Adapter], BlockScorer]]:
    """Score many adapters of one LoRA layout on the same blocks, attaching LoRA layers only once.

    Yields ``scorer_for(adapter)``, which loads ``adapter`` into the attached layers (an
    :class:`~codecoop.training.adapter.AdapterSlot`) and returns its :class:`BlockScorer`; a
    scorer is valid until the next ``scorer_for`` call. Figures equal :func:`block_scorer`'s.
    """
    blocks = _blocks(base, corpus, split, block_size, max_blocks)
    with adapter_slot(base, spec) as slot:
        yield lambda adapter: BlockScorer(base, slot.load(adapter), blocks, batch_size)


def _blocks(base: BaseModel, corpus: CodeCorpus, split: Split, block_size: int, max_blocks: int | None) -> torch.Tensor:
    blocks = corpus.blocks(split, base.tokenizer, block_size)
    return blocks[:max_blocks] if max_blocks is not None else blocks


@torch.no_grad()
def generate(
    base: BaseModel,
    prompt: str,
    adapter: Adapter | None = None,
    *,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float = 1.0,
    num_samples: int = 1,
    stop: Sequence[str] = (),
    seed: int = 0,
) -> list[str]:
    """Complete ``prompt``; returns ``num_samples`` completions (the prompt itself not included).

    ``temperature=0`` decodes greedily. Each completion is cut before the first ``stop`` string.
    Sampling seeds torch's global generator with ``seed`` for reproducible draws.
    """
    if temperature < 0 or not 0 < top_p <= 1:
        raise TrainingError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature} and {top_p}")
    if temperature == 0 and num_samples > 1:
        raise TrainingError("greedy decoding (temperature 0) gives one completion; set temperature > 0 to sample several")
    tok = base.tokenizer
    enc = tok(prompt, return_tensors="pt", add_special_tokens=False).to(base.device)
    kwargs: dict = {
        "max_new_tokens": max_new_tokens,
        "num_return_sequences": num_samples,
        "pad_token_id": tok.pad_token_id,
        "do_sample": temperature > 0,
    }
    if temperature > 0:
        kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
    if stop:
        kwargs.update(stop_strings=list(stop), tokenizer=tok)
    torch.manual_seed(seed)
    with _with_adapter(base, adapter) as model:
        model.eval()
        with base.plan.autocast():
            out = model.generate(**enc, **kwargs)
    texts = tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return [_cut(t, stop) for t in texts]


def _cut(text: str, stop: Sequence[str]) -> str:
    positions = [i for s in stop if (i := text.find(s)) >= 0]
    return text[: min(positions)] if positions else text
