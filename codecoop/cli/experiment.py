"""``codecoop experiment``: centralized, single-client, federated and incremental training, compared."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import typer

from codecoop.cli import console

#: --quick: a smoke run of every setting in about a minute on tiny (any option given explicitly wins).
QUICK = {
    "rounds": 1,
    "steps": 2,
    "partitions": "uniform",
    "strategies": "fedavg,fedmedian",
    "orders": 2,
    "memorization_prompts": 2,
    "memorization_tokens": 32,
    "files": 12,
    "shared_files": 3,
    "batch_size": 4,
    "seq_len": 64,
    "eval_blocks": 4,
}
#: The full run's values for the options left unset (see ExperimentConfig).
FULL = {
    "rounds": 3,
    "steps": 6,
    "partitions": "uniform,quantity-imbalanced,by-repository",
    "strategies": "fedavg,fedmedian,fedtrimmedavg,fedprox,fedyogi",
    "orders": None,
    "memorization_prompts": 8,
    "memorization_tokens": 64,
    "files": 45,
    "shared_files": 6,
    "batch_size": 8,
    "seq_len": 128,
    "eval_blocks": 16,
}


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _targets(text: str) -> tuple[str, ...] | None:
    from codecoop.sim.experiment import ALL_LINEAR

    if text == "auto":
        return None
    if text == "all":
        return ALL_LINEAR
    targets = _split(text)
    if not targets:
        raise typer.BadParameter("give auto, all or module names such as q_proj,v_proj", param_hint="--lora-targets")
    return targets


def experiment(
    model: str = typer.Option("tiny", "--model", "-m", help="Base model: tiny or smollm2-135m (or a local model folder)."),
    orgs: int = typer.Option(3, "--orgs", "-n", help="Number of organisations."),
    rounds: Optional[int] = typer.Option(None, "--rounds", "-r", help="Federated rounds [full: 3; quick: 1]."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Optimizer steps per organisation per round [full: 6; quick: 2]."),
    partitions: Optional[str] = typer.Option(
        None, "--partitions", "-p", help="Comma-separated: uniform, quantity-imbalanced, by-repository [full: all three]."
    ),
    strategies: Optional[str] = typer.Option(
        None,
        "--strategies",
        "-s",
        help="Comma-separated aggregation strategies, with parameters as in `codecoop sim`: fedavg, fedmedian, fedtrimmedavg, fedprox (FedAvg + client proximal term, 'fedprox:mu=0.1'), fedyogi, fedadam, krum... [full: fedavg,fedmedian,fedtrimmedavg,fedprox,fedyogi].",
    ),
    settings: str = typer.Option(
        ",".join(("centralized", "single", "federated", "incremental")),
        "--settings",
        help="Comma-separated settings to run: centralized, single, federated, incremental.",
    ),
    orders: Optional[int] = typer.Option(
        None,
        "--orders",
        help="Incremental orders to run (default: all N!); fewer take the rotations first, so --orders N puts every organisation once in every position [quick: 2].",
    ),
    humaneval: int = typer.Option(0, "--humaneval", help="HumanEval problems for greedy pass@1 (0: skip; needs smollm2-135m)."),
    memorization_prompts: Optional[int] = typer.Option(
        None, "--memorization-prompts", help="Prompts per memorization audit (0: skip) [full: 8; quick: 2]."
    ),
    memorization_tokens: Optional[int] = typer.Option(
        None,
        "--memorization-tokens",
        help="New tokens generated per memorization prompt; a clone is at least 6 whole lines, so give well over 60 [full: 64; quick: 32].",
    ),
    duplicate_audits: bool = typer.Option(
        True,
        "--duplicate-audits/--no-duplicate-audits",
        help="Also audit each model against the planted files alone and the other files alone (the per-organisation audits already attribute leaks to planted files).",
    ),
    files: Optional[int] = typer.Option(None, "--files", help="Files in the pool split among the organisations [full: 45; quick: 12]."),
    shared_files: Optional[int] = typer.Option(
        None, "--shared-files", help="Extra files planted in several organisations' training data [full: 6; quick: 3]."
    ),
    shared_copies: int = typer.Option(2, "--shared-copies", help="Organisations each planted file goes to."),
    max_file_bytes: int = typer.Option(
        12_000, "--max-file-bytes", help="Largest source file drawn into the pool (smaller files: less data per file)."
    ),
    lr: float = typer.Option(5e-3, "--lr", help="LoRA learning rate."),
    lora_r: int = typer.Option(8, "--lora-r", help="LoRA rank (alpha = 2 r)."),
    lora_targets: str = typer.Option(
        "auto",
        "--lora-targets",
        help="LoRA target modules: auto (all linear layers on tiny, q/v otherwise), all (every linear layer of a Llama), or a comma-separated list.",
    ),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Sequences per optimizer step [full: 8; quick: 4]."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Tokens per sequence [full: 128; quick: 64]."),
    eval_blocks: Optional[int] = typer.Option(None, "--eval-blocks", help="Validation blocks per organisation [full: 16; quick: 4]."),
    data: list[Path] = typer.Option(
        [], "--data", help="Folder of Python code to draw the pool from (repeatable; default: installed projects)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of file selection, partitioning, training and audits."),
    out: Path = typer.Option(
        Path("experiment-report"), "--out", "-o", help="Folder for README.md, results.json and the plots (cache in OUT/.cache)."
    ),
    quick: bool = typer.Option(
        False, "--quick", help="A smoke run: 1 round of 2 steps, one partition, 2 strategies, 2 orders, small data."
    ),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw the PNG figures."),
    threads: int = typer.Option(
        0,
        "--threads",
        help="torch CPU threads (0: torch's default). On a machine shared with other jobs use 1: oversubscribed threads ran 8x slower here.",
    ),
) -> None:
    """Compare centralized, single-client, federated and incremental training for the same data and compute.

    For each partition of one pool of files among the organisations: one model on all data pooled,
    each organisation alone, R federated rounds per strategy (real codecoop.aggregation strategies,
    in-process), and the organisations one after another in every order. Every centralized,
    federated and incremental model gets rounds x orgs x steps optimizer steps of the same batch;
    each single-client model its share, rounds x steps. Measures validation perplexity and
    next-token accuracy (union of the organisations' validation splits and per organisation), the
    memorization ratio against each organisation's own training files and against planted
    duplicated files, and pass@1 on HumanEval (smollm2-135m). Writes OUT/README.md (tables and the
    exact command), OUT/results.json and PNG plots; results are cached in OUT/.cache as they come,
    so rerunning the same command after a crash resumes.

    Examples:

      codecoop experiment --quick --out /tmp/exp                 # every setting in about a minute

      codecoop experiment --out docs/results/tiny-full           # the full grid on tiny (about 45 min on 2 cores)

      codecoop experiment --model smollm2-135m --partitions uniform --strategies fedavg,fedprox \\
          --orders 2 --rounds 2 --steps 4 --humaneval 10 --out docs/results/smollm2-short

      codecoop experiment --settings centralized,incremental --files 12 --steps 30   # memorization on small data
    """
    from codecoop.sim.experiment import ExperimentConfig, parse_strategies, run_experiment

    preset = QUICK if quick else FULL
    given = {
        "rounds": rounds,
        "steps": steps,
        "partitions": partitions,
        "strategies": strategies,
        "orders": orders,
        "memorization_prompts": memorization_prompts,
        "memorization_tokens": memorization_tokens,
        "files": files,
        "shared_files": shared_files,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "eval_blocks": eval_blocks,
    }
    v = {k: (given[k] if given[k] is not None else preset[k]) for k in given}
    config = ExperimentConfig(
        model=model,
        orgs=orgs,
        rounds=v["rounds"],
        steps=v["steps"],
        partitions=_split(v["partitions"]),
        strategies=parse_strategies(v["strategies"]),
        settings=_split(settings),
        orders=v["orders"],
        humaneval=humaneval,
        memorization_prompts=v["memorization_prompts"],
        memorization_tokens=v["memorization_tokens"],
        duplicate_audits=duplicate_audits,
        seed=seed,
        files=v["files"],
        shared_files=v["shared_files"],
        shared_copies=shared_copies,
        max_file_bytes=max_file_bytes,
        data=tuple(str(d) for d in data),
        lr=lr,
        r=lora_r,
        target_modules=_targets(lora_targets),
        batch_size=v["batch_size"],
        seq_len=v["seq_len"],
        eval_blocks=v["eval_blocks"],
    )
    if threads < 0:
        raise typer.BadParameter("must be 0 (torch's default) or a positive count", param_hint="--threads")
    if threads:
        import torch

        torch.set_num_threads(threads)
    command = canonical_command(config, out, threads)
    console.print(command, markup=False, highlight=False, soft_wrap=True, style="bold")

    def log(message: str) -> None:
        console.print(message, markup=False, highlight=False, soft_wrap=True)

    result = run_experiment(config, out, log=log, command=command, plots=plots)
    n = len(result.runs)
    console.print(
        f"{n} runs in {result.wall_s / 60:.1f} min; wrote {out / 'README.md'}, {out / 'results.json'} and the plots", highlight=False
    )


def canonical_command(config, out: Path, threads: int = 0) -> str:  # type: ignore[no-untyped-def]
    """The command line that reproduces ``config`` with every option spelled out (defaults may change)."""
    args = [
        "--model",
        config.model,
        "--orgs",
        config.orgs,
        "--rounds",
        config.rounds,
        "--steps",
        config.steps,
        "--partitions",
        ",".join(config.partitions),
        "--strategies",
        ",".join(c.label for c in config.strategies),
        "--settings",
        ",".join(config.settings),
    ]
    if config.orders is not None:
        args += ["--orders", config.orders]
    args += [
        "--humaneval",
        config.humaneval,
        "--memorization-prompts",
        config.memorization_prompts,
        "--memorization-tokens",
        config.memorization_tokens,
        *([] if config.duplicate_audits else ["--no-duplicate-audits"]),
        "--files",
        config.files,
        "--shared-files",
        config.shared_files,
        "--shared-copies",
        config.shared_copies,
        "--max-file-bytes",
        config.max_file_bytes,
        "--lr",
        f"{config.lr:g}",
        "--lora-r",
        config.r,
        "--batch-size",
        config.batch_size,
        "--seq-len",
        config.seq_len,
        "--eval-blocks",
        config.eval_blocks,
    ]
    if config.target_modules is not None:
        args += ["--lora-targets", ",".join(config.target_modules)]
    for d in config.data:
        args += ["--data", d]
    args += ["--seed", config.seed, "--out", str(out)]
    if threads:
        args += ["--threads", threads]
    return "codecoop experiment " + shlex.join(str(a) for a in args)
