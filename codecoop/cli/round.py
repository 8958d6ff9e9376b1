"""``codecoop round``: inspect a round, open the next one, finalize one whose reveal window passed."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from codecoop.chain.units import format_tokens
from codecoop.cli import console
from codecoop.errors import ConfigError

app = typer.Typer(help="Inspect, open and finalize rounds.", no_args_is_help=True)

CONFIG = typer.Option(Path("node.toml"), "--config", "-c", help="Node configuration: chain, deployment and the key that signs.")
SET = typer.Option([], "--set", help="Override a configuration value: section.key=value (repeatable).")


def _deployment(config: Path, overrides: list[str]):
    from codecoop.node.config import load_config
    from codecoop.node.runtime import open_deployment

    cfg = load_config(config, overrides)
    return cfg, open_deployment(cfg)


def _account(cfg):
    from codecoop.keys import load_keystore

    return load_keystore(cfg.path("keystore.path"), cfg.password())


@app.command()
def status(
    config: Path = CONFIG,
    overrides: list[str] = SET,
    round_id: int = typer.Option(0, "--round", help="Round id (0: the current round)."),
) -> None:
    """Show a round's phase, windows, updates with their tallies, and its outcome.

    Example:

      codecoop round status --config node.toml --round 3
    """
    _, d = _deployment(config, overrides)
    r = round_id or d.rounds.current_round()
    if r == 0:
        console.print("no round has been opened yet")
        return
    info = d.rounds.round(r)
    head = d.chain.block_number
    table = Table(title=f"round {r}: {info.phase.name.lower()} (block {head})", show_header=False)
    table.add_row("windows (end blocks)", f"submit {info.submit_end}, commit {info.commit_end}, reveal {info.reveal_end}"
                  + (f", confirm {info.confirm_end}" if info.confirm_end else ""))
    table.add_row("base", info.base_cid or "version 0 (initial adapter)")
    table.add_row("updates / revealed voters", f"{info.update_count} / {info.revealed_count}")
    table.add_row("accepted", ", ".join(map(str, info.accepted_ids)) or "-")
    table.add_row("global model", info.global_cid or "-")
    table.add_row("rewards", f"requested {format_tokens(info.requested)}, granted {format_tokens(info.granted)}")
    console.print(table)
    if info.update_count:
        ut = Table(title="updates")
        for col in ("id", "submitter", "cid", "approvals", "rejections", "mean approved delta (nats)"):
            ut.add_column(col)
        for u in d.rounds.updates(r):
            mean = u.approved_delta_sum / u.approvals / 1e6 if u.approvals else 0.0
            ut.add_row(str(u.update_id), u.submitter, u.cid[:24] + "...", str(u.approvals), str(u.rejections), f"{mean:.4f}")
        console.print(ut)


@app.command("open")
def open_(config: Path = CONFIG, overrides: list[str] = SET) -> None:
    """Open the next round (the previous one must be completed or past its confirm window).

    Example:

      codecoop round open --config node.toml
    """
    cfg, d = _deployment(config, overrides)
    r = d.rounds.open_round(_account(cfg))
    info = d.rounds.round(r)
    console.print(f"opened round {r}: submit until block {info.submit_end}, commit until {info.commit_end}, reveal until {info.reveal_end}")


@app.command()
def finalize(
    config: Path = CONFIG,
    overrides: list[str] = SET,
    round_id: int = typer.Option(0, "--round", help="Round id (0: the current round)."),
) -> None:
    """Decide a round's updates once its reveal window has passed (anyone may call this).

    Example:

      codecoop round finalize --config node.toml
    """
    cfg, d = _deployment(config, overrides)
    r = round_id or d.rounds.current_round()
    if r == 0:
        raise ConfigError("no round has been opened yet")
    result = d.rounds.finalize(_account(cfg), r)
    console.print(f"round {r} finalized: accepted {list(result.accepted_ids) or 'nothing'}; "
                  f"rewards requested {format_tokens(result.requested)}, granted {format_tokens(result.granted)}")
