"""``codecoop round``: inspect a round, open the next one, finalize one whose reveal window passed."""

from __future__ import annotations

import typer
from rich.table import Table

from codecoop.chain.units import format_tokens
from codecoop.cli import console
from codecoop.cli._context import Federation, federation_command
from codecoop.cli._output import print_table
from codecoop.errors import ConfigError

app = typer.Typer(help="Inspect, open and finalize rounds.", no_args_is_help=True)

#: The round a command looks at or acts on.
ROUND = typer.Option(0, "--round", help="Round id (0: the current round).")


@app.command()
@federation_command(config=True)
def status(
    fed: Federation,
    round_id: int = ROUND,
) -> None:
    """Show a round's phase, windows, updates with their tallies, and its outcome.

    Example:

      codecoop round status --config node.toml --round 3
    """
    d = fed.deployment
    r = round_id or d.rounds.current_round()
    if r == 0:
        console.print("no round has been opened yet")
        return
    info = d.rounds.round(r)
    head = d.chain.block_number
    table = Table(title=f"round {r}: {info.phase.name.lower()} (block {head})", show_header=False)
    table.add_row(
        "windows (end blocks)",
        f"submit {info.submit_end}, disclose {info.disclose_end}, commit {info.commit_end}, reveal {info.reveal_end}"
        + (f", confirm {info.confirm_end}" if info.confirm_end else ""),
    )
    table.add_row("base", info.base_cid or "version 0 (initial adapter)")
    table.add_row("updates / revealed voters", f"{info.update_count} / {info.revealed_count}")
    table.add_row("accepted", ", ".join(map(str, info.accepted_ids)) or "-")
    table.add_row("global model", info.global_cid or "-")
    table.add_row("rewards", f"requested {format_tokens(info.requested)}, granted {format_tokens(info.granted)}")
    print_table(table)
    if info.update_count:
        ut = Table(title="updates")
        for col in ("id", "submitter", "cid", "approvals", "rejections", "mean approved delta (nats)"):
            ut.add_column(col)
        for u in d.rounds.updates(r):
            mean = u.approved_delta_sum / u.approvals / 1e6 if u.approvals else 0.0
            ut.add_row(str(u.update_id), u.submitter, u.cid[:24] + "...", str(u.approvals), str(u.rejections), f"{mean:.4f}")
        print_table(ut, figures=("id", "approvals", "rejections", "mean approved delta (nats)"))


@app.command("open")
@federation_command(config=True)
def open_(fed: Federation) -> None:
    """Open the next round (the previous one must be completed or past its confirm window).

    Example:

      codecoop round open --config node.toml
    """
    d = fed.deployment
    r = d.rounds.open_round(fed.signer)
    info = d.rounds.round(r)
    console.print(
        f"opened round {r}: submit until block {info.submit_end}, disclose until {info.disclose_end}, "
        f"commit until {info.commit_end}, reveal until {info.reveal_end}"
    )


@app.command()
@federation_command(config=True)
def finalize(
    fed: Federation,
    round_id: int = ROUND,
) -> None:
    """Decide a round's updates once its reveal window has passed (anyone may call this).

    Example:

      codecoop round finalize --config node.toml
    """
    d = fed.deployment
    r = round_id or d.rounds.current_round()
    if r == 0:
        raise ConfigError("no round has been opened yet")
    result = d.rounds.finalize(fed.signer, r)
    console.print(
        f"round {r} finalized: accepted {list(result.accepted_ids) or 'nothing'}; "
        f"rewards requested {format_tokens(result.requested)}, granted {format_tokens(result.granted)}"
    )
