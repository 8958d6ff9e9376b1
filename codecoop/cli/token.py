"""``codecoop token``: balances and voting power, reward history, claims."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from codecoop.cli import console
from codecoop.cli._context import CHAIN, DEPLOYMENT, KEYSTORE, PASSWORD_ENV, PASSWORD_FILE

app = typer.Typer(help="Contribution tokens: balance, history, claims.", no_args_is_help=True)


def _who(address: Optional[str], keystore: Optional[Path], password_env, password_file) -> str:
    from codecoop.cli._context import signer

    return address or signer(keystore, password_env, password_file).address


@app.command()
def balance(
    address: Optional[str] = typer.Argument(None, help="Account (default: the keystore's)."),
    chain_url: str = CHAIN,
    deployment_file: Path = DEPLOYMENT,
    keystore: Optional[Path] = KEYSTORE,
    password_env: Optional[str] = PASSWORD_ENV,
    password_file: Optional[Path] = PASSWORD_FILE,
) -> None:
    """Balance, voting power, delegate, and what the account received this epoch against its cap."""
    from codecoop.cli._context import open_deployment

    d = open_deployment(chain_url, deployment_file)
    who = _who(address, keystore, password_env, password_file)
    t, sym = d.token, d.params.token_symbol
    epoch = t.current_epoch()
    _, member_cap = t.caps()
    console.print(f"{who}: {t.balance_of(who) / 1e18:,.4f} {sym}, voting power {t.votes(who) / 1e18:,.4f}, delegate {t.delegates(who)}")
    console.print(f"epoch {epoch}: received {t.member_minted(epoch, who) / 1e18:,.4f} of the {member_cap / 1e18:,.2f} {sym} member cap")


@app.command()
def history(
    address: Optional[str] = typer.Argument(None, help="Account (default: the keystore's)."),
    chain_url: str = CHAIN,
    deployment_file: Path = DEPLOYMENT,
    keystore: Optional[Path] = KEYSTORE,
    password_env: Optional[str] = PASSWORD_ENV,
    password_file: Optional[Path] = PASSWORD_FILE,
) -> None:
    """Every mint to the account with its cause (round or welcome grant) and any cap cut, from the chain."""
    from codecoop.cli._context import open_deployment
    from codecoop.token.ledger import Ledger, welcome_ref

    d = open_deployment(chain_url, deployment_file)
    who = _who(address, keystore, password_env, password_file)
    ledger = Ledger.from_deployment(d)
    table = Table(title=f"mints to {who}")
    for col in ("block", "epoch", "cause", "asked", "minted"):
        table.add_column(col, justify="right" if col in ("asked", "minted") else "left")
    mints = [m for m in ledger.mints if m.member == who]
    for m in mints:
        cause = "welcome grant" if m.ref == welcome_ref(who) else f"round {m.round_id()}"
        table.add_row(str(m.block), str(m.epoch), cause, f"{m.requested / 1e18:,.4f}", f"{m.minted / 1e18:,.4f}")
    console.print(table)
    console.print(f"{len(mints)} mint(s), {sum(m.minted for m in mints) / 1e18:,.4f} {d.params.token_symbol} in all")


@app.command()
def claim(
    round_id: Optional[int] = typer.Option(None, "--round", help="One round (default: every finalized round with something owed)."),
    chain_url: str = CHAIN,
    deployment_file: Path = DEPLOYMENT,
    keystore: Optional[Path] = KEYSTORE,
    password_env: Optional[str] = PASSWORD_ENV,
    password_file: Optional[Path] = PASSWORD_FILE,
) -> None:
    """Claim your rewards of finalized rounds; the mirror predicts each amount before the chain mints it."""
    from codecoop.cli._context import open_deployment, signer
    from codecoop.token import claim_amount

    d = open_deployment(chain_url, deployment_file)
    account = signer(keystore, password_env, password_file)
    rounds = [round_id] if round_id is not None else range(1, d.rounds.current_round() + 1)
    total = claimed = 0
    for r in rounds:
        owed = d.rounds.entitlement(r, account.address)
        if not owed:
            continue
        info = d.rounds.round(r)
        result = d.rounds.claim(account, r)
        cut = "" if result.minted == claim_amount(owed, info.requested, info.granted) else " (cut to your epoch cap)"
        console.print(f"round {r}: owed {owed / 1e18:,.4f}, minted {result.minted / 1e18:,.4f}{cut}")
        total += result.minted
        claimed += 1
    console.print(f"claimed {claimed} round(s): {total / 1e18:,.4f} {d.params.token_symbol}" if claimed else "nothing to claim")
