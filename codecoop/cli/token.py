"""``codecoop token``: balances and voting power, reward history, claims."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from codecoop.chain.units import to_tokens
from codecoop.cli import console
from codecoop.cli._context import Federation, federation_command
from codecoop.cli._output import print_table

app = typer.Typer(help="Contribution tokens: balance, history, claims.", no_args_is_help=True)


def _who(address: Optional[str], fed: Federation) -> str:
    return address or fed.signer.address


@app.command()
@federation_command(signs=True)
def balance(
    fed: Federation,
    address: Optional[str] = typer.Argument(None, help="Account (default: the keystore's)."),
) -> None:
    """Balance, voting power, delegate, and what the account received this epoch against its cap."""
    d = fed.deployment
    who = _who(address, fed)
    t, sym = d.token, d.params.token_symbol
    epoch = t.current_epoch()
    _, member_cap = t.caps()
    console.print(
        f"{who}: {to_tokens(t.balance_of(who)):,.4f} {sym}, voting power {to_tokens(t.votes(who)):,.4f}, delegate {t.delegates(who)}"
    )
    console.print(
        f"epoch {epoch}: received {to_tokens(t.member_minted(epoch, who)):,.4f} of the {to_tokens(member_cap):,.2f} {sym} member cap"
    )


@app.command()
@federation_command(signs=True)
def history(
    fed: Federation,
    address: Optional[str] = typer.Argument(None, help="Account (default: the keystore's)."),
) -> None:
    """Every mint to the account with its cause (round or welcome grant) and any cap cut, from the chain."""
    from codecoop.token.ledger import Ledger, welcome_ref

    d = fed.deployment
    who = _who(address, fed)
    ledger = Ledger.from_deployment(d)
    table = Table(title=f"mints to {who}")
    for col in ("block", "epoch", "cause", "asked", "minted"):
        table.add_column(col, justify="right" if col in ("asked", "minted") else "left")
    mints = [m for m in ledger.mints if m.member == who]
    for m in mints:
        cause = "welcome grant" if m.ref == welcome_ref(who) else f"round {m.round_id()}"
        table.add_row(str(m.block), str(m.epoch), cause, f"{to_tokens(m.requested):,.4f}", f"{to_tokens(m.minted):,.4f}")
    print_table(table, figures=("block", "epoch", "asked", "minted"))
    console.print(f"{len(mints)} mint(s), {to_tokens(sum(m.minted for m in mints)):,.4f} {d.params.token_symbol} in all")


@app.command()
@federation_command(signs=True)
def claim(
    fed: Federation,
    round_id: Optional[int] = typer.Option(None, "--round", help="One round (default: every finalized round with something owed)."),
) -> None:
    """Claim your rewards of finalized rounds; the mirror predicts each amount before the chain mints it."""
    from codecoop.token import claim_amount

    d = fed.deployment
    account = fed.signer
    rounds = [round_id] if round_id is not None else range(1, d.rounds.current_round() + 1)
    total = claimed = 0
    for r in rounds:
        owed = d.rounds.entitlement(r, account.address)
        if not owed:
            continue
        info = d.rounds.round(r)
        result = d.rounds.claim(account, r)
        cut = "" if result.minted == claim_amount(owed, info.requested, info.granted) else " (cut to your epoch cap)"
        console.print(f"round {r}: owed {to_tokens(owed):,.4f}, minted {to_tokens(result.minted):,.4f}{cut}")
        total += result.minted
        claimed += 1
    console.print(f"claimed {claimed} round(s): {to_tokens(total):,.4f} {d.params.token_symbol}" if claimed else "nothing to claim")
