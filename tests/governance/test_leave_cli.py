"""``codecoop node leave``: a member ends its own membership, keeping what it earned; ``node status`` shows it."""

from __future__ import annotations

from pathlib import Path

from codecoop.chain.clients import MemberStatus
from codecoop.cli import main
from codecoop.node.config import render_template
from tests.chain.test_rounds import open_with_updates, vote_all

from .flows import PASSWORD_ENV, Cli


def _config(cli: Cli, member: int, folder: Path) -> Path:
    path = folder / "node.toml"
    path.write_text(
        render_template(
            config_name="node.toml",
            chain=cli.chain_url,
            deployment=str(cli.deployment),
            store="embedded",
            listen="/ip4/127.0.0.1/tcp/4001",
            keystore=str(cli.keystores[member]),
            password_line=f'password_env = "{PASSWORD_ENV}"',
            code='"src"',
            folder="data",
            model="tiny",
        )  # fmt: skip
    )
    return path


def test_leave_claims_what_is_owed_then_ends_the_membership_and_cannot_be_done_twice(cli, tmp_path, capsys):
    d, me = cli.fed.deployment, cli.fed.members[3]
    r, _ = open_with_updates(cli.fed)
    vote_all(cli.fed, r, lambda voter, update: (True, 1000))
    d.rounds.finalize(cli.fed.members[0], r)
    owed = d.rounds.entitlement(r, me.address)
    balance = d.token.balance_of(me.address)
    cli.fed.chain.mine_to(d.rounds.round(r).confirm_end + 1)  # unconfirmed, the round ends; its rewards stand
    r2, _ = open_with_updates(cli.fed, submitters=(3,))  # a round under way, with this member's update in it
    config = _config(cli, 3, tmp_path)
    capsys.readouterr()
    assert main(["node", "leave", "--config", str(config), "--yes"]) == 0
    out = capsys.readouterr().out
    assert d.members.status(me.address) is MemberStatus.LEFT
    assert d.token.balance_of(me.address) == balance + owed and d.rounds.entitlement(r, me.address) == 0
    assert f"round {r}: claimed" in out and f"stays in round {r2}" in out and "left the federation at block" in out
    assert main(["node", "status", "--config", str(config)]) == 0
    assert "left" in capsys.readouterr().out
    assert main(["node", "leave", "--config", str(config), "--yes"]) == 1
    assert "left this federation already: there is no membership to leave" in " ".join(capsys.readouterr().err.split())


def test_leave_asks_first_and_does_nothing_when_the_answer_is_no(cli, tmp_path, monkeypatch, capsys):
    import typer

    me = cli.fed.members[2]
    monkeypatch.setattr(typer, "confirm", lambda *a, **kw: False)
    assert main(["node", "leave", "--config", str(_config(cli, 2, tmp_path))]) == 1
    assert cli.fed.deployment.members.status(me.address) is MemberStatus.ACTIVE
