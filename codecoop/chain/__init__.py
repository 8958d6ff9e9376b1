"""The chain layer: compile, deploy, typed clients, event reads; embedded eth-tester or JSON-RPC.

Names are imported lazily so that ``import codecoop.chain`` does not load web3 until it is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from codecoop.lazy import lazy_attributes

__all__ = [
    "connect",
    "Chain",
    "EmbeddedChain",
    "RpcChain",
    "TxResult",
    "EMBEDDED",
    "deploy",
    "Deployment",
    "DeploymentRecord",
    "FederationParams",
    "TOKEN_UNIT",
    "TOKEN_DECIMALS",
    "to_tokens",
    "to_wei",
    "format_tokens",
    "compile_contracts",
    "cid_to_bytes",
    "cid_from_bytes",
    "Ballot",
    "UpdateDisclosure",
    "Phase",
    "MemberStatus",
    "ProposalState",
    "reverts",
]

_WHERE = {
    "connect": "backend",
    "Chain": "backend",
    "EmbeddedChain": "backends.embedded",
    "RpcChain": "backends.rpc",
    "TxResult": "backend",
    "EMBEDDED": "backend",
    "deploy": "deployment",
    "Deployment": "deployment",
    "DeploymentRecord": "deployment",
    "FederationParams": "params",
    "TOKEN_UNIT": "units",
    "TOKEN_DECIMALS": "units",
    "to_tokens": "units",
    "to_wei": "units",
    "format_tokens": "units",
    "compile_contracts": "compile",
    "cid_to_bytes": "cid",
    "cid_from_bytes": "cid",
    "Ballot": "clients",
    "UpdateDisclosure": "clients",
    "Phase": "clients",
    "MemberStatus": "clients",
    "ProposalState": "clients",
}


_lazy = lazy_attributes(__name__, _WHERE)


def __getattr__(name: str) -> Any:
    if name == "reverts":
        return importlib.import_module("codecoop.chain.reverts")
    return _lazy(name)
