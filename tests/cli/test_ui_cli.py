"""`codecoop ui`: what its options refuse before anything starts, and what its help says about signing."""

from __future__ import annotations

from codecoop.cli import main


def test_a_config_with_its_own_chain_option_is_refused_with_the_reason(tmp_path, capsys, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self: (_ for _ in ()).throw(AssertionError("the server must not start")))
    assert main(["ui", "--config", str(tmp_path / "node.toml"), "--chain", "http://127.0.0.1:9"]) != 0
    err = capsys.readouterr().err
    assert "give either --config or --chain/--deployment" in err


def test_the_help_names_both_ways_to_sign_and_the_read_only_fallback(capsys):
    try:
        main(["ui", "--help"])
    except SystemExit:
        pass
    out = " ".join(capsys.readouterr().out.split())
    assert "keystore" in out and "browser wallet" in out and "read-only" in out
