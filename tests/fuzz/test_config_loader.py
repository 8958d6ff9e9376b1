"""The node configuration loader on hostile files: ``ConfigError`` naming the problem, nothing else.

Random bytes and text as a file, random TOML documents with known and unknown sections and keys and
values of every TOML type, and random ``section.key=value`` overrides. What loads satisfies the
schema, and its training settings build.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest
import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from codecoop.errors import ConfigError
from codecoop.node.config import SCHEMA, NodeConfig, load_config, parse_config

from .support import DEEP, LARGE, MEDIUM, bounded

#: Every TOML value type, nested a little (tomli_w writes them all).
TOML_VALUE = st.recursive(
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["embedded", "/ip4/127.0.0.1/tcp/4001", "http://127.0.0.1:8545", "cuda:0", "auto", ""])
    | st.dates()
    | st.datetimes()
    | st.times(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=3),
    max_leaves=12,
)
SECTIONS = st.sampled_from(sorted(SCHEMA)) | st.text(min_size=1, max_size=8)


@st.composite
def documents(draw: st.DrawFn) -> dict:
    """A TOML document: mostly known sections and keys, some unknown, values of any type."""
    doc: dict = {}
    for section in draw(st.lists(SECTIONS, max_size=4, unique=True)):
        keys = sorted(SCHEMA.get(section, {"x": None}))
        table = {}
        for key in draw(st.lists(st.sampled_from(keys) | st.text(min_size=1, max_size=6), max_size=4, unique=True)):
            table[key] = draw(TOML_VALUE)
        doc[section] = table if draw(st.integers(0, 9)) else draw(TOML_VALUE)
    return doc


def check_loaded(cfg: NodeConfig) -> None:
    """A configuration that loaded passes every schema check, and its training settings build."""
    for section, keys in SCHEMA.items():
        for key, (_, check) in keys.items():
            value = cfg.values[section][key]
            assert value is None or check(value) is None, (section, key, value)
    try:
        cfg.train_config()
    except ConfigError:
        pass  # e.g. dropout >= 1: refused by TrainConfig, still typed


def load_file(path: Path, data: bytes, overrides: list[str] | None = None) -> None:
    path.write_bytes(data)
    try:
        check_loaded(load_config(path, overrides or []))
    except ConfigError:
        pass


@bounded(MEDIUM)
@given(st.binary(max_size=512))
def test_random_bytes_as_a_config_file_give_ConfigError(tmp_path_factory, data: bytes) -> None:
    load_file(tmp_path_factory.getbasetemp() / "bytes.toml", data)


@bounded(MEDIUM)
@given(st.text(max_size=300))
def test_random_text_as_a_config_file_gives_ConfigError(tmp_path_factory, text: str) -> None:
    load_file(tmp_path_factory.getbasetemp() / "text.toml", text.encode("utf-8", "surrogatepass"))


@bounded(LARGE)
@given(documents())
def test_random_toml_documents_give_a_valid_config_or_ConfigError(tmp_path_factory, doc: dict) -> None:
    try:
        text = tomli_w.dumps(doc)
    except (TypeError, ValueError):  # a top-level non-table: write it as a key instead
        text = tomli_w.dumps({"value": doc})
    load_file(tmp_path_factory.getbasetemp() / "doc.toml", text.encode())


@bounded(LARGE)
@given(documents())
def test_parsed_documents_with_wrong_types_and_unknown_keys_give_ConfigError(doc: dict) -> None:
    try:
        check_loaded(parse_config(doc, root=Path("/tmp")))
    except ConfigError:
        pass


@bounded(MEDIUM)
@given(
    st.lists(
        st.text(max_size=40) | st.builds(lambda s, k, v: f"{s}.{k}={v}", SECTIONS, st.text(max_size=8), st.text(max_size=20)), max_size=3
    )
)
def test_random_overrides_give_a_valid_config_or_ConfigError(overrides: list[str]) -> None:
    try:
        check_loaded(parse_config({}, root=Path("/tmp"), overrides=overrides))
    except ConfigError:
        pass


# ---------------------------------------------------------------------- regressions (bugs fuzzing found)


@pytest.mark.parametrize(
    "content",
    [
        "deep-array",  # RecursionError escaped
        "deep-inline-table",  # RecursionError escaped
        b"\xff\xfe[chain]",  # UnicodeDecodeError escaped
        b"[training]\nlr = nan\n",  # was accepted: a NaN learning rate
        b"[node]\npoll_interval = inf\n",  # was accepted: a node that never polls
    ],
    ids=["deep-array", "deep-inline-table", "not-utf8", "nan-lr", "inf-poll"],
)
def test_files_that_escaped_or_passed_before_give_ConfigError(tmp_path, content: bytes | str) -> None:
    if content == "deep-array":  # past the default recursion limit; an unknown key if a test raised it
        content = b"x = " + b"[" * DEEP + b"]" * DEEP
    elif content == "deep-inline-table":
        content = b"x = " + b"{a=" * DEEP + b"1" + b"}" * DEEP
    path = tmp_path / "node.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path)


def test_a_folder_or_unreadable_path_gives_ConfigError(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)  # IsADirectoryError escaped


def test_a_deeply_nested_override_gives_ConfigError() -> None:
    with pytest.raises(ConfigError, match="training.steps"):
        parse_config({}, root=Path("/tmp"), overrides=["training.steps=" + "[" * DEEP + "]" * DEEP])


def test_non_finite_numbers_are_named_in_the_error() -> None:
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(ConfigError, match="training.lr must be a number, not nan or inf"):
            parse_config({"training": {"lr": value}}, root=Path("/tmp"))
    assert parse_config({"evaluation": {"max_update_norm": 5.0}}, root=Path("/tmp"))["evaluation.max_update_norm"] == 5.0
    with pytest.raises(ConfigError, match="must be a number"):
        parse_config({"training": {"lr": dt.date(2020, 1, 1)}}, root=Path("/tmp"))
