"""LoRA fine-tuning of a base model on a code corpus, with an optional FedProx term.

The loop is deliberately plain: the corpus is tokenised once into fixed-length blocks, each step
draws a seeded batch of whole blocks (no padding, no collator), the LoRA parameters are the only
ones the optimiser sees, no key/value cache is built, and where the architecture allows it the
loss is fused with the frozen output projection (``codecoop.training.loss``), which saves most of
the memory traffic of the vocabulary-sized logits. On CUDA the forward pass runs under bf16
autocast with TF32 matmuls; on CPU everything is fp32.

Ctrl-C during training propagates as ``KeyboardInterrupt`` after the LoRA layers are removed from
the base model again; no adapter object is returned and nothing is written, so there is never a
half-written adapter. Save the returned adapter with ``Adapter.save``, which writes atomically.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from codecoop.errors import AdapterMismatch, TrainingError
from codecoop.training.adapter import Adapter, attached, lora_state
from codecoop.training.base import BaseModel
from codecoop.training.config import LoraSpec, TrainConfig
from codecoop.training.corpus import CodeCorpus
from codecoop.training.loss import fused_causal_lm_loss, supports_fused_loss

__all__ = ["StepInfo", "train_lora"]


@dataclass(frozen=True)
class StepInfo:
    """Progress after one optimiser step, passed to ``train_lora``'s ``on_step`` callback."""

    step: int
    steps: int
    loss: float
    tokens_seen: int
    tokens_per_s: float


def _batches(n_blocks: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Endless seeded stream of index batches: a fresh permutation per epoch, no block repeated within one."""
    gen = torch.Generator().manual_seed(seed)
    pending = torch.empty(0, dtype=torch.long)
    while True:
        while pending.numel() < batch_size:
            pending = torch.cat([pending, torch.randperm(n_blocks, generator=gen)])
        yield pending[:batch_size]
        pending = pending[batch_size:]


def train_lora(
    base: BaseModel,
    corpus: CodeCorpus,
    cfg: TrainConfig = TrainConfig(),
    start: Adapter | None = None,
    *,
    on_step: Callable[[StepInfo], None] | None = None,
) -> Adapter:
    """Fine-tune a LoRA adapter on ``corpus``'s training split and return it (the base is left as it was).

    Parameters
    ----------
    start:
        The round's starting adapter: training continues from its weights, and the FedProx term
        (``cfg.mu``) pulls towards them. Its LoRA shape wins; ``cfg`` must not ask for another.
    on_step:
        Called after every optimiser step (progress reporting in a simulation; raising stops training).

    Raises
    ------
    AdapterMismatch
        ``start`` belongs to another base model or has another LoRA shape than ``cfg``.
    TrainingError
        The loss became NaN or infinite, or the corpus is too small.
    """
    spec = LoraSpec.for_base(cfg, base.architecture)
    if start is not None:
        start.check_fits(base)
        if not start.lora.same_layout(spec):
            raise AdapterMismatch(
                f"the starting adapter has LoRA r={start.lora.r}, alpha={start.lora.alpha}, targets {list(start.lora.target_modules)}; "
                f"the config asks for r={spec.r}, alpha={spec.alpha}, targets {list(spec.target_modules)}"
            )
    blocks = corpus.blocks("train", base.tokenizer, cfg.seq_len)
    n_blocks = len(blocks)
    per_step = cfg.batch_size * cfg.grad_accum
    steps = math.ceil(cfg.epochs * n_blocks / per_step) if cfg.epochs is not None else cfg.steps
    plan = base.plan

    torch.manual_seed(cfg.seed)
    started = time.perf_counter()
    with attached(base, start, None if start is not None else spec) as model:
        model.train()
        causal_lm = model.get_base_model()
        fused = supports_fused_loss(causal_lm)
        compute_dtype = plan.autocast_dtype or torch.float32
        named = sorted((n, p) for n, p in model.named_parameters() if p.requires_grad)
        params = [p for _, p in named]
        anchor = [p.detach().clone() for p in params] if cfg.mu > 0 else []
        # differential privacy clips the change from where this run started: keep the fresh LoRA weights
        initial = lora_state(model) if cfg.dp_clip_norm is not None and start is None else None
        # Fused AdamW (CPU and CUDA) updates all LoRA tensors in one kernel instead of a Python loop.
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        warmup = cfg.warmup_steps
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
        order = _batches(n_blocks, cfg.batch_size, cfg.seed)
        bar = _progress(steps, cfg.progress, base.model_id)
        tokens = 0
        recent: list[float] = []
        try:
            for step in range(1, steps + 1):
                step_loss = 0.0
                for _ in range(cfg.grad_accum):
                    batch = blocks[next(order)].to(plan.device, non_blocking=True)
                    with plan.autocast():
                        if fused:
                            loss = fused_causal_lm_loss(causal_lm, batch, compute_dtype)
                        else:
                            loss = model(input_ids=batch, labels=batch, use_cache=False).loss
                    (loss / cfg.grad_accum).backward()
                    step_loss += loss.item() / cfg.grad_accum
                    tokens += batch.numel()
                if anchor:
                    prox = sum(((p - a) ** 2).sum() for p, a in zip(params, anchor))
                    (0.5 * cfg.mu * prox).backward()
                if not math.isfinite(step_loss):
                    raise TrainingError(f"loss became {step_loss} at step {step}; lower TrainConfig.lr")
                if cfg.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                recent = (recent + [step_loss])[-10:]
                rate = tokens / max(time.perf_counter() - started, 1e-9)
                if bar is not None:
                    bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}", tok_s=f"{rate:,.0f}", refresh=False)
                    bar.update(1)
                if on_step is not None:
                    on_step(StepInfo(step, steps, step_loss, tokens, rate))
        finally:
            if bar is not None:
                bar.close()
        tensors = lora_state(model)
    dp: dict[str, Any] | None = None
    if cfg.dp_clip_norm is not None:
        from codecoop.training.dp import epsilon, noise_seed, privatize_update

        origin = start.tensors if start is not None else initial
        seed = noise_seed(cfg.dp_seed, start.digest() if start is not None else None)
        tensors = privatize_update(tensors, origin, cfg.dp_clip_norm, cfg.dp_noise_multiplier, seed).tensors
        eps = epsilon(cfg.dp_noise_multiplier, 1, cfg.dp_delta)
        # the parameters and one round's epsilon are public; the seed and the pre-clip norm are not
        dp = {"clip_norm": cfg.dp_clip_norm, "noise_multiplier": cfg.dp_noise_multiplier, "delta": cfg.dp_delta,
              "epsilon_per_round": round(eps, 6) if math.isfinite(eps) else None}  # fmt: skip
    wall = time.perf_counter() - started
    training = {
        "wall_time_s": round(wall, 3),
        "device": plan.description,
        "tokens_seen": tokens,
        "tokens_per_s": round(tokens / wall, 1),
        "samples": n_blocks,
        "samples_seen": steps * per_step,
        "steps": steps,
        "final_loss": round(sum(recent) / len(recent), 5),
        "seed": cfg.seed,
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "grad_accum": cfg.grad_accum,
        "seq_len": cfg.seq_len,
        "mu": cfg.mu,
        "corpus_files": corpus.stats.train_files,
        "started_from": start.digest() if start is not None else None,
    }
    if dp is not None:
        training["dp"] = dp
    return Adapter(tensors, base.model_id, base.weights_hash, spec if start is None else start.lora, training)


def _progress(steps: int, enabled: bool, model_id: str) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=steps, desc=f"LoRA on {model_id}", unit="step", leave=False)
