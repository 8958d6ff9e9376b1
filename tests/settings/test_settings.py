"""Each setting is defined once: the loader, the template, the command line, the library's dataclasses
and docs/SETTINGS.md all agree with ``codecoop.settings``, and no default or help text is written twice."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import tomllib
from pathlib import Path

import pytest

from codecoop.node.config import parse_config, render_template
from codecoop.settings import ABSENT, NODE_SECTIONS, option, setting, settings
from codecoop.settings.render import markdown

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "codecoop"

#: Fields that are the library's own, not node or sim settings (no configuration file sets them).
LIBRARY_ONLY = {
    "TrainConfig": {"epochs", "grad_accum", "weight_decay", "warmup_steps", "max_grad_norm", "progress", "dp_seed"},
    "NodeSettings": {"train", "max_object_bytes"},
    "SimConfig": {"screening"},  # a switch for tests and the demo, not a user setting
}
#: Command-line parameters that are not settings: connection options (their own definitions) and init's own.
NOT_SETTINGS = {"init": {"folder", "config_name", "chain", "deployment", "password_env", "password_file", "force"}, "sim": set()}


def _dataclasses():
    from codecoop.node.node import NodeSettings
    from codecoop.sim.runner import SimConfig
    from codecoop.training.config import TrainConfig

    return [TrainConfig, NodeSettings, SimConfig]


def test_docs_settings_md_is_rendered_from_the_definitions():
    committed = (ROOT / "docs" / "SETTINGS.md").read_text(encoding="utf-8")
    assert committed == markdown(), "docs/SETTINGS.md is stale: python -m codecoop.settings --markdown > docs/SETTINGS.md"


def test_every_default_passes_its_own_validator():
    for s in settings():
        if s.default is not ABSENT and s.default is not None:
            assert s.problem(s.default) is None, s.name


def test_the_loader_fills_in_every_default():
    cfg = parse_config({}, root=Path("."))
    for section in NODE_SECTIONS:
        for s in section.settings:
            assert cfg[s.name] == (None if s.default is ABSENT else s.default), s.name


def test_the_template_holds_every_default_it_does_not_fill_in():
    text = render_template(config_name="node.toml", password_line='password_env = "PW"', code='"src"')
    data = tomllib.loads(text)
    for section in NODE_SECTIONS:
        for s in section.settings:
            if s.default is not ABSENT:
                assert data[section.name][s.key] == s.default, s.name
    assert data["keystore"]["password_env"] == "PW" and data["data"]["code"] == ["src"]


def test_the_template_comments_every_setting_with_its_help():
    text = " ".join(
        line.removeprefix("# ")
        for line in render_template(config_name="node.toml", password_line='password_env = "PW"').splitlines()
        if line.startswith("#")
    )
    for section in NODE_SECTIONS:
        for s in section.settings:
            assert s.describe() in text, s.name


def test_the_template_quotes_the_values_init_fills_in():
    text = render_template(config_name="n.toml", password_line='password_env = "PW"', folder='C:\\data "x"')
    assert tomllib.loads(text)["data"]["folder"] == 'C:\\data "x"'


@pytest.mark.parametrize("cls", _dataclasses(), ids=lambda c: c.__name__)
def test_the_library_dataclasses_take_their_configurable_defaults_from_the_settings(cls):
    for f in dataclasses.fields(cls):
        name = f.metadata.get("setting")
        if name is None:
            assert f.name in LIBRARY_ONLY[cls.__name__], f"{cls.__name__}.{f.name} writes its own default: use setting_field"
        else:
            assert f.default == setting(name).library_default, f"{cls.__name__}.{f.name}"


@pytest.mark.parametrize("command", ["sim", "init"])
def test_the_command_line_options_are_the_settings(command):
    import typer.models

    module = __import__(f"codecoop.cli.{command}", fromlist=[command])
    by_flag = {flag: s for s in settings() for flag in s.flags}
    for name, param in inspect.signature(getattr(module, command)).parameters.items():
        info = param.default
        if name in NOT_SETTINGS[command] or param.annotation in (typer.Context, "typer.Context"):
            continue  # the click context typer passes in is no option
        assert isinstance(info, typer.models.OptionInfo), name
        s = by_flag.get(info.param_decls[0])
        assert s is not None, f"codecoop {command} {info.param_decls[0]} is not a setting: define it in codecoop.settings"
        assert (info.default, info.help) == (option(s.name).default, s.describe()), s.name


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        if "settings" not in path.relative_to(PACKAGE).parts:
            yield path, " ".join(path.read_text(encoding="utf-8").split())


def test_no_help_text_is_written_a_second_time():
    sources = list(_sources())
    for s in settings():
        words = " ".join(s.help.split())
        for path, text in sources:
            assert words not in text, f"{path.relative_to(ROOT)} repeats the help of {s.name}"


def _distinctive(v):
    """Defaults a second copy of would be noticed (not 0, 1, 2, booleans, empty values or absent)."""
    if v is ABSENT or v is None or isinstance(v, bool) or v in ("", []) or isinstance(v, list):
        return False
    return not (isinstance(v, (int, float)) and v == int(v) and -2 <= v <= 2)


#: Where settings are used: (module, class or function to scan; None: the whole module).
CONSUMERS = [
    ("node/config.py", None),
    ("cli/init.py", "init"),
    ("cli/sim.py", "sim"),
    ("training/config.py", "TrainConfig"),
    ("node/node.py", "NodeSettings"),
    ("sim/runner.py", "SimConfig"),
]


@pytest.mark.parametrize(("module", "scope"), CONSUMERS, ids=[m for m, _ in CONSUMERS])
def test_no_default_is_written_where_the_settings_are_used(module, scope):
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    if scope is not None:
        tree = next(n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == scope)
        if isinstance(tree, ast.ClassDef):  # the fields, not the checks after them
            tree = ast.Module([n for n in tree.body if isinstance(n, ast.AnnAssign)], [])
    for fn in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name in NOT_SETTINGS]:
        args = fn.args.args[len(fn.args.args) - len(fn.args.defaults) :]  # connection options have their own definitions
        fn.args.defaults = [d for a, d in zip(args, fn.args.defaults) if a.arg not in NOT_SETTINGS[fn.name]]
    defaults = {(type(s.default), s.default): s.name for s in settings() if _distinctive(s.default)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and not isinstance(node.value, bool) and (type(node.value), node.value) in defaults:
            docstring = isinstance(node.value, str) and re.search(r"\s", node.value)
            assert docstring, f"{module}:{node.lineno} writes {node.value!r}, the default of {defaults[type(node.value), node.value]}"
