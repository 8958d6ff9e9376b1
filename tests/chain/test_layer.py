"""The Python chain layer: compilation and its cache, CIDs on-chain, deployment records, the CLI."""

from __future__ import annotations

import json
import os

import pytest

from codecoop.chain import Deployment, connect
from codecoop.chain.cid import cid_from_bytes, cid_to_bytes
from codecoop.chain.compile import compile_contracts, node_modules
from codecoop.chain.deployment import raw_cid
from codecoop.cli import main
from codecoop.errors import ConfigError, InvalidCID, ToolchainError


def test_every_deployable_contract_fits_eip170():
    artifacts = compile_contracts()
    assert set(artifacts) == {"ContributionToken", "MemberRegistry", "RoundManager", "ModelRegistry", "CoopTimelock", "CoopGovernor"}
    for art in artifacts.values():
        assert 0 < art.deployed_size <= 24_576, art.name


def test_artifacts_are_cached_by_the_sources_hash():
    from codecoop.paths import cache_root

    compile_contracts.cache_clear()
    compile_contracts()  # fills the shared cache when it is empty
    files = list((cache_root() / "artifacts").glob("*.json"))
    assert files, "compilation left no artifact in the cache"
    stamp = {f: f.stat().st_mtime_ns for f in files}
    compile_contracts.cache_clear()
    compile_contracts()
    assert {f: f.stat().st_mtime_ns for f in files} == stamp  # served from the cache, not rewritten


def test_missing_npm_packages_give_an_error_that_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("CODECOOP_NODE_MODULES", str(tmp_path))
    with pytest.raises(ToolchainError, match="npm ci|bootstrap"):
        node_modules()


def test_missing_node_gives_an_error_that_names_the_fix(monkeypatch):
    from codecoop.chain import compile as compile_module

    monkeypatch.setattr(compile_module.shutil, "which", lambda name: None)
    with pytest.raises(ToolchainError, match="Node.js"):
        compile_module.solc_launcher()


def test_cids_round_trip_exactly_through_their_binary_form():
    for data in (b"", b"x", b"adapter bytes" * 1000):
        cid = raw_cid(data)
        raw = cid_to_bytes(cid)
        assert len(raw) == 36 and raw[:4] == bytes([0x01, 0x55, 0x12, 0x20])
        assert cid_from_bytes(raw) == cid


@pytest.mark.parametrize(
    "bad",
    [
        "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",  # CIDv0
        "not a cid",
        "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4ye",  # truncated
        "",
    ],
)
def test_cids_the_contracts_cannot_take_are_refused(bad):
    with pytest.raises(InvalidCID):
        cid_to_bytes(bad)


def test_a_deployment_record_round_trips_and_refuses_another_chain(fed, tmp_path):
    path = fed.deployment.save(tmp_path / "fed.json")
    again = Deployment.load(path, fed.chain)
    assert again.addresses == fed.deployment.addresses and again.params == fed.deployment.params
    assert again.rounds.current_round() == fed.deployment.rounds.current_round()
    other = connect()
    with pytest.raises(ConfigError, match="chain id|no contract"):
        Deployment.load(path, other)


def test_a_malformed_or_missing_deployment_file_is_refused_with_its_name(fed, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ConfigError, match="not a codecoop deployment"):
        Deployment.load(bad, fed.chain)
    with pytest.raises(ConfigError, match="does not exist"):
        Deployment.load(tmp_path / "missing.json", fed.chain)


def test_cli_chain_deploy_prints_the_addresses_and_writes_the_record(tmp_path, capsys):
    out = tmp_path / "deployment.json"
    assert main(["chain", "deploy", "--out", str(out), "--strategy", "fedmedian"]) == 0
    printed = capsys.readouterr().out
    record = json.loads(out.read_text())
    for name, address in record["addresses"].items():
        assert name in printed and address in printed
    assert record["params"]["aggregation_strategy"] == "fedmedian"


def test_cli_errors_print_without_a_traceback_and_exit_non_zero(tmp_path, capsys):
    params = tmp_path / "params.toml"
    params.write_text("[federation]\nquorum_bps = 0\n")
    assert main(["chain", "deploy", "--out", str(tmp_path / "d.json"), "--params", str(params)]) == 1
    err = capsys.readouterr().err
    assert "quorum_bps" in err and "Traceback" not in err
    assert main(["chain", "info", "--chain", "embedded"]) == 1


def test_keystores_are_encrypted_and_refuse_a_wrong_password(tmp_path):
    from codecoop.keys import create_keystore, load_keystore

    path = tmp_path / "key.json"
    account = create_keystore(path, "correct horse battery")
    assert account.key.hex()[2:] not in path.read_text() and account.key.hex() not in path.read_text()
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert load_keystore(path, "correct horse battery").address == account.address
    with pytest.raises(ConfigError, match="wrong password"):
        load_keystore(path, "wrong password!")
    with pytest.raises(ConfigError, match="never overwrites"):
        create_keystore(path, "another password")
