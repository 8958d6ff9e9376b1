"""The gossip announcement parser and validator on hostile payloads.

``Announcement.from_bytes`` raises ``MalformedAnnouncement`` (a ``P2PError``) and nothing else;
``AnnouncementValidator.check`` never raises at all (it runs on libp2p's thread for every message
from any peer) and accepts only a correctly signed, fresh, well-formed announcement.
"""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import given
from hypothesis import strategies as st

from codecoop.errors import P2PError
from codecoop.p2p.announce import Announcement, AnnouncementValidator, MalformedAnnouncement, sign_announcement
from codecoop.storage import cid_of

from .support import LARGE, MEDIUM, bounded
from .test_safetensors import JSON

MEMBER = Account.from_key("0x" + "33" * 32)
PEER = "12D3KooWGGDhERG3Ho5yvVrtbt81W4mL6pk4x56eyDrgpfGqHZke"
NOW = 1_700_000_000
FIELDS = ["federation", "round", "cid", "sender", "peer", "nonce", "timestamp", "signature"]


def validator() -> AnnouncementValidator:
    return AnnouncementValidator("fed", clock=lambda: NOW)


def good(**overrides) -> Announcement:
    fields = {"federation": "fed", "round": 3, "cid": cid_of(b"update"), "peer": PEER, "timestamp": NOW}
    return sign_announcement(MEMBER, **{**fields, **overrides})


def parse(data: bytes) -> Announcement | None:
    try:
        return Announcement.from_bytes(data)
    except MalformedAnnouncement:
        return None


@bounded(LARGE)
@given(st.binary(max_size=2100))
def test_random_payloads_are_dropped_as_malformed_and_never_raise(data: bytes) -> None:
    assert parse(data) is None
    assert validator().check(data).reason == "malformed"


@bounded(LARGE)
@given(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=4), JSON, max_size=9))
def test_objects_with_wrong_fields_and_types_are_malformed(body: dict) -> None:
    data = json.dumps(body).encode()
    assert parse(data) is None or set(body) == set(FIELDS)
    validator().check(data)


@bounded(MEDIUM)
@given(st.data())
def test_a_good_announcement_with_one_field_replaced_is_dropped_never_raises(data: st.DataObject) -> None:
    original = good()
    body = json.loads(original.to_bytes())
    body[data.draw(st.sampled_from(FIELDS))] = data.draw(JSON | st.integers(-(2**70), 2**1300) | st.text(max_size=140))
    verdict = validator().check(json.dumps(body).encode())
    assert not verdict.accepted or verdict.announcement == original  # only a replacement by the same value passes


@bounded(MEDIUM)
@given(
    st.text(max_size=20),
    st.integers(0, 2**80),
    st.sampled_from([cid_of(b"x"), "Qm" + "a" * 44, "not a cid", cid_of(b"x").upper()]),
    st.text(max_size=60),
    st.integers(0, 10**30),
)
def test_correctly_signed_announcements_with_any_values_never_raise(federation, round_, cid, peer, timestamp) -> None:
    announcement = Announcement(federation, round_, cid, MEMBER.address, peer, "ab" * 16, timestamp)
    signed = MEMBER.sign_message(encode_defunct(primitive=announcement.signing_bytes()))
    payload = Announcement(federation, round_, cid, MEMBER.address, peer, "ab" * 16, timestamp, bytes(signed.signature)).to_bytes()
    verdict = validator().check(payload, origin_peer=peer)
    fresh = abs(NOW - timestamp) <= 300 and round_ < 2**64
    assert verdict.accepted == (federation == "fed" and cid == cid_of(b"x") and fresh and len(payload) <= 2048)


@bounded(MEDIUM)
@given(st.data())
def test_flipped_bytes_in_a_good_announcement_are_dropped(data: st.DataObject) -> None:
    original = good()
    payload = bytearray(original.to_bytes())
    for _ in range(data.draw(st.integers(1, 3))):
        payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    verdict = validator().check(bytes(payload))
    assert not verdict.accepted or verdict.announcement == original  # e.g. a hex digit's case flipped


# ---------------------------------------------------------------------- regressions (bugs fuzzing found)


def test_a_deeply_nested_payload_is_malformed_not_a_crash() -> None:
    data = b"[" * 1000 + b"]" * 1000  # 2000 bytes, under the size limit: RecursionError escaped check()
    assert validator().check(data).reason == "malformed"
    with pytest.raises(MalformedAnnouncement):
        Announcement.from_bytes(data)


def test_a_signed_announcement_with_a_timestamp_past_float_range_is_malformed_not_a_crash() -> None:
    # Any key holder could send this; the clock comparison raised OverflowError on every peer.
    payload = good(timestamp=10**400).to_bytes()
    assert validator().check(payload).reason == "malformed"


def test_parse_errors_are_typed_p2p_errors_and_still_value_errors_for_older_callers() -> None:
    with pytest.raises(P2PError) as e:
        Announcement.from_bytes(b"\xff")
    assert isinstance(e.value, ValueError)
    body = json.loads(good().to_bytes())
    body["signature"] = "0x" + "zz" * 65
    with pytest.raises(MalformedAnnouncement, match="signature"):
        Announcement.from_bytes(json.dumps(body).encode())
