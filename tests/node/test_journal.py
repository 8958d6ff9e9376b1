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


def test_the_network_counters_are_journaled_add_up_over_restarts_and_show_in_node_status(tmp_path):
    from codecoop.cli.node import journal_rows
    from codecoop.node.transport import FetchCounters, InProcessNetwork
    from codecoop.storage import LocalStore

    path = tmp_path / "journal.json"
    net = InProcessNetwork()
    holder = LocalStore(tmp_path / "holder")
    net.attach("0xHolder", holder)
    cids = [holder.put(b"update %d" % i) for i in range(2)]
    for run, cid in enumerate(cids):  # two runs of the same node: the second starts from the journaled counts
        journal = Journal(path, deployment="0xabc")
        transport = net.attach("0xMe", LocalStore(tmp_path / "me"), FetchCounters.from_json(journal.network))
        journal.network_of = transport.counters.to_json
        transport.fetch(cid, "0xHolder", max_size=1 << 20)
        journal.save()
        assert Journal(path, deployment="0xabc").network["objects"] == run + 1
    rows = dict(journal_rows(Journal(path, deployment="0xabc"), 1e-5))
    assert rows["network"].startswith("fetched 2 object(s), 16 B (2 over in-process) from 1 peer(s)")
