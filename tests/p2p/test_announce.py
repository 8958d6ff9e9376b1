"""Announcement checks, without a network: signatures, replays, staleness, policy."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from eth_account import Account

from codecoop.p2p.announce import Announcement, AnnouncementValidator, sign_announcement
from codecoop.storage import cid_of

MEMBER = Account.from_key("0x" + "11" * 32)
OTHER = Account.from_key("0x" + "22" * 32)
PEER = "12D3KooWGGDhERG3Ho5yvVrtbt81W4mL6pk4x56eyDrgpfGqHZke"
CID = cid_of(b"adapter")
NOW = 1_700_000_000


def _validator(**kwargs) -> AnnouncementValidator:
    return AnnouncementValidator("fed", clock=lambda: NOW, **kwargs)


def _signed(account=MEMBER, **overrides) -> Announcement:
    fields = {"federation": "fed", "round": 7, "cid": CID, "peer": PEER, "timestamp": NOW}
    return sign_announcement(account, **{**fields, **overrides})


def test_a_signed_announcement_round_trips_and_is_accepted() -> None:
    announcement = _signed()
    verdict = _validator().check(announcement.to_bytes(), origin_peer=PEER)
    assert verdict.accepted and verdict.announcement == announcement
    assert announcement.sender == MEMBER.address


def test_a_changed_field_breaks_the_signature() -> None:
    validator = _validator()
    tampered = replace(_signed(), cid=cid_of(b"poisoned adapter"))
    assert validator.check(tampered.to_bytes()).reason == "forged"
    assert validator.dropped == {"forged": 1}


def test_a_signature_by_someone_else_than_the_sender_is_forged() -> None:
    impostor = replace(_signed(OTHER), sender=MEMBER.address)
    assert _validator().check(impostor.to_bytes()).reason == "forged"


def test_an_announcement_published_by_another_peer_than_announced_is_forged() -> None:
    other_peer = "12D3KooWKQ5L8sWLTg8gNR5oZ3kzvyUxRc6XUDBWhm7i834mJuUn"
    assert _validator().check(_signed().to_bytes(), origin_peer=other_peer).reason == "forged"


def test_the_same_announcement_twice_is_a_replay() -> None:
    validator = _validator()
    payload = _signed().to_bytes()
    assert validator.check(payload).accepted
    assert validator.check(payload).reason == "replayed"


@pytest.mark.parametrize("offset", [-301, 301])
def test_announcements_outside_the_clock_window_are_stale(offset: int) -> None:
    assert _validator().check(_signed(timestamp=NOW + offset).to_bytes()).reason == "stale"


def test_an_announcement_for_another_federation_is_dropped() -> None:
    assert _validator().check(_signed(federation="other").to_bytes()).reason == "wrong-federation"


@pytest.mark.parametrize(
    "payload",
    [b"", b"not json", b"[]", b"{}", b"x" * 5000, json.dumps({"round": -1}).encode()],
    ids=["empty", "text", "list", "empty-object", "oversized", "partial"],
)
def test_malformed_payloads_are_dropped(payload: bytes) -> None:
    assert _validator().check(payload).reason == "malformed"


def test_a_payload_with_a_bad_field_type_is_malformed() -> None:
    body = json.loads(_signed().to_bytes())
    body["round"] = "7"
    assert _validator().check(json.dumps(body).encode()).reason == "malformed"


def test_the_authorize_hook_sees_only_validly_signed_announcements() -> None:
    seen: list[Announcement] = []

    def members_only(announcement: Announcement) -> bool:
        seen.append(announcement)
        return announcement.sender == MEMBER.address

    validator = _validator(authorize=members_only)
    assert validator.check(_signed().to_bytes()).accepted
    assert validator.check(_signed(OTHER).to_bytes()).reason == "unauthorized"
    validator.check(replace(_signed(), round=8).to_bytes())
    assert len(seen) == 2


def test_a_refused_announcement_does_not_burn_its_nonce() -> None:
    validator = _validator(authorize=lambda a: False)
    payload = _signed().to_bytes()
    assert validator.check(payload).reason == "unauthorized"
    validator.authorize = None
    assert validator.check(payload).accepted
