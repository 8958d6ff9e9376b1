"""A node's TOML configuration: one file, every key checked, errors that name the key.

The sections, keys, defaults and checks are the node settings of :mod:`codecoop.settings` (the
table in docs/SETTINGS.md); ``codecoop init`` writes them with comments (:func:`render_template`).
Relative paths are relative to the configuration file. Any value can be overridden from the
command line as ``section.key=value`` (the value is parsed as TOML, falling back to a string).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codecoop.errors import ConfigError
from codecoop.settings import ABSENT, NODE_SECTIONS, setting

__all__ = ["SCHEMA", "NodeConfig", "load_config", "parse_config", "render_template"]

#: section -> key -> (default, check), derived from ``codecoop.settings``. ``ABSENT``: may be left out.
SCHEMA: dict[str, dict[str, tuple[Any, Callable[[Any], str | None]]]] = {
    section.name: {s.key: (s.default, s.check) for s in section.settings} for section in NODE_SECTIONS
}


@dataclass(frozen=True)
class NodeConfig:
    """A validated node configuration: ``values[section][key]``, paths resolved against ``root``."""

    values: Mapping[str, Mapping[str, Any]]
    root: Path
    source: str = "<config>"

    def __getitem__(self, dotted: str) -> Any:
        section, _, key = dotted.partition(".")
        return self.values[section].get(key)

    def library(self, dotted: str) -> Any:
        """A value as the library holds it (``None`` for a setting 0 turns off, tuples for lists)."""
        return setting(dotted).library(self[dotted])

    def path(self, dotted: str) -> Path:
        """A path value, ``~`` expanded and relative to the configuration file's folder."""
        p = Path(str(self[dotted])).expanduser()
        return p if p.is_absolute() else (self.root / p).resolve()

    @property
    def folder(self) -> Path:
        return self.path("data.folder")

    def code_paths(self) -> list[Path]:
        code = self["data.code"]
        if not code:
            raise ConfigError(f"{self.source}: data.code is missing: list the folders of your private code, e.g. code = ['~/src/repo']")
        out = []
        for c in code:
            p = Path(c).expanduser()
            p = p if p.is_absolute() else (self.root / p).resolve()
            if not p.exists():
                raise ConfigError(f"{self.source}: data.code: {c} does not exist")
            out.append(p)
        return out

    def password(self) -> str:
        from codecoop.keys import read_password

        file = self["keystore.password_file"]
        return read_password(env=self["keystore.password_env"], file=self.path("keystore.password_file") if file else None)

    def train_config(self) -> Any:
        from codecoop.training import TrainConfig

        t = self.values["training"]
        return TrainConfig(
            r=t["r"],
            alpha=t["alpha"],
            dropout=float(t["dropout"]),
            lr=float(t["lr"]),
            steps=t["steps"],
            batch_size=t["batch_size"],
            seq_len=t["seq_len"],
            mu=float(t["mu"]),
            seed=t["seed"],
            target_modules=self.library("training.target_modules"),
            progress=False,
            dp_clip_norm=self.library("training.dp_clip_norm"),
            dp_noise_multiplier=float(t["dp_noise_multiplier"]),
            dp_delta=float(t["dp_delta"]),
        )

    def memorization_config(self) -> Any:
        """The memorization audit this node runs on its own code before voting on a release."""
        from codecoop.audit.memorization import MemorizationConfig

        a = self.values["audit"]
        return MemorizationConfig(
            max_prompts=a["memorization_prompts"], max_new_tokens=a["memorization_max_new_tokens"],
            samples_per_prompt=a["memorization_samples"], threshold=float(a["memorization_threshold"]), seed=a["memorization_seed"],
        )  # fmt: skip

    def settings(self) -> Any:
        from codecoop.node.node import NodeSettings

        e, n = self.values["evaluation"], self.values["node"]
        return NodeSettings(
            train=self.train_config(),
            eval_block_size=e["block_size"],
            eval_max_blocks=e["max_blocks"],
            min_improvement_micro=n["min_improvement"],
            approve_min_delta_micro=e["approve_min_delta"],
            eval_early_stop_z=float(e["early_stop_z"]),
            eval_min_blocks=e["min_blocks"],
            max_update_norm=float(e["max_update_norm"]),
            min_update_change=float(e["min_update_change"]),
            copy_distance=float(e["copy_distance"]),
            min_relative_change=float(e["min_relative_change"]),
            copy_similarity=float(e["copy_similarity"]),
            insecure_shift_max=float(e["insecure_shift_max"]),
            min_agreement=float(e["min_agreement"]),
            open_rounds=n["open_rounds"],
            finalize=n["finalize"],
            claim=n["claim"],
            max_rounds=self.library("node.max_rounds"),
            replicas=n["replicas"],
            replica_wait=float(n["replica_wait"]),
        )


def _override(text: str) -> tuple[str, str, Any]:
    dotted, sep, raw = text.partition("=")
    section, dot, key = dotted.strip().partition(".")
    if not sep or not dot or not key:
        raise ConfigError(f"override {text!r} must look like section.key=value, e.g. training.steps=20")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except RecursionError:
        raise ConfigError(f"override {text!r:.80} nests its value too deeply to parse") from None
    return section, key, value


def parse_config(data: Mapping[str, Any], *, root: Path, source: str = "<config>", overrides: Sequence[str] = ()) -> NodeConfig:
    """Validate a parsed TOML document (plus ``section.key=value`` overrides) into a :class:`NodeConfig`.

    Raises
    ------
    ConfigError
        Naming the first unknown section or key, or the key whose value is invalid and what it must be.
    """
    merged: dict[str, dict[str, Any]] = {}
    for section, table in data.items():
        if section not in SCHEMA:
            raise ConfigError(f"{source}: unknown section [{section}]; known sections: {', '.join(SCHEMA)}")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{source}: {section} must be a table ([{section}])")
        merged[section] = dict(table)
    for item in overrides:
        section, key, value = _override(item)
        if section not in SCHEMA:
            raise ConfigError(f"override {item!r}: unknown section [{section}]; known sections: {', '.join(SCHEMA)}")
        merged.setdefault(section, {})[key] = value
    values: dict[str, dict[str, Any]] = {}
    for section, keys in SCHEMA.items():
        given = merged.get(section, {})
        unknown = sorted(set(given) - set(keys))
        if unknown:
            raise ConfigError(f"{source}: unknown key {section}.{unknown[0]}; [{section}] accepts {', '.join(keys)}")
        out: dict[str, Any] = {}
        for key, (default, check) in keys.items():
            if key in given:
                problem = check(given[key])
                if problem:
                    raise ConfigError(f"{source}: {section}.{key} {problem} (got {given[key]!r})")
                out[key] = given[key]
            elif default is not ABSENT:
                out[key] = default
            else:
                out[key] = None
        values[section] = out
    ks = values["keystore"]
    if ks["password_env"] and ks["password_file"]:
        raise ConfigError(f"{source}: keystore.password_env and keystore.password_file are both set; keep one")
    return NodeConfig(values, root, source)


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> NodeConfig:
    """Read and validate a node configuration file."""
    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist; write one with `codecoop init`") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path} nests arrays or tables too deeply to parse") from None
    return parse_config(data, root=path.resolve().parent, source=str(path), overrides=overrides)


_HEADER = """\
codecoop node configuration. Every value can be overridden on the command line:
  codecoop node run --config {config_name} --set training.steps=20
Relative paths are relative to this file; every setting, its default and unit: docs/SETTINGS.md."""

#: The values ``codecoop init`` fills in: argument of :func:`render_template` -> setting.
_FILLED = {
    "chain": "chain.url",
    "deployment": "chain.deployment",
    "store": "store.api",
    "listen": "p2p.listen",
    "keystore": "keystore.path",
    "folder": "data.folder",
    "model": "model.id",
}


def render_template(*, config_name: str, password_line: str, code: str = "", **values: str) -> str:
    """The commented configuration, with ``values`` (see ``_FILLED``) in place of the defaults.

    ``password_line`` is the whole ``password_env = "..."`` or ``password_file = "..."`` line and
    ``code`` the inside of the ``data.code`` list (``'"a", "b"'``), as ``codecoop init`` writes them.
    """
    from codecoop.settings.render import template, toml_value

    unknown = sorted(set(values) - set(_FILLED))
    if unknown:
        raise TypeError(f"render_template() got unknown values {unknown}; it fills in {sorted(_FILLED)}")
    lines = {_FILLED[arg]: f"{setting(_FILLED[arg]).key} = {toml_value(v)}" for arg, v in values.items()}
    lines[f"keystore.{password_line.partition('=')[0].strip()}"] = password_line
    lines["data.code"] = f"code = [{code}]"
    return template(_HEADER.format(config_name=config_name), lines)
