"""Node configuration: the template validates, and every bad value is reported by its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from codecoop.errors import ChainError, ConfigError
from codecoop.node.config import load_config, parse_config, render_template


def _template(tmp_path: Path) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(
        render_template(
            config_name="node.toml",
            chain="http://127.0.0.1:8545",
            deployment="fed.json",
            store="embedded",
            listen="/ip4/127.0.0.1/tcp/4001",
            keystore="key.json",
            password_line='password_env = "PW"',
            code='"src"',
            folder="data",
            model="tiny",
        )
    )
    return path


def test_the_template_validates_and_resolves_paths_against_its_folder(tmp_path):
    cfg = load_config(_template(tmp_path))
    assert cfg["chain.url"] == "http://127.0.0.1:8545"
    assert cfg["training.steps"] == 40
    assert cfg.path("chain.deployment") == tmp_path / "fed.json"
    assert cfg.folder == tmp_path / "data"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"training": {"lr": -1.0}}, "training.lr"),
        ({"training": {"steps": "many"}}, "training.steps"),
        ({"chain": {"url": "localhost:8545"}}, "chain.url"),
        ({"chain": {"url": "ws://127.0.0.1:8546"}}, "chain.url"),
        ({"store": {"api": "ipfs"}}, "store.api"),
        ({"p2p": {"bootstrap": ["10.0.0.1:4001"]}}, "p2p.bootstrap"),
        ({"node": {"open_rounds": "yes"}}, "node.open_rounds"),
        ({"evaluation": {"max_blocks": 0}}, "evaluation.max_blocks"),
        ({"model": {"device": "tpu"}}, "model.device"),
        ({"training": {"learning_rate": 0.1}}, "training.learning_rate"),
    ],
)
def test_a_bad_value_gives_an_error_naming_its_key(data, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config(data, root=Path("."))


def test_an_unknown_section_is_named():
    with pytest.raises(ConfigError, match=r"\[trainng\]"):
        parse_config({"trainng": {"steps": 1}}, root=Path("."))


def test_a_bad_file_names_the_key_with_the_file(tmp_path):
    path = _template(tmp_path)
    path.write_text(path.read_text().replace("steps = 40", "steps = 0"))
    with pytest.raises(ConfigError, match=r"node\.toml: training\.steps must be an integer of at least 1"):
        load_config(path)


def test_overrides_are_validated_like_the_file(tmp_path):
    path = _template(tmp_path)
    assert load_config(path, ["training.steps=7"])["training.steps"] == 7
    with pytest.raises(ConfigError, match=r"training\.r "):
        load_config(path, ["training.r=0"])
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(path, ["steps=7"])


def test_two_password_sources_are_refused():
    with pytest.raises(ConfigError, match="password_env and keystore.password_file"):
        parse_config({"keystore": {"password_env": "A", "password_file": "b"}}, root=Path("."))


def test_a_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(ConfigError, match="codecoop init"):
        load_config(tmp_path / "absent.toml")


def test_the_settings_carry_the_training_and_voting_values(tmp_path):
    cfg = load_config(_template(tmp_path), ["node.min_improvement=500", "training.target_modules=['q_proj']"])
    s = cfg.settings()
    assert s.min_improvement_micro == 500
    assert s.train.target_modules == ("q_proj",)
    assert s.max_rounds is None


@pytest.mark.parametrize("url", ["ws://127.0.0.1:8546", "wss://rpc.example", "localhost:8545"])
def test_the_loader_and_connect_refuse_the_same_chain_urls_with_the_same_reason(url):
    from codecoop.chain import connect

    with pytest.raises(ConfigError) as loader:
        parse_config({"chain": {"url": url}}, root=Path("."))
    with pytest.raises(ChainError) as backend:
        connect(url)
    reason = str(backend.value).removeprefix(f"chain URL {url!r} ")
    assert reason in str(loader.value)


@pytest.mark.parametrize("api", ["ipfs", "s3://bucket", "/unix/tmp/ipfs.sock"])
def test_the_loader_and_open_store_refuse_the_same_store_addresses(api, tmp_path):
    from codecoop.storage import open_store

    with pytest.raises(ConfigError, match="store.api"):
        parse_config({"store": {"api": api}}, root=Path("."))
    with pytest.raises(ConfigError, match="IPFS API address"):
        open_store(api, root=tmp_path)
