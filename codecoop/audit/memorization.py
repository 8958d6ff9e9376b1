"""The memorization audit a participant runs locally: does a model reproduce my private code?

1. **Prompts** come from the participant's own functions: every function with a docstring
   (:func:`codecoop.audit.clones.function_prompts`), its source up to the end of the docstring,
   truncated to its last ``max_prompt_tokens`` tokens (the text right before the body is what the
   continuation depends on). A seeded share ``prompt_fraction`` of them is used, at most ``max_prompts``.
2. **Generation** samples ``samples_per_prompt`` completions of ``max_new_tokens`` per prompt
   (temperature, top-p), prompts batched with left padding, seeded.
3. **Clones**: the generated lines (the prompt excluded) are normalised and looked up in a hash index
   of every ``min_lines``-line window of the private files (:class:`codecoop.audit.clones.CloneIndex`).
4. The **memorization ratio** is the number of generated normalised lines inside a clone over all
   generated normalised lines; the audit passes when it is at most ``threshold``.

The leaked blocks are returned for the participant's eyes only: :meth:`MemorizationReport.to_dict`
leaves them out unless asked, so a report can be shared without the code it found.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codecoop.audit.clones import MIN_LINES, CloneIndex, FunctionPrompt, covered_lines, function_prompts, normalise_text
from codecoop.errors import ConfigError

if TYPE_CHECKING:
    from codecoop.training import Adapter, BaseModel, Document

__all__ = [
    "MemorizationConfig",
    "Leak",
    "MemorizationReport",
    "audit_memorization",
    "load_documents",
    "select_prompts",
    "memorization_of_texts",
    "generate_completions",
]


@dataclass(frozen=True)
class MemorizationConfig:
    """Everything that decides a memorization audit (the defaults follow the memorization studies)."""

    prompt_fraction: float = 1.0  # share of the private functions used as prompts (sampled with seed)
    max_prompts: int | None = None  # cap after sampling (None: no cap)
    max_prompt_tokens: int = 512  # prompt = signature + docstring, truncated to this many tokens
    temperature: float = 0.8
    top_p: float = 0.95
    samples_per_prompt: int = 1
    max_new_tokens: int = 128
    min_lines: int = MIN_LINES  # an exact clone is >= this many consecutive normalised lines
    threshold: float = 0.05  # pass when ratio <= threshold
    seed: int = 0
    batch_size: int = 8  # prompts generated together (left-padded)

    def __post_init__(self) -> None:
        if not 0.0 < self.prompt_fraction <= 1.0:
            raise ConfigError(f"prompt_fraction must be in (0, 1], got {self.prompt_fraction}")
        if self.max_prompts is not None and self.max_prompts < 1:
            raise ConfigError(f"max_prompts must be at least 1 when set, got {self.max_prompts}")
        for key in ("max_prompt_tokens", "samples_per_prompt", "max_new_tokens", "min_lines", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"MemorizationConfig.{key} must be at least 1, got {getattr(self, key)}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ConfigError(f"need temperature >= 0 and 0 < top_p <= 1, got {self.temperature} and {self.top_p}")
        if self.temperature == 0 and self.samples_per_prompt > 1:
            raise ConfigError("greedy decoding (temperature 0) gives one completion per prompt; set temperature > 0 to sample several")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold is a share of lines in [0, 1], got {self.threshold}")


@dataclass(frozen=True)
class Leak:
    """One memorized block (shown locally only)."""

    source: str  # path of the private file it copies
    source_line: int  # 1-based first line in that file
    lines: tuple[str, ...]  # the generated lines that are a clone


@dataclass(frozen=True)
class MemorizationReport:
    """Outcome of :func:`audit_memorization`."""

    ratio: float  # memorized generated lines / all generated (non-blank, normalised) lines
    generated_lines: int
    memorized_lines: int
    prompts: int
    samples: int
    leaks: tuple[Leak, ...]
    threshold: float
    passed: bool

    def to_dict(self, include_leaks: bool = False) -> dict[str, Any]:
        """Plain JSON-ready data; the leaked code only with ``include_leaks`` (it is private)."""
        out: dict[str, Any] = {
            "ratio": self.ratio,
            "generated_lines": self.generated_lines,
            "memorized_lines": self.memorized_lines,
            "prompts": self.prompts,
            "samples": self.samples,
            "leak_count": len(self.leaks),
            "threshold": self.threshold,
            "passed": self.passed,
        }
        if include_leaks:
            out["leaks"] = [{**asdict(leak), "lines": list(leak.lines)} for leak in self.leaks]
        return out


def load_documents(documents: Sequence[Document] | Sequence[Path] | Sequence[str]) -> list[tuple[Path, str]]:
    """``(path, text)`` of every private file: documents as they are; paths read, folders walked for ``.py`` files.

    Raises
    ------
    ConfigError
        A path does not exist, or nothing readable was found.
    """
    from codecoop.training.corpus import collect_files

    out: list[tuple[Path, str]] = []
    for item in documents:
        if hasattr(item, "text") and hasattr(item, "path"):
            out.append((Path(item.path), item.text))  # type: ignore[union-attr]
            continue
        path = Path(item).expanduser()  # type: ignore[arg-type]
        if not path.exists():
            raise ConfigError(f"private data {path} does not exist; give a folder or files of your own code")
        for f in collect_files(path) if path.is_dir() else [path]:
            try:
                out.append((f, f.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError):
                continue
    if not out:
        raise ConfigError("no readable private source files were given; point --data at a folder of your own Python code")
    return out


def select_prompts(files: Sequence[tuple[Path, str]], config: MemorizationConfig) -> list[FunctionPrompt]:
    """The seeded sample of function prompts the audit uses, in file and line order."""
    candidates = [p for path, text in files for p in function_prompts(path, text)]
    if not candidates:
        raise ConfigError(
            "the private data has no function with a docstring, so there is nothing to prompt the model with; "
            "the memorization audit needs Python files with documented functions"
        )
    take = len(candidates) if config.prompt_fraction >= 1.0 else max(1, round(config.prompt_fraction * len(candidates)))
    chosen = random.Random(config.seed).sample(range(len(candidates)), take)
    if config.max_prompts is not None:
        chosen = chosen[: config.max_prompts]
    return [candidates[i] for i in sorted(chosen)]


def memorization_of_texts(
    generations: Sequence[str], index: CloneIndex, threshold: float = MemorizationConfig.threshold, prompts: int = 0
) -> MemorizationReport:
    """Score generated texts against a clone index (the part of the audit after generation)."""
    generated = memorized = 0
    leaks: list[Leak] = []
    for text in generations:
        norm = normalise_text(text)
        spans = index.find(norm.lines)
        generated += len(norm.lines)
        memorized += covered_lines(spans)
        for span in spans:
            src = index.sources[span.source]
            first, last = norm.line_numbers[span.start], norm.line_numbers[span.stop - 1]
            leaks.append(Leak(str(src.path), src.text.line_numbers[span.source_start], tuple(norm.raw[first - 1 : last])))
    ratio = memorized / generated if generated else 0.0
    return MemorizationReport(ratio, generated, memorized, prompts, len(generations), tuple(leaks), threshold, ratio <= threshold)


def audit_memorization(
    base: BaseModel,
    adapter: Adapter | None,
    documents: Sequence[Document] | Sequence[Path],
    config: MemorizationConfig = MemorizationConfig(),
    *,
    on_batch: Callable[[int, int], None] | None = None,
) -> MemorizationReport:
    """Measure how much of ``documents`` the model ``base`` (+ ``adapter``) reproduces verbatim.

    Parameters
    ----------
    adapter:
        The LoRA adapter under audit; None audits the bare base model (the reference, about 0).
    documents:
        The participant's private code: :class:`~codecoop.training.Document` objects, files or folders.
    on_batch:
        Called with (prompts done, prompts in all) after every generation batch (progress display).

    Raises
    ------
    ConfigError
        No private file was readable, or none has a documented function to prompt with.
    """
    files = load_documents(documents)
    index = CloneIndex.build(files, config.min_lines)
    prompts = select_prompts(files, config)
    generations = generate_completions(base, adapter, [p.text for p in prompts], config, on_batch=on_batch)
    return memorization_of_texts(generations, index, config.threshold, prompts=len(prompts))


def generate_completions(
    base: BaseModel,
    adapter: Adapter | None,
    prompts: Sequence[str],
    config: MemorizationConfig,
    *,
    on_batch: Callable[[int, int], None] | None = None,
) -> list[str]:
    """``samples_per_prompt`` completions of each prompt (prompt text excluded), prompt by prompt.

    Prompts are tokenised once, cut to their last ``max_prompt_tokens`` tokens, sorted by length so
    a batch pads little, and generated ``batch_size`` at a time with left padding under one attached
    adapter. torch's generator is seeded once with ``config.seed``.
    """
    import torch

    from codecoop.training.adapter import attached

    tok = base.tokenizer
    ids = [tok(p, add_special_tokens=False)["input_ids"][-config.max_prompt_tokens :] for p in prompts]
    order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), i))
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    sampling = config.temperature > 0
    kwargs: dict[str, Any] = {
        "max_new_tokens": config.max_new_tokens,
        "num_return_sequences": config.samples_per_prompt,
        "pad_token_id": pad,
        "do_sample": sampling,
    }
    if sampling:
        kwargs.update(temperature=config.temperature, top_p=config.top_p, top_k=0)
    results: dict[int, list[str]] = {}
    torch.manual_seed(config.seed)
    context = attached(base, adapter) if adapter is not None else contextlib.nullcontext(base.model)
    with torch.no_grad(), context as model:
        model.eval()
        for b in range(math.ceil(len(order) / config.batch_size)):
            batch = order[b * config.batch_size : (b + 1) * config.batch_size]
            width = max(len(ids[i]) for i in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                if ids[i]:
                    input_ids[row, width - len(ids[i]) :] = torch.tensor(ids[i], dtype=torch.long)
                    mask[row, width - len(ids[i]) :] = 1
            with base.plan.autocast():
                out = model.generate(input_ids=input_ids.to(base.device), attention_mask=mask.to(base.device), **kwargs)
            texts = tok.batch_decode(out[:, width:], skip_special_tokens=True)
            for row, i in enumerate(batch):
                s = config.samples_per_prompt
                results[i] = texts[row * s : (row + 1) * s]
            if on_batch is not None:
                on_batch(min((b + 1) * config.batch_size, len(order)), len(order))
    return [text for i in range(len(prompts)) for text in results[i]]
