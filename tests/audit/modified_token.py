"""Compile the test-only ``UncappedToken`` with the suite's own compiler launcher and settings, and
deploy a federation whose token is that contract (everything else as ``codecoop.chain.deploy`` does)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from codecoop.chain import deployment as deployment_module
from codecoop.chain.compile import SETTINGS, Artifact, compile_contracts, node_modules, solc_launcher
from codecoop.chain.devtools import DevFederation
from codecoop.chain.params import FederationParams

SOURCE = Path(__file__).parent / "contracts" / "UncappedToken.sol"


@cache
def uncapped_token() -> Artifact:
    """The compiled ``UncappedToken`` (imports ``contracts/ContributionToken.sol`` from the checkout)."""
    import solcx

    root = node_modules().parent
    request = {
        "language": "Solidity",
        "sources": {"tests/UncappedToken.sol": {"content": SOURCE.read_text()}},
        "settings": SETTINGS,
    }
    out = solcx.compile_standard(request, solc_binary=solc_launcher(), base_path=str(root), allow_paths=[str(root)])
    c = out["contracts"]["tests/UncappedToken.sol"]["UncappedToken"]
    return Artifact("UncappedToken", c["abi"], "0x" + c["evm"]["bytecode"]["object"], len(c["evm"]["deployedBytecode"]["object"]) // 2)


def federation_with_uncapped_token(monkeypatch: pytest.MonkeyPatch, n: int, params: FederationParams) -> DevFederation:
    """``DevFederation.create`` with ``UncappedToken`` deployed as the federation's ContributionToken."""
    artifacts = {**compile_contracts(), "ContributionToken": uncapped_token()}
    monkeypatch.setattr(deployment_module, "compile_contracts", lambda: artifacts)
    return DevFederation.create(n, params)
