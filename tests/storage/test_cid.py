"""CIDs: byte-for-byte agreement with a real IPFS daemon, and strict parsing."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multiformats import CID

from codecoop.errors import InvalidCID
from codecoop.storage import CHUNK_SIZE, CidBuilder, cid_of, cid_of_chunks, parse_cid

from .vectors import load_vectors, vector_bytes

VECTORS = load_vectors()


@pytest.mark.parametrize("vector", VECTORS, ids=[f"{v['size']}B" for v in VECTORS])
def test_cid_matches_the_daemon_recorded_vector(vector: dict) -> None:
    assert cid_of(vector_bytes(vector["seed"], vector["size"])) == vector["cid"]


def test_vectors_cover_every_boundary_of_the_recipe() -> None:
    sizes = {v["size"] for v in VECTORS}
    assert {0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 5 * 2**20} <= sizes
    assert max(sizes) > 174 * CHUNK_SIZE


@settings(max_examples=30, deadline=None)
@given(size=st.integers(0, 3 * CHUNK_SIZE + 7), cuts=st.lists(st.integers(0, 3 * CHUNK_SIZE), max_size=6))
def test_feeding_in_pieces_gives_the_same_cid(size: int, cuts: list[int]) -> None:
    data = vector_bytes("pieces", size)
    bounds = sorted({0, size, *(c for c in cuts if c < size)})
    pieces = [data[a:b] for a, b in zip(bounds, bounds[1:])]
    assert cid_of_chunks(pieces) == cid_of(data)


def test_builder_refuses_use_after_finish() -> None:
    builder = CidBuilder()
    builder.finish()
    with pytest.raises(RuntimeError):
        builder.update(b"x")


def test_parse_cid_canonicalises_other_bases_to_base32() -> None:
    cid = cid_of(b"hello")
    base58 = CID.decode(cid).encode("base58btc")
    assert parse_cid(base58) == cid


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not-a-cid",
        "bafkrei",  # truncated
        "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n",  # CIDv0
        str(CID("base32", 1, "dag-cbor", ("sha2-256", hashlib.sha256(b"x").digest()))),
        str(CID("base32", 1, "raw", ("sha2-512", hashlib.sha512(b"x").digest()))),
        "b" + "a" * 300,
    ],
    ids=["empty", "garbage", "truncated", "cidv0", "dag-cbor", "sha2-512", "too-long"],
)
def test_malformed_or_foreign_cids_are_refused(text: str) -> None:
    with pytest.raises(InvalidCID):
        parse_cid(text)


def test_parse_cid_canonicalises_upper_case_base32() -> None:
    cid = cid_of(b"hello")
    assert parse_cid("B" + cid[1:].upper()) == cid
