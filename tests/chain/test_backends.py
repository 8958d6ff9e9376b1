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


def test_a_prepared_wallet_request_is_settled_and_another_transaction_is_refused_by_wait_for(fed):
    chain, token, member = fed.chain, fed.deployment.token, fed.members[1]
    req = chain.request_for(token.function("delegate", fed.members[2].address), member.address)
    assert req["from"] == member.address and req["data"].startswith("0x") and int(req["chainId"], 16) == chain.chain_id

    def sign_and_send(request: dict) -> str:  # what a browser wallet does with eth_sendTransaction
        tx = {
            "to": request["to"],
            "data": request["data"],
            "value": 0,
            "gas": 200_000,
            "gasPrice": chain.w3.eth.gas_price,
            "nonce": chain.w3.eth.get_transaction_count(member.address),
            "chainId": chain.chain_id,
        }
        return "0x" + chain.w3.eth.send_raw_transaction(member.sign_transaction(tx).raw_transaction).hex().removeprefix("0x")

    sent = sign_and_send(req)
    assert chain.wait_for(sent, expect=req).block == chain.block_number
    assert token.delegates(member.address) == fed.members[2].address
    other = sign_and_send(chain.request_for(token.function("delegate", member.address), member.address))
    with pytest.raises(ChainError, match="different transaction"):
        chain.wait_for(other, expect=req)
