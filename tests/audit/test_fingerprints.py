"""Keyed clone fingerprints: shared code matches across organisations under one key, nothing matches
across keys, overlaps are computed from the published sets alone, and shared clones can be dropped."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from codecoop.audit.fingerprints import (
    FederationKey,
    FingerprintSet,
    drop_shared_clones,
    fingerprint_documents,
    load_key,
    new_key_file,
    overlap,
)
from codecoop.errors import ConfigError

SHARED = "\n".join(f"shared_value_{i} = compute({i}, scale={i * 3})" for i in range(10))


def _own(tag: str, n: int = 12) -> str:
    return "\n".join(f"{tag}_item_{i} = {tag}_transform({i})" for i in range(n))


KEY = FederationKey(b"k" * 32)
OTHER_KEY = FederationKey(b"q" * 32)


def _org(name: str, *texts: str, key: FederationKey = KEY) -> FingerprintSet:
    return fingerprint_documents([(Path(f"{name}/f{i}.py"), t) for i, t in enumerate(texts)], key, name)


def test_the_same_code_gives_the_same_fingerprints_at_two_organisations_despite_reformatting():
    reformatted = "\n\n".join("    " + "  ".join(line.split(" ")) for line in SHARED.split("\n"))
    a, b = _org("acme", SHARED), _org("globex", reformatted)
    assert len(a) == 5 and a.fingerprints == b.fingerprints


def test_different_keys_give_disjoint_fingerprints_and_are_refused_by_the_comparison():
    a, b = _org("acme", SHARED), _org("globex", SHARED, key=OTHER_KEY)
    assert not a.fingerprints & b.fingerprints
    assert a.key_id != b.key_id
    with pytest.raises(ConfigError, match="different keys"):
        overlap([a, b])


def test_overlap_reports_jaccard_and_each_organisations_share_found_elsewhere():
    a = _org("acme", SHARED, _own("acme"))  # 5 shared windows + 7 own
    b = _org("globex", SHARED, _own("globex", 8))  # 5 shared + 3 own
    c = _org("initech", _own("initech"))
    report = overlap([a, b, c])
    ab = report.pairs[0]
    assert (ab.a, ab.b, ab.shared) == ("acme", "globex", 5)
    assert ab.jaccard == pytest.approx(5 / 15) and ab.share_of_a == pytest.approx(5 / 12) and ab.share_of_b == pytest.approx(5 / 8)
    assert report.pairs[1].shared == 0 and report.pairs[2].shared == 0
    assert report.shared_elsewhere == {"acme": pytest.approx(5 / 12), "globex": pytest.approx(5 / 8), "initech": 0.0}


def test_a_published_file_is_sorted_deduplicated_and_carries_the_key_id_not_the_key(tmp_path):
    s = _org("acme", SHARED, SHARED, _own("acme"))
    assert s.windows == 5 + 5 + 7 and len(s) == 12
    path = s.save(tmp_path / "acme.json")
    doc = json.loads(path.read_text())
    assert doc["fingerprints"] == sorted(doc["fingerprints"]) and len(set(doc["fingerprints"])) == 12
    assert doc["key_id"] == KEY.key_id and KEY.secret.hex() not in path.read_text()
    assert FingerprintSet.load(path) == s


def test_a_key_file_is_private_to_its_owner_and_round_trips(tmp_path):
    key = new_key_file(tmp_path / "fed.key")
    assert stat.S_IMODE((tmp_path / "fed.key").stat().st_mode) == 0o600
    assert load_key(tmp_path / "fed.key") == key
    with pytest.raises(ConfigError, match="never overwritten"):
        new_key_file(tmp_path / "fed.key")
    (tmp_path / "bad.key").write_text('{"format": "something else"}')
    with pytest.raises(ConfigError, match="not a codecoop federation key"):
        load_key(tmp_path / "bad.key")


def test_dropping_shared_clones_removes_exactly_the_shared_lines_and_names_who_has_them():
    mine = _own("acme", 4) + "\n" + SHARED + "\n" + _own("acme2", 3)
    others = [_org("globex", SHARED), _org("initech", _own("initech"))]
    result = drop_shared_clones([(Path("acme/a.py"), mine), (Path("acme/b.py"), _own("solo"))], KEY, others)
    assert len(result.dropped) == 1
    block = result.dropped[0]
    assert (block.first_line, block.last_line, block.organisations) == (5, 14, ("globex",))
    kept = {d.path.name: d.text for d in result.documents}
    assert "shared_value" not in kept["a.py"] and kept["a.py"].count("\n") == 6
    assert kept["b.py"] == _own("solo")
    assert (result.lines_before, result.lines_after) == (17 + 12, 7 + 12)


def test_dropping_in_file_mode_removes_whole_files_with_shared_code():
    result = drop_shared_clones(
        [(Path("a.py"), SHARED + "\n" + _own("x")), (Path("b.py"), _own("y"))], KEY, [_org("globex", SHARED)], mode="files"
    )  # fmt: skip
    assert [d.path.name for d in result.documents] == ["b.py"] and result.dropped_files == (Path("a.py"),)


def test_dropping_refuses_sets_made_under_another_key():
    with pytest.raises(ConfigError, match="federation's key"):
        drop_shared_clones([(Path("a.py"), SHARED)], KEY, [_org("globex", SHARED, key=OTHER_KEY)])
