"""Any Ethereum JSON-RPC endpoint: a public chain, or a dev node (hardhat, anvil) with its dev calls."""

from __future__ import annotations

import time
from typing import Any

from web3 import Web3

from codecoop.chain.backend import GAS_MARGIN, Chain, _call_fields
from codecoop.errors import ChainError
from codecoop.settings.checks import chain_url

__all__ = ["RpcChain"]


class RpcChain(Chain):
    """A chain behind a JSON-RPC URL; mining, time travel and snapshots use the dev nodes' RPC calls."""

    @classmethod
    def open(cls, url: str, *, timeout: float = 120.0) -> RpcChain:
        """Connect to ``url``, waiting up to 10 s for it to answer.

        Raises
        ------
        ChainError
            When ``url`` is no http(s) URL or nothing answers there in time.
        """
        if (problem := chain_url(url)) is not None:
            raise ChainError(f"chain URL {url!r} {problem}")
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": min(timeout, 30.0)}))
        deadline = time.monotonic() + min(timeout, 10.0)
        while True:
            try:
                _ = w3.eth.chain_id  # the first call that needs the node
                break
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise ChainError(
                        f"no Ethereum JSON-RPC node answers at {url} ({exc}); start one (scripts/devnet.sh) or fix the URL"
                    ) from None
                time.sleep(0.25)
        return cls(w3, url=url, timeout=timeout)

    def is_dev(self) -> bool:
        try:
            return bool(self.w3.eth.accounts)
        except Exception:
            return False

    def _mine(self, blocks: int) -> None:
        self._dev_rpc("hardhat_mine", [hex(blocks)])

    def time_travel(self, seconds: int) -> None:
        self._dev_rpc("evm_increaseTime", [seconds])
        self._dev_rpc("evm_mine", [])

    def snapshot(self) -> Any:
        return self._dev_rpc("evm_snapshot", [])

    def revert_to(self, snapshot: Any) -> None:
        self._dev_rpc("evm_revert", [snapshot])

    def _gas_for(self, tx: dict[str, Any]) -> int:
        estimate = self._guard(lambda: self.w3.eth.estimate_gas(_call_fields(tx)))
        limit = self.w3.eth.get_block("latest")["gasLimit"]
        return min(int(estimate * GAS_MARGIN) + 10_000, limit)

    def _dev_rpc(self, method: str, params: list) -> Any:
        response = self.w3.provider.make_request(method, params)
        if "error" in response:
            raise ChainError(f"{self.url} does not support {method} (a dev-chain call): {response['error']}")
        return response.get("result")
