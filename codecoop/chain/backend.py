"""The chain interface: :class:`Chain`, implemented by one module per backend in :mod:`codecoop.chain.backends`.

Everything above this module uses :class:`Chain` and never knows which backend it has (embedded
eth-tester or JSON-RPC). Transactions are always signed locally (nodes hold their keys in encrypted
keystores) and sent raw; a revert becomes the typed exception of its custom error.
"""

from __future__ import annotations

import ast
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from eth_utils import to_checksum_address as _checksum
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError, TimeExhausted

from codecoop.chain.reverts import RevertDecoder
from codecoop.errors import ChainError, ContractMissing
from codecoop.settings.checks import EMBEDDED

__all__ = ["EMBEDDED", "Chain", "RawLog", "TxResult", "connect"]

#: Gas headroom over the estimate: calls into other contracts may need more than the estimate (EIP-150).
GAS_MARGIN = 1.25
#: Gas limit of every transaction on the embedded chain (below its block gas limit; unused gas is refunded).
EMBEDDED_GAS = 12_000_000
#: Blocks per ``eth_getLogs`` request (public nodes refuse much larger ranges).
RPC_RANGE = 5_000


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction."""

    tx_hash: str
    block: int
    gas_used: int
    receipt: Any


@dataclass(frozen=True)
class RawLog:
    """One log as the chain stores it, with its position (block, transaction, log index)."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block: int
    tx_index: int
    log_index: int
    tx_hash: str


@lru_cache(maxsize=4096)
def to_checksum_address(address: str | bytes) -> str:
    """Checksum form of an address; cached because a federation has few addresses and each costs a keccak."""
    return _checksum(address)


class Chain(ABC):
    """A connection to one chain: signed transactions, calls, log reads and dev-chain helpers.

    Two backends implement it, one module each: :class:`~codecoop.chain.backends.embedded.EmbeddedChain`
    (an in-process eth-tester chain) and :class:`~codecoop.chain.backends.rpc.RpcChain` (any Ethereum
    JSON-RPC endpoint). A backend supplies what differs: dev accounts, mining, the clock, snapshots,
    the gas limit of a transaction and the fastest way to read logs; everything else lives here.
    """

    #: Whether the chain lives inside this process (and ends with it).
    embedded: bool = False

    def __init__(self, w3: Web3, *, url: str, timeout: float = 120.0):
        self.w3 = w3
        self.url = url
        self.timeout = timeout
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

    @abstractmethod
    def is_dev(self) -> bool:
        """Whether this chain has unlocked, funded dev accounts (eth-tester, hardhat, anvil)."""

    # ------------------------------------------------------------------ dev-chain helpers
    def fund(self, address: str, ether: float = 100.0) -> None:
        """Send ``ether`` to ``address`` from the first dev account."""
        if not self.is_dev():
            raise ChainError(f"cannot fund {address}: {self.url} has no dev accounts; send it ETH yourself")
        tx = self.w3.eth.send_transaction({"from": self.w3.eth.accounts[0], "to": address, "value": Web3.to_wei(ether, "ether")})
        self.w3.eth.wait_for_transaction_receipt(tx, timeout=self.timeout)

    def new_account(self, ether: float = 100.0) -> LocalAccount:
        """A fresh key, funded on dev chains (tests and simulations)."""
        account = Account.create()
        if ether:
            self.fund(account.address, ether)
        return account

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks (dev chains)."""
        if blocks > 0:
            self._mine(blocks)

    def mine_to(self, block: int) -> None:
        """Mine until the chain's head is ``block``."""
        self.mine(block - self.block_number)

    @abstractmethod
    def _mine(self, blocks: int) -> None:
        """Mine ``blocks`` (at least one) empty blocks."""

    @abstractmethod
    def time_travel(self, seconds: int) -> None:
        """Move the chain's clock forward and mine a block (dev chains)."""

    @abstractmethod
    def snapshot(self) -> Any:
        """An id of the chain's current state, for :meth:`revert_to` (dev chains)."""

    @abstractmethod
    def revert_to(self, snapshot: Any) -> None:
        """Return the chain to the state of ``snapshot`` (dev chains)."""

    # ------------------------------------------------------------------ logs
    def read_logs(self, addresses: Iterable[str], first: int, last: int) -> list[RawLog]:
        """Every log of ``addresses`` in blocks ``[first, last]``, in chain order, by ``eth_getLogs`` in ranges."""
        wanted = sorted({to_checksum_address(a) for a in addresses})
        out: list[RawLog] = []
        for start in range(first, last + 1, RPC_RANGE):
            end = min(start + RPC_RANGE - 1, last)
            for log in self.w3.eth.get_logs({"fromBlock": start, "toBlock": end, "address": wanted}):
                out.append(
                    RawLog(
                        to_checksum_address(log["address"]),
                        tuple(bytes(t) for t in log["topics"]),
                        bytes(log["data"]),
                        log["blockNumber"],
                        log["transactionIndex"],
                        log["logIndex"],
                        "0x" + bytes(log["transactionHash"]).hex(),
                    )
                )
        out.sort(key=lambda r: (r.block, r.tx_index, r.log_index))
        return out

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
            raise ChainError(f"no receipt for {tx_hash.hex()} after {self.timeout:.0f} s from {self.url}; is the chain mining?") from None
        if receipt["status"] != 1:
            self._replay_failure(tx, receipt)
        return TxResult(tx_hash=tx_hash.hex(), block=receipt["blockNumber"], gas_used=receipt["gasUsed"], receipt=receipt)

    def request_for(self, fn: Any, sender: str) -> dict[str, Any]:
        """``fn`` as an unsigned transaction request for a wallet that holds ``sender``'s key (EIP-1193
        ``eth_sendTransaction``: the wallet adds nonce, gas and fees and signs).

        The call is run first as ``sender`` on the pending block, so a transaction that would revert
        raises its typed exception here, before the wallet asks its owner to sign anything.
        """
        sender = to_checksum_address(sender)
        tx = self._guard(
            lambda: fn.build_transaction({"from": sender, "value": 0, "gas": EMBEDDED_GAS, "nonce": 0, "chainId": self.chain_id})
        )
        call: Any = {**_call_fields(tx), "gas": EMBEDDED_GAS}
        self._guard(lambda: self.w3.eth.call(call, block_identifier="pending"))
        return {
            "from": sender,
            "to": to_checksum_address(tx["to"]),
            "data": hex_data(tx["data"]),
            "value": "0x0",
            "chainId": hex(self.chain_id),
        }

    def wait_for(self, tx_hash_hex: str, *, expect: dict[str, Any] | None = None) -> TxResult:
        """The receipt of a transaction someone else signed and sent (a browser wallet); a revert raises
        its typed exception (replayed on the block it failed in), like :meth:`transact`.

        ``expect``: the request :meth:`request_for` prepared; a transaction to another address or
        with other call data raises :class:`~codecoop.errors.ChainError` before its receipt is read.
        """
        tx_hash = HexStr(tx_hash_hex)
        sent = self._guard(lambda: self.w3.eth.get_transaction(tx_hash))
        if expect is not None and (
            (sent["to"] or "").lower() != expect["to"].lower() or hex_data(sent["input"]).lower() != expect["data"].lower()
        ):
            raise ChainError(
                f"the wallet sent a different transaction ({tx_hash}: another address or call data) from the one prepared; nothing was recorded"
            )
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.timeout)
        except TimeExhausted:
            raise ChainError(f"no receipt for {tx_hash} after {self.timeout:.0f} s from {self.url}; is the chain mining?") from None
        if receipt["status"] != 1:
            self._replay_failure(
                {"from": sent["from"], "to": sent["to"], "data": sent["input"], "value": sent["value"], "gas": sent["gas"]}, receipt
            )
        return TxResult(
            tx_hash=receipt["transactionHash"].hex(), block=receipt["blockNumber"], gas_used=receipt["gasUsed"], receipt=receipt
        )

    def call(self, fn: Any, *, block: int | str = "latest") -> Any:
        """Call a view function; reverts become typed exceptions."""
        return self._guard(lambda: fn.call(block_identifier=block))

    @abstractmethod
    def _gas_for(self, tx: dict[str, Any]) -> int:
        """Gas limit for ``tx``; a revert surfaces here as its typed exception, before anything is sent."""

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


def hex_data(data: str | bytes) -> str:
    """Call data as ``0x``-prefixed hex, whether web3 gave it as text or bytes."""
    return data if isinstance(data, str) else "0x" + bytes(data).hex()


def _call_fields(tx: dict[str, Any]) -> dict[str, Any]:
    """The fields of a built transaction that a call or a gas estimate takes."""
    return {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}


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
        from codecoop.chain.backends.embedded import EmbeddedChain

        return EmbeddedChain.start(timeout=timeout)
    from codecoop.chain.backends.rpc import RpcChain

    return RpcChain.open(url, timeout=timeout)
