"""``codecoop sim``: the main job, a whole federation of organisations on this machine."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from codecoop.cli import console
from codecoop.cli._output import print_table
from codecoop.settings import option

#: ``codecoop sim`` options the multi-process devnet cannot honour, and why (refused with ``--processes``).
NOT_WITH_PROCESSES = {
    "partition": "the devnet deals whole installed projects to the organisations round-robin",
    "data": "the devnet's organisations train on installed projects",
    "byzantine": "the devnet runs honest nodes only (Byzantine organisations run in the one-process simulation)",
    "baselines": "the devnet trains no single-client baselines",
    "out": "the devnet writes no report; node logs and journals are kept with --workdir",
}
#: ... and those it passes to every node as settings of its configuration.
NODE_SETTINGS_WITH_PROCESSES = {
    "lr": "training.lr",
    "seed": "training.seed",
    "min_improvement": "node.min_improvement",
    "dp_clip_norm": "training.dp_clip_norm",
    "dp_noise_multiplier": "training.dp_noise_multiplier",
}


def sim(
    ctx: typer.Context,
    orgs: int = option("sim.orgs"),
    rounds: int = option("sim.rounds"),
    strategy: str = option("sim.strategy"),
    model: str = option("model.id"),
    partition: str = option("sim.partition"),
    steps: int = option("training.steps"),
    lr: float = option("training.lr"),
    data: list[Path] = option("sim.data"),
    baselines: bool = option("sim.baselines"),
    min_improvement: int = option("node.min_improvement"),
    seed: int = option("sim.seed"),
    byzantine: list[str] = option("sim.byzantine"),
    dp_clip_norm: float = option("training.dp_clip_norm"),
    dp_noise_multiplier: float = option("sim.dp_noise_multiplier"),
    out: Path = option("sim.out"),
    transport: str = option("sim.transport"),
    processes: bool = option("sim.processes"),
    workdir: Optional[Path] = option("sim.workdir"),
) -> None:
    """Deploy the contracts on an embedded chain and run N organisations through R full rounds.

    Every organisation is a real participant node with its own key, private code, content store and
    journal; rounds use the real contracts, LoRA training and aggregation. Prints live progress, a
    table per round (accepted and rejected updates, the global model's loss on the validation files
    the nodes judged with and on test files no node sees, test perplexity, each organisation's
    single-client baseline, gas, tokens minted) and writes a JSON and a markdown report.

    Examples:

      codecoop sim                                  # 3 organisations, 3 rounds on tiny (a few minutes)

      codecoop sim --orgs 5 --rounds 4 --strategy 'fedtrimmedavg:beta=0.2' --partition uniform

      codecoop sim --model smollm2-135m --steps 20 --rounds 2

      codecoop sim --transport libp2p   # every peer's update fetched over a real libp2p host per organisation

      codecoop sim --processes --orgs 3 --rounds 1   # separate processes, each its own store, over libp2p and hardhat

      codecoop sim --orgs 4 --byzantine 1:sign-flip --no-baselines   # one organisation poisons its updates

      codecoop sim --dp-clip-norm 0.5   # differentially private updates (noise multiplier 1)
    """
    if processes:
        _run_devnet(ctx, orgs=orgs, rounds=rounds, steps=steps, model=model, strategy=strategy, workdir=workdir, transport=transport)
        return

    from codecoop.cli.node import print_event
    from codecoop.sim import Hooks, SimConfig, Simulation

    config = SimConfig(
        orgs=orgs,
        rounds=rounds,
        strategy=strategy,
        model=model,
        partition=partition,
        steps=steps,
        lr=lr,
        data=tuple(str(d) for d in data),
        baselines=baselines,
        min_improvement_micro=min_improvement,
        seed=seed,
        workdir=str(workdir) if workdir else None,
        byzantine=tuple(byzantine),
        dp_clip_norm=dp_clip_norm or None,
        dp_noise_multiplier=dp_noise_multiplier if dp_clip_norm else 0.0,
        transport=transport,
    )
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, int] = {}

    def on_step(org: str, info) -> None:
        if org not in tasks or progress.tasks[tasks[org]].finished:
            tasks[org] = progress.add_task(f"training {org}", total=info.steps, loss="-")
        progress.update(tasks[org], completed=info.step, loss=f"{info.loss:.3f}")

    def on_round(rep) -> None:
        base = ", ".join(f"{k} alone {v:.4f}" for k, v in rep.baseline_loss.items())
        console.print(
            f"[bold]round {rep.round} {rep.outcome}[/]: {rep.accepted}/{rep.submitted} updates accepted; "
            f"global test loss {rep.global_loss:.4f} (ppl {rep.global_ppl:.2f}), validation {rep.validation_loss:.4f}"
            + (f"; {base}" if base else "")
            + f"; {rep.wall_s:.0f} s",
            highlight=False,
        )

    def log(message: str) -> None:
        console.print(f"[dim]{message}[/]", highlight=False)

    hooks = Hooks(log=log, on_event=print_event, on_train_step=on_step, on_round=on_round)
    simulation = Simulation(config, hooks)
    outcome = None
    try:
        with progress:
            report = simulation.run()
        if byzantine:
            from codecoop.sim.byzantine import byzantine_outcome

            outcome = byzantine_outcome(simulation)
    finally:
        simulation.close()
    _summary(report)
    if outcome is not None:
        attackers = ", ".join(f"{name} ({attack})" for name, attack in outcome.attacks.items())
        console.print(
            f"Byzantine {attackers}: {outcome.poisoned_accepted} of {outcome.poisoned_submitted} poisoned updates accepted; "
            f"honest updates {outcome.honest_accepted} of {outcome.honest_submitted} accepted; tokens per attacker "
            f"{outcome.attacker_tokens:.1f}, per honest organisation {outcome.honest_tokens:.1f}",
            highlight=False,
        )
    json_path, md_path = report.write(out)
    console.print(f"reports: {json_path} and {md_path}")


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was set on the command line or from the environment (not left at its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def _run_devnet(ctx: typer.Context, *, transport: str, workdir: Optional[Path], **kw) -> None:
    """``--processes``: the options that apply go to the devnet or to every node's configuration; the others are refused."""
    from codecoop.errors import ConfigError
    from codecoop.sim.devnet import DevnetConfig, run_devnet

    refused = [f"--{n.replace('_', '-')}: {why}" for n, why in NOT_WITH_PROCESSES.items() if _given(ctx, n)]
    if _given(ctx, "transport") and transport != "libp2p":
        refused.append("--transport: the devnet's node processes always talk over libp2p")
    if refused:
        raise ConfigError("with --processes these options cannot apply; drop them:\n  " + "\n  ".join(refused))
    overrides = tuple(
        f"{key}={ctx.params[name]!r}" if isinstance(ctx.params[name], str) else f"{key}={ctx.params[name]}"
        for name, key in NODE_SETTINGS_WITH_PROCESSES.items()
        if _given(ctx, name)
    )
    result = run_devnet(
        DevnetConfig(**kw, workdir=str(workdir) if workdir else None, node_overrides=overrides),
        log=lambda m: console.print(m, highlight=False),
    )
    console.print(f"devnet: {result.rounds_completed} round(s) completed with {kw['orgs']} node processes in {result.wall_s:.0f} s")


def _summary(report, out: Console | None = None) -> None:
    """The run's per-round table and verdict; every figure whole at any console width."""
    out = out or console
    names = [o.name for o in report.orgs]
    table = Table(
        title=f"codecoop sim: {len(names)} organisations, {len(report.rounds)} rounds ({report.settings['strategy']}, {report.settings['model']})",
        caption=f"val: global validation loss (the files the nodes judged with); test, ppl: global test loss and perplexity "
        f"(files no node trains, judges or selects with); acc/rej: updates accepted/rejected; alone: each organisation trained only on its own code "
        f"({' / '.join(names)}); kgas: thousands of gas; minted: tokens per organisation",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
    )
    for col in ("round", "acc", "rej", "val", "test", "ppl", "alone", "kgas", "minted"):
        table.add_column(col, justify="right")
    table.add_row(
        "0",
        "",
        "",
        f"{report.initial_validation_loss:.4f}",
        f"{report.initial_loss:.4f}",
        f"{math.exp(report.initial_loss):.0f}",
        "",
        "",
        "",
    )
    for r in report.rounds:
        alone = " / ".join(f"{r.baseline_loss[n]:.3f}" for n in names if n in r.baseline_loss) or "-"
        minted = " / ".join(f"{r.minted.get(n, 0.0):.0f}" for n in names)
        label = str(r.round) if r.outcome == "completed" else f"{r.round} ({r.outcome})"
        table.add_row(
            label,
            str(r.accepted),
            str(r.rejected),
            f"{r.validation_loss:.4f}",
            f"{r.global_loss:.4f}",
            f"{r.global_ppl:.0f}",
            alone,
            f"{sum(r.gas.values()) / 1000:,.0f}",
            minted,
        )
    # alone and minted hold one figure per organisation: they wrap between figures, the rest never wraps
    print_table(
        table,
        figures=("round", "acc", "rej", "val", "test", "ppl", "kgas"),
        words=("alone", "minted"),
        drop=("kgas", "ppl", "val"),
        console=out,
    )
    verdict = "[green]improved[/]" if report.improved else "[red]did not improve[/]"
    out.print(
        f"global test loss {report.initial_loss:.4f} -> {report.final_loss:.4f} "
        f"(perplexity {math.exp(report.initial_loss):.2f} -> {math.exp(report.final_loss):.2f}): {verdict}; "
        f"wall time {report.wall_s:.0f} s"
    )
