"""Read and decode every event of a deployment in one pass, fast enough for thousands of rounds.

An auditor rebuilds the ledger from events alone, so it reads every log of the six contracts once.
Over JSON-RPC that is ``eth_getLogs`` in block ranges. On the embedded chain it reads the blocks'
receipts straight from py-evm: eth-tester's own ``eth_getLogs`` finds each receipt by scanning every
block for the transaction, which is quadratic in the chain's length (minutes for 1,000 rounds).

Decoding uses the deployment's ABIs directly (topic0 to event) rather than one web3 filter per
event name, so each log is decoded once whatever its contract.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic
from eth_utils import to_checksum_address as _checksum

from codecoop.chain.backend import Chain
from codecoop.chain.clients import Event

__all__ = ["RawLog", "LedgerEvent", "read_logs", "EventDecoder"]

#: Blocks per ``eth_getLogs`` request (public nodes refuse much larger ranges).
RPC_RANGE = 5_000


@lru_cache(maxsize=4096)
def to_checksum_address(address: str | bytes) -> str:
    """Checksum form of an address; cached because a federation has few addresses and each costs a keccak."""
    return _checksum(address)


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


@dataclass(frozen=True)
class LedgerEvent(Event):
    """A decoded event and the contract that emitted it; ``tx_index`` ties events of one transaction."""

    contract: str = ""
    tx_index: int = 0


def read_logs(chain: Chain, addresses: Iterable[str], from_block: int = 0, to_block: int | None = None) -> list[RawLog]:
    """Every log emitted by ``addresses`` in ``[from_block, to_block]``, in chain order."""
    wanted = {to_checksum_address(a) for a in addresses}
    last = chain.block_number if to_block is None else to_block
    if chain.embedded:
        return _embedded_logs(chain, wanted, from_block, last)
    return _rpc_logs(chain, wanted, from_block, last)


def _embedded_logs(chain: Chain, wanted: set[str], first: int, last: int) -> list[RawLog]:
    """Logs straight from py-evm's database (eth-tester's eth_getLogs walks every block slowly).

    Most blocks of a federation's chain are empty (windows are mined through), so only the two
    trie roots are read from each raw header; a block with transactions has its receipts decoded
    as plain RLP and its transactions hashed (the hash is the keccak of the trie value), never
    decoded into objects. Typed receipts (EIP-2718) carry their type byte before the RLP list.
    """
    import rlp
    from eth.constants import BLANK_ROOT_HASH
    from eth_utils import keccak

    chaindb = chain.tester.backend.chain.chaindb
    db = chaindb.db
    wanted_raw = {bytes.fromhex(a[2:]) for a in wanted}
    out: list[RawLog] = []
    for number in range(first, last + 1):
        header = rlp.decode_lazy(db[chaindb.get_canonical_block_hash(number)])
        receipts_root = header[_RECEIPTS_ROOT]
        if receipts_root == BLANK_ROOT_HASH:
            continue
        hashes = [keccak(raw) for raw in _trie_values(db, header[_TRANSACTIONS_ROOT])]
        index = 0
        for tx_index, raw in enumerate(_trie_values(db, receipts_root)):
            _status, _gas, _bloom, logs = rlp.decode(raw[1:] if raw[0] < 0x80 else raw)
            for address, topics, data in logs:
                if address in wanted_raw:
                    out.append(
                        RawLog(to_checksum_address(address), tuple(topics), data, number, tx_index, index, "0x" + hashes[tx_index].hex())
                    )
                index += 1
    return out


#: Positions in an RLP block header: parentHash, ommersHash, coinbase, stateRoot, transactionsRoot, receiptsRoot, ...
_TRANSACTIONS_ROOT, _RECEIPTS_ROOT = 4, 5


def _trie_values(db: Any, root: bytes) -> Iterator[bytes]:
    """The values of a block's transaction or receipt trie, in index order."""
    import rlp
    from trie import HexaryTrie

    trie = HexaryTrie(db=db, root_hash=root)
    for i in itertools.count():
        value = trie[rlp.encode(i)]
        if value == b"":
            return
        yield value


def _rpc_logs(chain: Chain, wanted: set[str], first: int, last: int) -> list[RawLog]:
    out: list[RawLog] = []
    for start in range(first, last + 1, RPC_RANGE):
        end = min(start + RPC_RANGE - 1, last)
        logs = chain.w3.eth.get_logs({"fromBlock": start, "toBlock": end, "address": sorted(wanted)})
        for log in logs:
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
