"""The charter check before joining, and the in-process transport's verified fetches."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from codecoop.chain import FederationParams, connect, deploy
from codecoop.errors import CharterMismatch, IntegrityError, ObjectNotFound
from codecoop.node import InProcessNetwork, Journal, Node, NodeSettings
from codecoop.storage import LocalStore

WEIGHTS = "ab" * 32


def _node(deployment, weights_hash: str, tmp_path) -> Node:
    chain = deployment.chain
    store = LocalStore(tmp_path / "store")
    return Node(
        name="org",
        account=chain.new_account(),
        deployment=deployment,
        store=store,
        transport=InProcessNetwork().attach("0x0", store),
        base=SimpleNamespace(model_id="tiny", weights_hash=weights_hash),
        corpus=None,
        settings=NodeSettings(train=None),
        journal=Journal(tmp_path / "j.json", deployment="x"),
    )


@pytest.fixture(scope="module")
def deployment():
    return deploy(connect("embedded"), FederationParams(base_model_id="tiny", base_weights_hash="0x" + WEIGHTS))


def test_a_node_with_the_charters_base_model_passes(deployment, tmp_path):
    _node(deployment, WEIGHTS, tmp_path).check_charter()


def test_a_node_with_another_base_model_is_refused_with_both_hashes(deployment, tmp_path):
    with pytest.raises(CharterMismatch, match=r"abababababababab.*cdcdcdcdcdcdcdcd.*set \[model\] id"):
        _node(deployment, "cd" * 32, tmp_path).check_charter()


def test_joining_registers_the_peer_and_delegates_votes(deployment, tmp_path):
    node = _node(deployment, WEIGHTS, tmp_path)
    node.ensure_member("12D3KooWexample", ("/ip4/127.0.0.1/tcp/4001",))
    info = deployment.members.member(node.address)
    assert info.status.name == "ACTIVE" and info.peer_id == "12D3KooWexample"
    assert deployment.token.delegates(node.address) == node.address
    node.ensure_member("12D3KooWexample")  # idempotent: a restart joins nothing twice


def test_in_process_fetch_copies_verified_bytes_into_the_fetchers_store(tmp_path):
    net = InProcessNetwork()
    a, b = LocalStore(tmp_path / "a"), LocalStore(tmp_path / "b")
    ta, tb = net.attach("0xA", a), net.attach("0xB", b)
    cid = a.put(b"adapter bytes")
    assert tb.fetch(cid, "0xA", max_size=1 << 20) == b"adapter bytes"
    assert b.has(cid) and net.bytes_sent["0xA"] == len(b"adapter bytes")
    elsewhere = LocalStore(tmp_path / "not-attached").put(b"held by nobody in this network")
    with pytest.raises(ObjectNotFound):
        ta.fetch(elsewhere, None, max_size=1 << 20)


def test_a_holder_with_damaged_bytes_cannot_pass_them_on(tmp_path):
    net = InProcessNetwork()
    a, b = LocalStore(tmp_path / "a"), LocalStore(tmp_path / "b")
    net.attach("0xA", a)
    tb = net.attach("0xB", b)
    cid = a.put(b"genuine adapter")
    damaged = next((tmp_path / "a" / "objects").rglob(cid))
    damaged.write_bytes(b"poisoned adapter")
    with pytest.raises(IntegrityError):
        tb.fetch(cid, "0xA", max_size=1 << 20)
    assert not b.has(cid)


def test_in_process_offers_and_copies(tmp_path):
    net = InProcessNetwork()
    a, b = LocalStore(tmp_path / "a"), LocalStore(tmp_path / "b")
    ta, tb = net.attach("0xA", a), net.attach("0xB", b)
    cid = a.put(b"offered update")
    ta.announce(3, cid)
    assert tb.offers(3) == [(cid, "0xA")] and ta.offers(3) == [] and tb.offers(4) == []
    assert ta.copies(cid) == 0
    tb.fetch(cid, "0xA", max_size=1 << 20)
    assert ta.copies(cid) == 1
