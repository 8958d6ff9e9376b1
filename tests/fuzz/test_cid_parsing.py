"""CID parsing, in the stores (``codecoop.storage.cid``) and for the chain (``codecoop.chain.cid``):
``InvalidCID`` for anything that is not a codecoop CID, and an exact round trip for what is."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st
from multiformats import CID, multihash

from codecoop.chain.cid import cid_from_bytes, cid_to_bytes
from codecoop.errors import InvalidCID
from codecoop.storage.cid import cid_of, parse_cid

from .support import LARGE, MEDIUM, bounded

BASES = ["base32", "base32upper", "base58btc", "base16", "base64", "base36"]


@st.composite
def cid_strings(draw: st.DrawFn) -> tuple[str, bool]:
    """A CID string in some multibase, of some version, codec and hash: ``(text, codecoop accepts it)``."""
    digest = hashlib.sha256(draw(st.binary(max_size=16))).digest()
    codec = draw(st.sampled_from(["raw", "dag-pb", "dag-cbor", "dag-json"]))
    hashfun = draw(st.sampled_from(["sha2-256", "sha2-512", "identity"]))
    if hashfun == "sha2-512":
        digest = hashlib.sha512(digest).digest()
    version = draw(st.sampled_from([0, 1])) if (codec, hashfun) == ("dag-pb", "sha2-256") else 1
    cid = CID("base58btc" if version == 0 else draw(st.sampled_from(BASES)), version, codec, multihash.wrap(digest, hashfun))
    ok = version == 1 and hashfun == "sha2-256" and codec in ("raw", "dag-pb")
    return str(cid), ok


def mutate(text: str, data: st.DataObject) -> str:
    """One to three character edits: substitution, deletion or insertion."""
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, max(len(chars) - 1, 0)))
        op = data.draw(st.sampled_from(["sub", "del", "ins"]))
        c = data.draw(st.characters())
        if op == "sub" and chars:
            chars[i] = c
        elif op == "del" and chars:
            del chars[i]
        else:
            chars.insert(i, c)
    return "".join(chars)


def parsed(text: object) -> str | None:
    try:
        canonical = parse_cid(text)  # type: ignore[arg-type]
    except InvalidCID:
        return None
    assert parse_cid(canonical) == canonical  # canonical form is a fixed point
    return canonical


@bounded(LARGE)
@given(st.text(max_size=120))
def test_random_text_is_refused_with_InvalidCID_by_both_parsers(text: str) -> None:
    parsed(text)
    try:
        raw = cid_to_bytes(text)
    except InvalidCID:
        return
    assert len(raw) == 36 and cid_to_bytes(cid_from_bytes(raw)) == raw


@bounded(MEDIUM)
@given(cid_strings())
def test_every_multibase_spelling_of_a_codecoop_cid_parses_to_the_one_canonical_form(case: tuple[str, bool]) -> None:
    text, ok = case
    canonical = parsed(text)
    assert (canonical is not None) == ok, text
    if ok:
        binary = bytes(CID.decode(text))
        assert canonical == str(CID.decode(binary).set(base="base32"))
        assert cid_to_bytes(canonical) == binary and cid_from_bytes(binary) == canonical


@bounded(LARGE)
@given(st.binary(max_size=4096), st.data())
def test_mutated_cids_are_refused_or_name_a_valid_cid(content: bytes, data: st.DataObject) -> None:
    text = mutate(cid_of(content), data)
    canonical = parsed(text)
    if canonical is not None:
        assert len(cid_to_bytes(canonical)) == 36


@bounded(LARGE)
@given(st.binary(max_size=48) | st.binary(min_size=36, max_size=36).map(lambda b: b"\x01" + b[1:]))
def test_random_binary_cids_from_the_chain_are_refused_or_round_trip(raw: bytes) -> None:
    try:
        text = cid_from_bytes(raw)
    except InvalidCID:
        return
    assert cid_to_bytes(text) == raw and parse_cid(text) == text


@given(st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text()), st.floats()))
@bounded(MEDIUM)
def test_values_that_are_not_strings_are_refused_with_InvalidCID(value: object) -> None:
    assert parsed(value) is None
