"""``codecoop node``: run a participant node, or show where it stands."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from codecoop.chain.units import format_tokens
from codecoop.cli import console
from codecoop.cli._context import CONFIG, SET, Federation, federation_command
from codecoop.cli._output import print_table

app = typer.Typer(help="Run a participant node against a real chain and store, or show its status.", no_args_is_help=True)


def print_event(event) -> None:
    """One line per node event, for people watching a node or a simulation."""
    colour = {"warning": "yellow", "submitted": "green", "confirmed": "cyan", "claimed": "magenta", "skipped": "yellow", "ended": "red"}
    c = colour.get(event.kind, "white")
    where = f"r{event.round}" if event.round else "  "
    console.print(f"[dim]{where}[/] [bold]{event.node}[/] [{c}]{event.kind}[/]: {event.message}", highlight=False)


@app.command()
def run(
    config: Path = CONFIG,
    overrides: list[str] = SET,
    rounds: int = typer.Option(
        0, "--rounds", help="Exit once this many rounds are done, a round already under way at start included (0: run until Ctrl-C)."
    ),
) -> None:
    """Join the federation and take part in every round: train, publish, vote, finalize, aggregate, confirm, claim.

    Killed at any point and restarted, the node continues the same round without a second
    submission or vote (its journal is in data.folder).

    Examples:

      codecoop node run --config node.toml

      codecoop node run -c node.toml --set training.steps=20 --set node.open_rounds=true --rounds 1
    """
    from codecoop.chain import Phase
    from codecoop.node.config import load_config
    from codecoop.node.runtime import start_node

    cfg = load_config(config, overrides)
    live = start_node(cfg, on_event=print_event, log=lambda m: console.print(f"[dim]{m}[/]"))
    node = live.node
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    first = rounds_before(node.deployment.rounds)

    def done() -> bool:
        if stopping.is_set():
            return True
        if not rounds:
            return False
        r = node.deployment.rounds.current_round()
        if r - first < rounds:
            return False
        entry = node.journal.rounds.get(r)
        return node.deployment.rounds.phase(r) in (Phase.COMPLETED, Phase.FAILED) and entry is not None and entry.done

    console.print(f"node {node.address} running on {cfg['chain.url']} (store {cfg['store.api']}); Ctrl-C to stop")
    try:
        node.run(poll=float(cfg["node.poll_interval"]), stop=done)
    finally:
        live.close()
    console.print(f"stopped; journal at {node.journal.path}")


@app.command()
@federation_command(config=True)
def status(fed: Federation) -> None:
    """Show this node's membership, balance, the current round and what the journal holds.

    Example:

      codecoop node status --config node.toml
    """
    from codecoop.node.journal import Journal

    cfg = fed.config
    assert cfg is not None  # config=True: the decorator loaded it or stopped with its error
    d = fed.deployment
    me = fed.signer.address
    r = d.rounds.current_round()
    table = Table(title=f"node {me}", show_header=False)
    table.add_row("membership", d.members.status(me).name.lower())
    table.add_row("balance", f"{format_tokens(d.token.balance_of(me), d.params.token_symbol)} (votes {format_tokens(d.token.votes(me))})")
    table.add_row("current round", f"{r} ({d.rounds.phase(r).name.lower()})" if r else "none yet")
    if r:
        p = d.rounds.participation(r, me)
        table.add_row(
            "this round",
            f"update {p.own_update if p.own_update is not None else '-'}, committed {p.committed}, "
            f"revealed {p.revealed}, confirmed {p.confirmed}, claimed {p.claimed}",
        )
    journal_path = cfg.folder / "journal.json"
    if journal_path.exists():
        journal = Journal(journal_path, deployment=d.addresses["RoundManager"])
        for row in journal_rows(journal, float(cfg["training.dp_delta"])):
            table.add_row(*row)
    print_table(table)


@app.command()
@federation_command(config=True)
def leave(fed: Federation, yes: bool = typer.Option(False, "--yes", "-y", help="Leave without asking for confirmation.")) -> None:
    """Leave the federation for good: claim what this node is owed, then end its membership on the chain.

    The account then submits, votes and confirms in no round and is no longer counted among the
    active members; a running `codecoop node run` of it stops at its next look at the chain.
    Rewards of rounds still under way stay claimable later with `codecoop token claim`. An account
    that left cannot join again.

    Example:

      codecoop node leave --config node.toml
    """
    from codecoop.chain import MemberStatus, Phase
    from codecoop.errors import ConfigError

    d, me = fed.deployment, fed.signer
    status = d.members.status(me.address)
    if status not in (MemberStatus.PENDING, MemberStatus.ACTIVE, MemberStatus.SUSPENDED):
        was = {MemberStatus.LEFT: "left this federation already", MemberStatus.REMOVED: "was removed from this federation"}
        raise ConfigError(f"account {me.address} {was.get(status, 'never joined this federation')}: there is no membership to leave")
    r = d.rounds.current_round()
    under_way: list[str] = []
    if r and d.rounds.phase(r) not in (Phase.COMPLETED, Phase.FAILED):
        p = d.rounds.participation(r, me.address)
        if p.own_update is not None:
            under_way.append(f"your update #{p.own_update} stays in round {r}: the members who hold copies judge it")
        if p.committed and not p.revealed:
            under_way.append(f"your committed votes in round {r} will not be revealed, so they will not count")
    for line in under_way:
        console.print(f"[yellow]note[/]: {line}")
    if not yes and not typer.confirm(f"Leave the federation for good with account {me.address}? It cannot join again", default=False):
        raise typer.Exit(1)
    for claimed, result in d.rounds.claim_owed(me, range(1, r + 1)):
        console.print(f"round {claimed}: claimed {format_tokens(result.minted, d.params.token_symbol)}")
    tx = d.members.leave(me)
    console.print(
        f"left the federation at block {tx.block}; rewards of rounds still under way: `codecoop token claim` once they are finalized"
    )


def rounds_before(rounds: Any) -> int:
    """The last round ``--rounds`` does not count: the current one if it is over (or none was opened), else the one before.

    A round opened before the node got to read the chain (another member opens it as soon as this
    node's join is mined) is still one of the rounds it takes part in.
    """
    from codecoop.chain import Phase

    r = rounds.current_round()
    if r == 0 or rounds.phase(r) in (Phase.COMPLETED, Phase.FAILED):
        return r
    return r - 1


def journal_rows(journal: Any, delta: float, last: int = 5) -> list[tuple[str, str]]:
    """``node status`` rows for the journal: its last rounds, and the privacy spent if any update was private."""
    rows = []
    for rid, e in sorted(journal.rounds.items())[-last:]:
        state = "skipped" if e.skipped else ("submitted " + e.trained_cid[:16] + "..." if e.trained_cid else "no update")
        rows.append(
            (
                f"journal round {rid}",
                f"{state}; ballot {'kept' if e.ballot else '-'}; "
                f"aggregate {e.aggregate_cid[:16] + '...' if e.aggregate_cid else '-'}; done {e.done}",
            )
        )
    spent = journal.privacy_spent(delta)
    if spent is not None:
        rows.append(("privacy spent", f"epsilon {spent[0]:.2f} at delta {delta:g} over {spent[1]} released update(s)"))
    if journal.network:
        from codecoop.node.transport import FetchCounters

        rows.append(("network", FetchCounters.from_json(journal.network).summary()))
    return rows
