"""``codecoop audit clones``: a key made once, fingerprints published per organisation, overlap compared,
shared clones dropped, all through the command line."""

from __future__ import annotations

import json
from pathlib import Path

from codecoop.cli import main

SHARED = "\n".join(f"vendored_helper_{i} = normalise_path({i}, depth={i + 2})" for i in range(9))


def _flat(text: str) -> str:
    """Console text with rich's line wrapping undone."""
    return " ".join(text.split())


def _org(root: Path, name: str, own: int, shared: bool) -> Path:
    folder = root / name
    folder.mkdir()
    own_code = "\n".join(f"{name}_step_{i} = run_{name}({i})" for i in range(own))
    (folder / "main.py").write_text(own_code + ("\n" + SHARED if shared else "") + "\n")
    return folder


def test_publish_compare_and_drop_through_the_cli(tmp_path, capsys):
    key = tmp_path / "fed.key"
    assert main(["audit", "clones", "--new-key", "--key-file", str(key)]) == 0
    files = []
    for name, own, shared in (("acme", 10, True), ("globex", 6, True), ("initech", 8, False)):
        out = tmp_path / f"{name}.json"
        assert main(["audit", "clones", "--key-file", str(key), "--data", str(_org(tmp_path, name, own, shared)), "--out", str(out)]) == 0
        files.append(out)
    assert "acme" in json.loads(files[0].read_text())["organisation"]
    capsys.readouterr()

    report = tmp_path / "overlap.json"
    assert main(["audit", "clones", "--compare", *map(str, files), "--json", str(report)]) == 0
    out = _flat(capsys.readouterr().out)
    assert "acme" in out and "globex" in out and "found at another organisation" in out
    pairs = json.loads(report.read_text())["pairs"]
    assert [(p["a"], p["b"], p["shared"]) for p in pairs] == [("acme", "globex", 4), ("acme", "initech", 0), ("globex", "initech", 0)]

    filtered = tmp_path / "filtered"
    argv = ["audit", "clones", "--key-file", str(key), "--data", str(tmp_path / "acme"), "--drop-into", str(filtered), str(files[1])]
    assert main(argv) == 0
    kept = (filtered / "main.py").read_text()
    assert "vendored_helper" not in kept and "acme_step_9" in kept
    assert "also at globex" in _flat(capsys.readouterr().out)


def test_comparing_sets_made_under_different_keys_fails_with_a_clear_message(tmp_path, capsys):
    sets = []
    for i, name in enumerate(("acme", "globex")):
        key = tmp_path / f"k{i}.key"
        assert main(["audit", "clones", "--new-key", "--key-file", str(key)]) == 0
        out = tmp_path / f"{name}.json"
        assert main(["audit", "clones", "--key-file", str(key), "--data", str(_org(tmp_path, name, 8, True)), "--out", str(out)]) == 0
        sets.append(str(out))
    capsys.readouterr()
    assert main(["audit", "clones", "--compare", *sets]) == 1
    assert "different keys" in _flat(capsys.readouterr().err)


def test_publishing_without_a_key_file_is_refused(tmp_path, capsys):
    code = main(
        [
            "audit",
            "clones",
            "--key-file",
            str(tmp_path / "missing.key"),
            "--data",
            str(_org(tmp_path, "acme", 7, False)),
            "--out",
            str(tmp_path / "a.json"),
        ]
    )
    assert code == 1 and "does not exist" in _flat(capsys.readouterr().err)
    assert not (tmp_path / "a.json").exists()
