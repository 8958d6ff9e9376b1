"""The embedded chain: an in-process eth-tester (py-evm) chain, fresh on every start, for tests and simulations.

It also reads logs straight from py-evm's database: eth-tester's own ``eth_getLogs`` finds each
receipt by scanning every block for the transaction, which is quadratic in the chain's length
(minutes for 1,000 rounds).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from web3 import Web3

from codecoop.chain.backend import EMBEDDED, EMBEDDED_GAS, Chain, RawLog, _call_fields, to_checksum_address

__all__ = ["EmbeddedChain"]

#: Positions in an RLP block header: parentHash, ommersHash, coinbase, stateRoot, transactionsRoot, receiptsRoot, ...
_TRANSACTIONS_ROOT, _RECEIPTS_ROOT = 4, 5


class EmbeddedChain(Chain):
    """An eth-tester chain in this process; ``tester`` is its ``EthereumTester``.

    ``preflight``: run every transaction as a call first, so a revert raises before anything is
    mined. A builder of synthetic histories that knows its transactions succeed may turn it off to
    halve the EVM work; a revert is then still raised, from the mined receipt.
    """

    embedded = True

    def __init__(self, w3: Web3, tester: Any, *, timeout: float = 120.0):
        super().__init__(w3, url=EMBEDDED, timeout=timeout)
        self.tester = tester
        self.preflight = True
        # eth-tester is not thread-safe: every request and every direct use of the tester holds this
        # lock, so a dashboard thread can follow the chain while a federation runs on it
        self.lock = threading.RLock()
        provider = w3.provider
        make_request = provider.make_request

        def locked_request(method: Any, params: Any) -> Any:
            with self.lock:
                return make_request(method, params)

        provider.make_request = locked_request  # type: ignore[method-assign]

    @classmethod
    def start(cls, *, timeout: float = 120.0) -> EmbeddedChain:
        """A fresh chain with funded dev accounts."""
        from eth_tester import EthereumTester, PyEVMBackend
        from web3 import EthereumTesterProvider

        tester = EthereumTester(PyEVMBackend())
        return cls(Web3(EthereumTesterProvider(tester)), tester, timeout=timeout)

    def is_dev(self) -> bool:
        return True

    def _mine(self, blocks: int) -> None:
        with self.lock:
            self.tester.mine_blocks(blocks)

    def time_travel(self, seconds: int) -> None:
        with self.lock:
            now = self.w3.eth.get_block("latest")["timestamp"]
            self.tester.time_travel(now + seconds)

    def snapshot(self) -> Any:
        with self.lock:
            return self.tester.take_snapshot()

    def revert_to(self, snapshot: Any) -> None:
        with self.lock:
            self.tester.revert_to_snapshot(snapshot)

    def _gas_for(self, tx: dict[str, Any]) -> int:
        """A generous fixed limit (unused gas is not charged) after one preflight call that finds reverts.

        eth-tester estimates gas by binary search (a dozen executions), so no estimate is made.
        """
        if self.preflight:
            # "pending": the next block, where the transaction will run (a window may close in between)
            call = {**_call_fields(tx), "gas": EMBEDDED_GAS}
            self._guard(lambda: self.w3.eth.call(call, block_identifier="pending"))
        return EMBEDDED_GAS

    def read_logs(self, addresses: Iterable[str], first: int, last: int) -> list[RawLog]:
        """Logs straight from py-evm's database (see :meth:`_read_logs`), under the chain's lock."""
        with self.lock:
            return self._read_logs(addresses, first, last)

    def _read_logs(self, addresses: Iterable[str], first: int, last: int) -> list[RawLog]:
        """Logs straight from py-evm's database, equal to what ``eth_getLogs`` returns.

        Most blocks of a federation's chain are empty (windows are mined through), so only the two
        trie roots are read from each raw header; a block with transactions has its receipts decoded
        as plain RLP and its transactions hashed (the hash is the keccak of the trie value), never
        decoded into objects. Typed receipts (EIP-2718) carry their type byte before the RLP list.
        """
        import rlp
        from eth.constants import BLANK_ROOT_HASH
        from eth_utils import keccak

        chaindb = self.tester.backend.chain.chaindb
        db = chaindb.db
        wanted_raw = {bytes.fromhex(to_checksum_address(a)[2:]) for a in addresses}
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
                        tx_hash = "0x" + hashes[tx_index].hex()
                        out.append(RawLog(to_checksum_address(address), tuple(topics), data, number, tx_index, index, tx_hash))
                    index += 1
        return out


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
