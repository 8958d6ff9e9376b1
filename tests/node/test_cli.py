"""`codecoop init`, and CLI errors: a message naming the problem, no traceback, a non-zero exit."""

from __future__ import annotations

from codecoop.cli import main
from codecoop.keys import load_keystore
from codecoop.node.config import load_config


def test_init_writes_a_valid_commented_config_and_an_encrypted_keystore(tmp_path, capsys):
    pw = tmp_path / "pw.txt"
    pw.write_text("correct horse battery\n")
    assert main(["init", str(tmp_path / "n"), "--password-file", str(pw), "--code", "src", "--model", "tiny"]) == 0
    cfg = load_config(tmp_path / "n" / "node.toml")
    assert cfg["data.code"] == ["src"] and cfg["model.id"] == "tiny"
    assert "# Selective update" in (tmp_path / "n" / "node.toml").read_text()
    account = load_keystore(tmp_path / "n" / "key.json", "correct horse battery")
    assert account.address in capsys.readouterr().out
    # a second init keeps the configuration unless forced
    assert main(["init", str(tmp_path / "n"), "--password-file", str(pw)]) == 1
    assert "--force" in capsys.readouterr().err


def test_init_needs_a_password_source(tmp_path, capsys):
    assert main(["init", str(tmp_path)]) == 1
    assert "--password-env" in capsys.readouterr().err


def test_a_bad_config_is_reported_by_key_without_a_traceback(tmp_path, capsys):
    path = tmp_path / "node.toml"
    path.write_text('[training]\nlr = "fast"\n')
    assert main(["node", "status", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "training.lr must be a number" in err and "Traceback" not in err


def test_a_node_refuses_the_embedded_chain(tmp_path, capsys):
    path = tmp_path / "node.toml"
    path.write_text('[chain]\nurl = "embedded"\n')
    assert main(["round", "status", "--config", str(path)]) == 1
    assert "codecoop sim" in capsys.readouterr().err


def test_sim_refuses_a_single_organisation(capsys):
    assert main(["sim", "--orgs", "1"]) == 1
    assert "--orgs must be at least 2" in capsys.readouterr().err


def test_node_status_shows_the_privacy_spent_by_the_journal(tmp_path):
    from codecoop.cli.node import journal_rows
    from codecoop.node.journal import Journal
    from codecoop.training.dp import epsilon

    journal = Journal(tmp_path / "journal.json", deployment="0xabc")
    for r in (1, 2, 3):
        e = journal.entry(r)
        e.trained_cid = f"bafk{r}" * 4
        e.dp = {"noise_multiplier": 1.0, "delta": 1e-5}
    journal.entry(4).skipped = True  # released nothing
    journal.save()
    rows = dict(journal_rows(Journal(tmp_path / "journal.json", deployment="0xabc"), 1e-5))
    assert rows["privacy spent"] == f"epsilon {epsilon(1.0, 3, 1e-5):.2f} at delta 1e-05 over 3 released update(s)"
    assert rows["journal round 4"].startswith("skipped")
    journal.entry(3).dp = None
    assert "epsilon inf" in dict(journal_rows(journal, 1e-5))["privacy spent"]
    assert "privacy spent" not in dict(journal_rows(Journal(tmp_path / "other.json", deployment="0xabc"), 1e-5))


def test_sim_refuses_a_negative_dp_clip_norm(capsys):
    assert main(["sim", "--dp-clip-norm", "-1"]) == 1
    err = capsys.readouterr().err
    assert "--dp-clip-norm must be positive" in err and "Traceback" not in err


def test_node_run_rounds_count_a_round_already_under_way():
    # `node run --rounds N` read the current round at start as already done: a round the devnet
    # opened between the node's join and that read was never counted, and the node ran on forever
    from codecoop.chain import Phase
    from codecoop.cli.node import rounds_before

    class Rounds:
        def __init__(self, current, phase):
            self.current, self.p = current, phase

        def current_round(self):
            return self.current

        def phase(self, r):
            assert r == self.current
            return self.p

    assert rounds_before(Rounds(0, None)) == 0
    assert rounds_before(Rounds(1, Phase.SUBMIT)) == 0
    assert rounds_before(Rounds(3, Phase.CONFIRM)) == 2
    assert rounds_before(Rounds(3, Phase.COMPLETED)) == 3
    assert rounds_before(Rounds(3, Phase.FAILED)) == 3
