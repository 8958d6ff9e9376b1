"""The node's journal survives an interrupted write: the old file stands and no temporary file stays."""

from __future__ import annotations

import json

import pytest

from codecoop.node import Journal


def test_an_interrupted_save_keeps_the_previous_journal_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    journal = Journal(tmp_path / "journal.json", deployment="0xabc")
    journal.entry(1).trained_cid = "bafy-first"
    journal.save()
    journal.entry(2).trained_cid = "bafy-second"

    real_dump = json.dump

    def interrupted(data, f, **kw):
        real_dump(data, f, **kw)
        raise KeyboardInterrupt  # Ctrl-C after half the work, before the rename

    monkeypatch.setattr(json, "dump", interrupted)
    with pytest.raises(KeyboardInterrupt):
        journal.save()
    monkeypatch.undo()

    assert [p.name for p in tmp_path.iterdir()] == ["journal.json"]
    reread = Journal(tmp_path / "journal.json", deployment="0xabc")
    assert reread.rounds.keys() == {1} and reread.entry(1).trained_cid == "bafy-first"
