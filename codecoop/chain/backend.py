"""Chain backends: the embedded eth-tester chain (default) or any Ethereum JSON-RPC endpoint.

Everything above this module uses :class:`Chain` and never knows which backend it has. Transactions
are always signed locally (nodes hold their keys in encrypted keystores) and sent raw; a revert
becomes the typed exception of its custom error.
"""

from __future__ import annotations

import ast
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError, TimeExhausted

from codecoop.chain.reverts import RevertDecoder
from codecoop.errors import ChainError, ContractMissing
from codecoop.settings.checks import chain_url

__all__ = ["Chain", "TxResult", "connect", "EMBEDDED"]

EMBEDDED = "embedded"
#: Gas headroom over the estimate: calls into other contracts may need more than the estimate (EIP-150).
GAS_MARGIN = 1.25
#: Gas limit of every transaction on the embedded chain (below its block gas limit; unused gas is refunded).
EMBEDDED_GAS = 12_000_000


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction."""

    tx_hash: str
    block: int
    gas_used: int
    receipt: Any


class Chain:
    """A connection to one chain, with helpers for dev chains (funding, mining, time travel).

    ``preflight`` (embedded chain only): run every transaction as a call first, so a revert raises
    before anything is mined. A builder of synthetic histories that knows its transactions succeed
    may turn it off to halve the EVM work; a revert is then still raised, from the mined receipt.
    """

    def __init__(self, w3: Web3, *, url: str, tester: Any = None, timeout: float = 120.0):
        self.w3 = w3
        self.url = url
        self.tester = tester
        self.timeout = timeout
        self.preflight = True
        self.decoder = RevertDecoder([])
        self._chain_id: int | None = None

    # ------------------------------------------------------------------ facts
    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self.w3.eth.chain_id
        return self._chain_id

    @property
    def block_number(self) -> int:
        return self.w3.eth.block_number

    @property
    def embedded(self) -> bool:
        return self.tester is not None

    def is_dev(self) -> bool:
        """Whether this chain has unlocked, funded dev accounts (eth-tester, hardhat, anvil)."""
        if self.tester is not None:
            return True
        try:
            return bool(self.w3.eth.accounts)
        except Exception:
            return False

    # ------------------------------------------------------------------ dev-chain helpers
    def fund(self, address: str, ether: float = 100.0) -> None:
        """Send ``ether`` to ``address`` from the first dev account."""
        if not self.is_dev():
            raise ChainError(f"cannot fund {address}: {self.url} has no dev accounts; send it ETH yourself")
        tx = self.w3.eth.send_transaction(
            {"from": self.w3.eth.accounts[0], "to": address, "value": Web3.to_wei(ether, "ether")}
        )
        self.w3.eth.wait_for_transaction_receipt(tx, timeout=self.timeout)

    def new_account(self, ether: float = 100.0) -> LocalAccount:
        """A fresh key, funded on dev chains (tests and simulations)."""
        account = Account.create()
        if ether:
            self.fund(account.address, ether)
        return account

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks (dev chains)."""
        if blocks <= 0:
            return
        if self.tester is not None:
            self.tester.mine_blocks(blocks)
        else:
            self._dev_rpc("hardhat_mine", [hex(blocks)])

    def mine_to(self, block: int) -> None:
        """Mine until the chain's head is ``block``."""
        self.mine(block - self.block_number)

    def time_travel(self, seconds: int) -> None:
        """Move the chain's clock forward and mine a block (dev chains)."""
        if self.tester is not None:
            now = self.w3.eth.get_block("latest")["timestamp"]
            self.tester.time_travel(now + seconds)
        else:
            self._dev_rpc("evm_increaseTime", [seconds])
            self._dev_rpc("evm_mine", [])

    def snapshot(self) -> Any:
        return self.tester.take_snapshot() if self.tester is not None else self._dev_rpc("evm_snapshot", [])

    def revert_to(self, snapshot: Any) -> None:
        if self.tester is not None:
            self.tester.revert_to_snapshot(snapshot)
        else:
            self._dev_rpc("evm_revert", [snapshot])

    def _dev_rpc(self, method: str, params: list) -> Any:
        response = self.w3.provider.make_request(method, params)
        if "error" in response:
            raise ChainError(f"{self.url} does not support {method} (a dev-chain call): {response['error']}")
        return response.get("result")

    # ------------------------------------------------------------------ transactions
    def transact(self, fn: Any, account: LocalAccount, *, gas: int | None = None, value: int = 0) -> TxResult:
        """Sign ``fn`` (a bound contract function or constructor) with ``account``, send it and wait.

        Raises
        ------
        ContractRevert
            (a subclass named after the custom error) when it reverts.
        ChainError
            When the chain cannot be reached or the receipt does not come in time.
        """
        params: dict[str, Any] = {
            "from": account.address,
            "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": self.chain_id,
            "value": value,
            "gas": gas or EMBEDDED_GAS,
        }
        tx = self._guard(lambda: fn.build_transaction(params))
        if gas is None:
            tx["gas"] = self._gas_for(tx)
        signed = account.sign_transaction(tx)
        tx_hash = self._guard(lambda: self.w3.eth.send_raw_transaction(signed.raw_transaction))
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.timeout)
        except TimeExhausted:
            raise ChainError(
                f"no receipt for {tx_hash.hex()} after {self.timeout:.0f} s from {self.url}; is the chain mining?"
            ) from None
        if receipt["status"] != 1:
            self._replay_failure(tx, receipt)
        return TxResult(tx_hash=tx_hash.hex(), block=receipt["blockNumber"], gas_used=receipt["gasUsed"], receipt=receipt)

    def call(self, fn: Any, *, block: int | str = "latest") -> Any:
        """Call a view function; reverts become typed exceptions."""
        return self._guard(lambda: fn.call(block_identifier=block))

    def _gas_for(self, tx: dict[str, Any]) -> int:
        """Gas limit for ``tx``; a revert surfaces here as its typed exception, before anything is sent.

        eth-tester estimates by binary search (a dozen executions); on the embedded chain one
        preflight call finds reverts and a generous fixed limit is used (unused gas is not charged).
        """
        call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        if self.tester is not None:
            if not self.preflight:
                return EMBEDDED_GAS
            # "pending": the next block, where the transaction will run (a window may close in between)
            self._guard(lambda: self.w3.eth.call({**call, "gas": EMBEDDED_GAS}, block_identifier="pending"))
            return EMBEDDED_GAS
        estimate = self._guard(lambda: self.w3.eth.estimate_gas(call))
        limit = self.w3.eth.get_block("latest")["gasLimit"]
        return min(int(estimate * GAS_MARGIN) + 10_000, limit)

    def _replay_failure(self, tx: dict, receipt: Any) -> None:
        call = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}
        if "from" not in call:
            call["from"] = receipt["from"]
        # replayed on the state of its own block, whose number (and so the round phase) it saw
        self._guard(lambda: self.w3.eth.call(call, block_identifier=receipt["blockNumber"]))
        raise self.decoder.decode(None, fallback=f"transaction {receipt['transactionHash'].hex()} failed")

    def _guard(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except ContractLogicError as exc:
            raise self.decoder.decode(exc.data, fallback=str(exc)) from None
        except (ConnectionError, OSError) as exc:
            raise ChainError(f"cannot reach the chain at {self.url}: {exc}; is the node running?") from None
        except BadFunctionCallOutput:
            # empty return data from a view: no code at the address (a reset dev chain, or another chain)
            raise ContractMissing(
                f"no contract answers at the deployment's address on {self.url}: the chain was reset (a hardhat node "
                "keeps its state in memory and loses it when it restarts) or this is another chain. Redeploy "
                "(`codecoop chain deploy`), give every node the new deployment record and a fresh data folder"
            ) from None
        except Exception as exc:
            data = _revert_data(exc)
            if data is not None:
                raise self.decoder.decode(data, fallback=str(exc)) from None
            raise


def _revert_data(exc: Exception) -> str | None:
    """Revert data hidden in a backend-specific exception (eth-tester, JSON-RPC errors)."""
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, dict):
            data = arg.get("data")
            if isinstance(data, dict):
                data = data.get("data")
            if isinstance(data, str) and data.startswith("0x"):
                return data
            # hardhat refuses a transaction that reverts when it is sent (automining): the data is in the message
            m = _HARDHAT_REVERT.search(str(arg.get("message", "")))
            if m:
                return m.group(1)
        if isinstance(arg, (bytes, bytearray)) and len(arg) >= 4:
            return "0x" + bytes(arg).hex()
        if isinstance(arg, str):
            # web3's eth-tester provider formats custom-error data as a bytes literal in the message
            m = _TESTER_REVERT.search(arg)
            if m:
                raw = ast.literal_eval(m.group(1))
                if isinstance(raw, bytes):
                    return "0x" + raw.hex()
            m = _HARDHAT_REVERT.search(arg)
            if m:
                return m.group(1)
    return None


_TESTER_REVERT = re.compile(r"execution reverted: (b(?:'.*'|\".*\"))\s*$", re.DOTALL)
_HARDHAT_REVERT = re.compile(r"reverted with an unrecognized custom error \(return data: (0x[0-9a-fA-F]{8,})\)")


def connect(url: str = EMBEDDED, *, timeout: float = 120.0) -> Chain:
    """Connect to ``"embedded"`` (a fresh in-process eth-tester chain) or a JSON-RPC URL.

    Raises
    ------
    ChainError
        When a JSON-RPC URL does not answer within ``timeout`` seconds.
    """
    if url == EMBEDDED:
        from eth_tester import EthereumTester, PyEVMBackend
        from web3 import EthereumTesterProvider

        tester = EthereumTester(PyEVMBackend())
        return Chain(Web3(EthereumTesterProvider(tester)), url=url, tester=tester, timeout=timeout)
    if (problem := chain_url(url)) is not None:
        raise ChainError(f"chain URL {url!r} {problem}")
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": min(timeout, 30.0)}))
    deadline = time.monotonic() + min(timeout, 10.0)
    while True:
        try:
            w3.eth.chain_id
            break
        except Exception as exc:
            if time.monotonic() > deadline:
                raise ChainError(f"no Ethereum JSON-RPC node answers at {url} ({exc}); start one (scripts/devnet.sh) or fix the URL") from None
            time.sleep(0.25)
    return Chain(w3, url=url, timeout=timeout)
