"""connect() picks the backend; each backend implements the one Chain interface."""

from __future__ import annotations

import pytest

from codecoop.chain import Chain, EmbeddedChain, RpcChain, connect
from codecoop.errors import ChainError


def test_connect_embedded_gives_a_fresh_in_process_chain_with_dev_accounts():
    chain = connect("embedded")
    assert isinstance(chain, EmbeddedChain) and isinstance(chain, Chain)
    assert chain.embedded and chain.is_dev() and chain.block_number == 0


def test_the_embedded_chain_mines_travels_in_time_and_reverts_to_a_snapshot():
    chain = connect("embedded")
    chain.mine(3)
    snapshot = chain.snapshot()
    before = chain.w3.eth.get_block("latest")["timestamp"]
    chain.time_travel(3_600)
    assert chain.w3.eth.get_block("latest")["timestamp"] - before >= 3_599  # eth-tester lands within a second of it
    chain.mine_to(10)
    assert chain.block_number == 10
    chain.revert_to(snapshot)
    assert chain.block_number == 3


def test_a_url_that_is_no_json_rpc_url_is_refused_with_what_to_write():
    with pytest.raises(ChainError, match=r"must be 'embedded' or an http\(s\) JSON-RPC URL"):
        connect("ws://127.0.0.1:8545")


def test_the_json_rpc_backend_is_not_embedded():
    assert issubclass(RpcChain, Chain) and not RpcChain.embedded
