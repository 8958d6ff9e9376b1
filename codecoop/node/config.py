"""A node's TOML configuration: one file, every key checked, errors that name the key.

Layout (``codecoop init`` writes it with comments)::

    [chain]       url, deployment
    [store]       api
    [p2p]         listen, bootstrap, federation
    [keystore]    path, password_env | password_file
    [data]        code (folders of private code), folder (journal, store, identity)
    [model]       id, device
    [training]    steps, lr, r, alpha, dropout, batch_size, seq_len, mu, seed, target_modules,
                  dp_clip_norm, dp_noise_multiplier, dp_delta
    [evaluation]  block_size, max_blocks, approve_min_delta, max_update_norm, min_update_change, copy_distance,
                  min_agreement
    [node]        min_improvement, open_rounds, max_rounds, finalize, claim, poll_interval
    [audit]       vote_against_failing_releases, memorization_threshold, memorization_prompts,
                  memorization_max_new_tokens, memorization_samples, memorization_seed

Relative paths are relative to the configuration file. Any value can be overridden from the
command line as ``section.key=value`` (the value is parsed as TOML, falling back to a string).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codecoop.errors import ConfigError

__all__ = ["NodeConfig", "load_config", "parse_config", "TEMPLATE", "render_template"]


def _str(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else "must be a non-empty string"


def _chain(v: Any) -> str | None:
    if not isinstance(v, str) or not (v == "embedded" or v.startswith(("http://", "https://", "ws://", "wss://"))):
        return "must be 'embedded' or a JSON-RPC URL such as http://127.0.0.1:8545"
    return None


def _store(v: Any) -> str | None:
    if not isinstance(v, str) or not (v == "embedded" or v.startswith(("/ip4/", "/ip6/", "/dns", "http://", "https://"))):
        return "must be 'embedded' or an IPFS API address such as /ip4/127.0.0.1/tcp/5001/http"
    return None


def _multiaddr(v: Any) -> str | None:
    return None if isinstance(v, str) and v.startswith(("/ip4/", "/ip6/", "/dns")) else "must be a multiaddr such as /ip4/127.0.0.1/tcp/4001"


def _multiaddrs(v: Any) -> str | None:
    if not isinstance(v, list) or any(_multiaddr(x) for x in v):
        return "must be a list of multiaddrs such as ['/ip4/10.0.0.2/tcp/4001/p2p/12D3Koo...']"
    return None


def _strings(v: Any) -> str | None:
    return None if isinstance(v, list) and all(isinstance(x, str) and x for x in v) else "must be a list of strings"


def _opt_strings(v: Any) -> str | None:
    return None if v == [] or _strings(v) is None else "must be a list of module names (empty: the model's default)"


def _int(lo: int | None = None) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo):
            return "must be an integer" + (f" of at least {lo}" if lo is not None else "")
        return None

    return check


def _num(positive: bool = True, allow_zero: bool = False) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return "must be a number"
        if not math.isfinite(v):  # TOML reads nan and inf as floats; no setting here takes them
            return "must be a number, not nan or inf"
        if positive and (v < 0 or (v == 0 and not allow_zero)):
            return "must be positive" if not allow_zero else "must not be negative"
        return None

    return check


def _cosine(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not -1 <= v <= 1:
        return "must be a number between -1 and 1 (a cosine similarity)"
    return None


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _device(v: Any) -> str | None:
    return None if isinstance(v, str) and (v in ("auto", "cpu", "mps") or v.startswith("cuda")) else "must be auto, cpu, cuda, cuda:N or mps"


_OPTIONAL = object()

#: section -> key -> (default, check). ``_OPTIONAL``: may be absent.
SCHEMA: dict[str, dict[str, tuple[Any, Callable[[Any], str | None]]]] = {
    "chain": {"url": ("embedded", _chain), "deployment": ("deployment.json", _str)},
    "store": {"api": ("embedded", _store)},
    "p2p": {
        "listen": ("/ip4/127.0.0.1/tcp/4001", _multiaddr),
        "bootstrap": ([], _multiaddrs),
        "federation": ("codecoop", _str),
    },
    "keystore": {"path": ("key.json", _str), "password_env": (_OPTIONAL, _str), "password_file": (_OPTIONAL, _str)},
    "data": {"code": (_OPTIONAL, _strings), "folder": ("node-data", _str)},
    "model": {"id": ("tiny", _str), "device": ("auto", _device)},
    "training": {
        "steps": (40, _int(1)),
        "lr": (5e-3, _num()),
        "r": (8, _int(1)),
        "alpha": (16, _int(1)),
        "dropout": (0.05, _num(allow_zero=True)),
        "batch_size": (8, _int(1)),
        "seq_len": (128, _int(2)),
        "mu": (0.0, _num(allow_zero=True)),
        "seed": (0, _int(0)),
        "target_modules": ([], _opt_strings),
        "dp_clip_norm": (0.0, _num(allow_zero=True)),
        "dp_noise_multiplier": (0.0, _num(allow_zero=True)),
        "dp_delta": (1e-5, _num()),
    },
    "evaluation": {
        "block_size": (128, _int(2)),
        "max_blocks": (16, _int(1)),
        "approve_min_delta": (-20_000, _int()),
        "early_stop_z": (3.0, _num(allow_zero=True)),
        "min_blocks": (4, _int(2)),
        "max_update_norm": (1_000.0, _num()),
        "min_update_change": (1e-3, _num(allow_zero=True)),
        "copy_distance": (0.1, _num(allow_zero=True)),
        "min_agreement": (0.05, _cosine),
    },
    "node": {
        "min_improvement": (0, _int()),
        "open_rounds": (False, _bool),
        "max_rounds": (0, _int(0)),
        "finalize": (True, _bool),
        "claim": (True, _bool),
        "poll_interval": (2.0, _num()),
    },
    "audit": {
        "vote_against_failing_releases": (False, _bool),
        "memorization_threshold": (0.05, _num(allow_zero=True)),
        "memorization_prompts": (64, _int(1)),
        "memorization_max_new_tokens": (128, _int(1)),
        "memorization_samples": (1, _int(1)),
        "memorization_seed": (0, _int(0)),
    },
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
            r=t["r"], alpha=t["alpha"], dropout=float(t["dropout"]), lr=float(t["lr"]), steps=t["steps"],
            batch_size=t["batch_size"], seq_len=t["seq_len"], mu=float(t["mu"]), seed=t["seed"],
            target_modules=tuple(t["target_modules"]) or None, progress=False,
            dp_clip_norm=float(t["dp_clip_norm"]) or None, dp_noise_multiplier=float(t["dp_noise_multiplier"]), dp_delta=float(t["dp_delta"]),
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
            train=self.train_config(), eval_block_size=e["block_size"], eval_max_blocks=e["max_blocks"],
            min_improvement_micro=n["min_improvement"], approve_min_delta_micro=e["approve_min_delta"],
            eval_early_stop_z=float(e["early_stop_z"]), eval_min_blocks=e["min_blocks"],
            max_update_norm=float(e["max_update_norm"]), min_update_change=float(e["min_update_change"]),
            copy_distance=float(e["copy_distance"]), min_agreement=float(e["min_agreement"]), open_rounds=n["open_rounds"], finalize=n["finalize"],
            claim=n["claim"], max_rounds=n["max_rounds"] or None,
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
            elif default is not _OPTIONAL:
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


TEMPLATE = """\
# codecoop node configuration. Every value can be overridden on the command line:
#   codecoop node run --config {config_name} --set training.steps=20
# Relative paths are relative to this file.

[chain]
# 'embedded' (an in-process chain, for trying things out) or a JSON-RPC URL.
url = "{chain}"
# The deployment record written by `codecoop chain deploy --out ...`.
deployment = "{deployment}"

[store]
# 'embedded' (objects on local disk under data.folder) or an IPFS HTTP API address.
api = "{store}"

[p2p]
# Where this node's libp2p host listens, and peers to dial at start (members registered on the
# chain are found and dialled automatically).
listen = "{listen}"
bootstrap = []
# Name of the federation's gossip topic; the same for every member.
federation = "codecoop"

[keystore]
# Encrypted Ethereum key (created by `codecoop init`); never plain hex in this file.
path = "{keystore}"
# Where the password comes from: an environment variable, or a file (first line).
{password_line}

[data]
# Folders of your private code (never leaves this machine; only adapters are published).
code = [{code}]
# Journal, local object store and libp2p identity of this node.
folder = "{folder}"

[model]
# The base model the federation's charter names: tiny, smollm2-135m, or a local folder.
id = "{model}"
# auto (CUDA when present), cpu, cuda, cuda:N.
device = "auto"

[training]
# One local LoRA run per round.
steps = 40
lr = 0.005
r = 8
alpha = 16
dropout = 0.05
batch_size = 8
seq_len = 128
# FedProx strength (0: off).
mu = 0.0
seed = 0
# Modules LoRA adapts; empty: the model's default (q_proj and v_proj on Llama-like models).
target_modules = []
# Differential privacy of each update (docs/PRIVACY.md): clip its change to this L2 norm (0: off) and
# add Gaussian noise of std dp_noise_multiplier * dp_clip_norm (from a fresh secret seed per round);
# epsilon is accounted at dp_delta.
dp_clip_norm = 0.0
dp_noise_multiplier = 0.0
dp_delta = 1e-5

[evaluation]
# Peers' updates are judged on this node's held-out code.
block_size = 128
max_blocks = 16
# Approve an update whose loss delta (base minus with update) is at least this, in micro-nats.
approve_min_delta = -20000
# A peer's update is scored block by block (shuffled order, paired with the base's losses) and judged
# as soon as its mean delta is this many standard errors from approve_min_delta; 0 scores every block.
early_stop_z = 3.0
min_blocks = 4
# Refuse updates further than this L2 distance from the round's base.
max_update_norm = 1000.0
# Screening: refuse a free ride (the base itself, or a change below this fraction of the base's L2
# norm) and a copy (a change within this relative L2 distance of an earlier-registered update's).
min_update_change = 0.001
copy_distance = 0.1
# ...and an update whose change has a cosine similarity below this with this node's own update of the
# round (noise, a reversed update); -1 turns the check off.
min_agreement = 0.05

[node]
# Selective update: submit only if the own held-out loss improves by at least this (micro-nats).
min_improvement = 0
# Open the next round when the previous one is done (0: no limit on rounds).
open_rounds = false
max_rounds = 0
# Finalize rounds whose reveal window has passed, and claim rewards.
finalize = true
claim = true
# Seconds between looks at the chain when nothing is due.
poll_interval = 2.0

[audit]
# Before `codecoop dao vote --config ...` votes on a release, audit the proposed model for verbatim
# copies of this node's private code (data.code): `auto` votes against a release whose memorization
# ratio exceeds the threshold, and a vote `for` it is refused.
vote_against_failing_releases = false
# Largest share of generated lines that may be exact clones (>= 6 lines) of your code.
memorization_threshold = 0.05
# Documented functions used as prompts (a seeded sample), tokens generated and samples per prompt.
memorization_prompts = 64
memorization_max_new_tokens = 128
memorization_samples = 1
memorization_seed = 0
"""


def render_template(**values: str) -> str:
    """The commented template with ``values`` filled in (see ``codecoop init``)."""
    return TEMPLATE.format(**values)
