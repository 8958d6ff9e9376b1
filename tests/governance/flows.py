"""Governance flows driven through the ``codecoop`` command line, shared by the eth-tester and hardhat tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account

from codecoop.chain.clients import ProposalState
from codecoop.chain.devtools import DevFederation
from codecoop.cli import main
from codecoop.token.ledger import Ledger

PASSWORD_ENV = "CODECOOP_TEST_PW"
PASSWORD = "correct horse battery"


@dataclass
class Cli:
    """Runs ``codecoop`` commands against one deployment, signing with the members' keystores."""

    fed: DevFederation
    deployment: Path
    keystores: list[Path]
    chain_url: str

    @classmethod
    def setup(cls, fed: DevFederation, folder: Path, chain_url: str) -> Cli:
        folder.mkdir(parents=True, exist_ok=True)
        keystores = []
        for i, member in enumerate(fed.members):
            path = folder / f"member{i}.json"
            if not path.exists():
                # a cheap KDF: the CLI decrypts a keystore on every signing command
                path.write_text(json.dumps(Account.encrypt(member.key, PASSWORD, kdf="pbkdf2", iterations=1_000)))
            keystores.append(path)
        return cls(fed, fed.deployment.save(folder / "deployment.json"), keystores, chain_url)

    def run(self, *args: str, member: int | None = None) -> int:
        argv = [*args, "--chain", self.chain_url, "--deployment", str(self.deployment)]
        if member is not None:
            argv += ["--keystore", str(self.keystores[member]), "--password-env", PASSWORD_ENV]
        return main(argv)

    def last_proposal(self) -> int:
        return max(Ledger.from_deployment(self.fed.deployment).proposals.items(), key=lambda kv: kv[1].block)[0]

    def pass_last(self, voters: list[int]) -> int:
        """Vote for the latest proposal with ``voters`` through the CLI, then queue and execute it."""
        gov, chain = self.fed.deployment.governor, self.fed.chain
        pid = self.last_proposal()
        chain.mine_to(gov.snapshot(pid) + 1)
        for i in voters:
            assert self.run("dao", "vote", str(pid), "for", "--reason", "looks right", member=i) == 0
        chain.mine_to(gov.deadline(pid) + 1)
        assert gov.state(pid) is ProposalState.SUCCEEDED
        assert self.run("dao", "queue", str(pid), member=0) == 0
        chain.time_travel(self.fed.deployment.params.timelock_delay + 1)
        assert self.run("dao", "execute", str(pid), member=0) == 0
        assert gov.state(pid) is ProposalState.EXECUTED
        return pid


def parameter_change_flow(cli: Cli) -> None:
    """Propose a quorum and strategy change, vote, queue and execute, all through the CLI."""
    assert cli.run("dao", "propose", "param", "quorum=7500", "aggregation-strategy=fedmedian", member=1) == 0
    cli.pass_last(voters=[0, 1])
    rounds = cli.fed.deployment.rounds
    assert rounds.params().quorum_bps == 7500
    assert rounds.aggregation_strategy() == "fedmedian"
