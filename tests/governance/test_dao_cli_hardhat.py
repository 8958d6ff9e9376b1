"""The governance flows through ``codecoop dao`` against a real hardhat node over JSON-RPC."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from codecoop.audit.run import audit_deployment
from codecoop.chain import connect
from codecoop.chain.clients import MemberStatus
from codecoop.chain.devtools import DevFederation
from codecoop.chain.hardhat import HardhatNode

from .conftest import PARAMS
from .flows import PASSWORD, PASSWORD_ENV, Cli, parameter_change_flow

pytestmark = [
    pytest.mark.daemon,
    pytest.mark.skipif(shutil.which("npx") is None, reason="needs Node.js for the hardhat node"),
]


@pytest.fixture(scope="module")
def hardhat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A hardhat node on a free port (its config is hardhat.config.js at the repository root).

    ``HardhatNode`` stops the whole process group: terminating ``npx`` alone left the hardhat node
    it started running, and a later run on the same fixed port talked to that stale node.
    """
    with HardhatNode(log_path=tmp_path_factory.mktemp("hardhat-cli-node") / "node.log") as node:
        connect(node.url, timeout=60.0)
        yield node.url


@pytest.fixture(scope="module")
def cli(hardhat: str, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    fed = DevFederation.create(3, PARAMS, chain=connect(hardhat))
    return Cli.setup(fed, tmp_path_factory.mktemp("hardhat-cli"), hardhat)


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


def test_a_parameter_change_passes_through_the_cli_on_hardhat(cli):
    parameter_change_flow(cli)


def test_a_member_is_suspended_through_the_cli_on_hardhat_and_the_ledger_audits_clean(cli):
    target = cli.fed.members[2].address
    assert cli.run("dao", "propose", "suspend", target, member=0) == 0
    cli.pass_last(voters=[0, 1])
    assert cli.fed.deployment.members.status(target) is MemberStatus.SUSPENDED
    report = audit_deployment(cli.fed.deployment)
    assert report.clean and report.summary["proposals"] >= 1
    assert Path(cli.deployment).is_file()
