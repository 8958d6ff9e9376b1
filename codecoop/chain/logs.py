"""Read and decode every event of a deployment in one pass, fast enough for thousands of rounds.

An auditor rebuilds the ledger from events alone, so it reads every log of the six contracts once,
by :meth:`Chain.read_logs`: ``eth_getLogs`` in block ranges over JSON-RPC, py-evm's receipts
directly on the embedded chain (:mod:`codecoop.chain.backends.embedded`).

Decoding uses the deployment's ABIs directly (topic0 to event) rather than one web3 filter per
event name, so each log is decoded once whatever its contract.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic

from codecoop.chain.backend import Chain, RawLog, to_checksum_address
from codecoop.chain.clients import Event

__all__ = ["RawLog", "LedgerEvent", "read_logs", "EventDecoder"]


@dataclass(frozen=True)
class LedgerEvent(Event):
    """A decoded event and the contract that emitted it; ``tx_index`` ties events of one transaction."""

    contract: str = ""
    tx_index: int = 0


def read_logs(chain: Chain, addresses: Iterable[str], from_block: int = 0, to_block: int | None = None) -> list[RawLog]:
    """Every log emitted by ``addresses`` in ``[from_block, to_block]``, in chain order (the backend's fastest way)."""
    last = chain.block_number if to_block is None else to_block
    return chain.read_logs(addresses, from_block, last)


@dataclass(frozen=True)
class _EventSpec:
    name: str
    indexed: tuple[tuple[str, str], ...]
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]


def _abi_type(inp: Mapping[str, Any]) -> str:
    if inp["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in inp["components"]) + ")" + inp["type"][5:]
    return inp["type"]


class EventDecoder:
    """Decodes raw logs of known contracts into :class:`LedgerEvent` with web3's argument types."""

    def __init__(self, contracts: Mapping[str, tuple[str, Sequence[Mapping[str, Any]]]]):
        """``contracts``: address to (contract name, ABI)."""
        self._specs: dict[tuple[str, bytes], tuple[str, _EventSpec]] = {}
        for address, (name, abi) in contracts.items():
            for item in abi:
                if item.get("type") != "event" or item.get("anonymous"):
                    continue
                spec = _EventSpec(
                    item["name"],
                    tuple((i["name"], _abi_type(i)) for i in item["inputs"] if i["indexed"]),
                    tuple(i["name"] for i in item["inputs"] if not i["indexed"]),
                    tuple(_abi_type(i) for i in item["inputs"] if not i["indexed"]),
                )
                self._specs[(to_checksum_address(address), event_abi_to_log_topic(item))] = (name, spec)

    def decode(self, log: RawLog) -> LedgerEvent | None:
        """The decoded event, or None for a log whose signature the ABIs do not know."""
        found = self._specs.get((log.address, log.topics[0])) if log.topics else None
        if found is None:
            return None
        contract, spec = found
        args: dict[str, Any] = {}
        for (name, typ), topic in zip(spec.indexed, log.topics[1:]):
            args[name] = _indexed(typ, topic)
        if spec.data_types:
            values = abi_decode(list(spec.data_types), log.data)
            for name, typ, value in zip(spec.data_names, spec.data_types, values):
                args[name] = _checksummed(typ, value)
        return LedgerEvent(
            name=spec.name,
            args=args,
            block=log.block,
            tx_hash=log.tx_hash,
            log_index=log.log_index,
            contract=contract,
            tx_index=log.tx_index,
        )


def _checksummed(typ: str, value: Any) -> Any:
    """Addresses (also inside arrays) in checksum form, as web3 gives them."""
    if typ == "address":
        return to_checksum_address(value)
    if typ.startswith("address[") and typ.endswith("]"):
        return tuple(to_checksum_address(v) for v in value)
    return value


def _indexed(typ: str, topic: bytes) -> Any:
    if typ == "address":
        return to_checksum_address(topic[12:])
    if typ.startswith("uint"):
        return int.from_bytes(topic, "big")
    if typ.startswith("int"):
        return int.from_bytes(topic, "big", signed=True)
    if typ == "bool":
        return topic[-1] == 1
    if typ in ("string", "bytes") or typ.endswith("]"):
        return topic  # dynamic values are indexed by their hash
    return abi_decode([typ], topic)[0]
