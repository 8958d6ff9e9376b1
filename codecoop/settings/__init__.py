"""Every node and simulation setting, defined once: name, type, default, unit, help and validator.

Everything else is derived from these definitions (the pattern of peft's config dataclasses): the
node's TOML schema and ``section.key=value`` overrides (``codecoop.node.config``), the commented
template ``codecoop init`` writes, the options of ``codecoop sim`` and ``codecoop init``, the
defaults of ``TrainConfig``, ``NodeSettings`` and ``SimConfig`` (through :func:`setting_field`),
and the table in docs/SETTINGS.md (``python -m codecoop.settings --markdown``). A test fails when a
default or a help text is written anywhere else.

Sections ``chain`` to ``audit`` are the node's TOML configuration; section ``sim`` holds what only
``codecoop sim`` takes. Importing this package is cheap: typer loads only when an option is built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from codecoop.settings import checks
from codecoop.settings.checks import EMBEDDED, Check

__all__ = [
    "ABSENT",
    "NODE_SECTIONS",
    "SECTIONS",
    "Section",
    "Setting",
    "option",
    "setting",
    "setting_field",
    "settings",
]


class _Absent:
    """The default of a setting that may be left out (it has no value unless given)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


def _same(v: Any) -> Any:
    return v


def _zero_is_none(v: Any) -> Any:
    """TOML has no null: 0 turns a setting off, which the library spells ``None``."""
    return v or None


def _zero_is_none_float(v: Any) -> Any:
    return float(v) or None


def _tuple_or_none(v: Any) -> Any:
    return tuple(v) or None


@dataclass(frozen=True)
class Setting:
    """One setting.

    ``type`` is what a TOML file or command line gives; ``check`` says what is wrong with a value;
    ``library`` turns a value into what ``TrainConfig``, ``NodeSettings`` or ``SimConfig`` hold
    (``0`` -> ``None`` for a setting that 0 turns off, a list -> a tuple). ``flags`` are its options
    on the command line (``codecoop sim``, ``codecoop init``), if it has any.
    """

    section: str
    key: str
    type: Any
    default: Any
    help: str
    check: Check
    unit: str = ""
    flags: tuple[str, ...] = ()
    library: Callable[[Any], Any] = _same

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def library_default(self) -> Any:
        return None if self.default is ABSENT else self.library(self.default)

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` for this setting, or ``None``."""
        return self.check(value)

    def describe(self) -> str:
        """The help text with the unit, as the command line and the template show it."""
        return f"{self.help} Unit: {self.unit}." if self.unit else self.help


@dataclass(frozen=True)
class Section:
    name: str
    help: str
    settings: tuple[Setting, ...]


def _s(key: str, type: Any, default: Any, help: str, check: Check, **extra: Any) -> Callable[[str], Setting]:
    """One setting of the section :func:`_section` puts it in."""
    return lambda section: Setting(section, key, type, default, help, check, **extra)


def _section(name: str, help: str, *rows: Callable[[str], Setting]) -> Section:
    return Section(name, help, tuple(row(name) for row in rows))


_int, _num = checks.integer, checks.number

SECTIONS: tuple[Section, ...] = (
    _section(
        "chain",
        "The federation's chain.",
        _s("url", str, EMBEDDED, "'embedded' (an in-process chain, for trying things out) or an http(s) JSON-RPC URL.", checks.chain_url),
        _s("deployment", str, "deployment.json", "The deployment record written by `codecoop chain deploy --out ...`.", checks.string),
    ),
    _section(
        "store",
        "The content store adapters and models travel through.",
        _s(
            "api",
            str,
            EMBEDDED,
            "'embedded' (objects on local disk under data.folder) or an IPFS HTTP API address.",
            checks.store_api,
            flags=("--store",),
        ),
    ),
    _section(
        "p2p",
        "Announcements between members.",
        _s("listen", str, "/ip4/127.0.0.1/tcp/4001", "Where this node's libp2p host listens.", checks.multiaddr, flags=("--listen",)),
        _s(
            "bootstrap",
            list[str],
            [],
            "Peers to dial at start (members registered on the chain are found and dialled automatically).",
            checks.multiaddrs,
        ),
        _s("federation", str, "codecoop", "Name of the federation's gossip topic; the same for every member.", checks.string),
    ),
    _section(
        "keystore",
        "The node's key; the password comes from an environment variable or a file (first line), never from this file.",
        _s("path", str, "key.json", "Encrypted Ethereum key (created by `codecoop init`); never plain hex in this file.", checks.string),
        _s("password_env", str, ABSENT, "Environment variable the keystore password is read from.", checks.string),
        _s("password_file", str, ABSENT, "File the keystore password is read from (its first line).", checks.string),
    ),
    _section(
        "data",
        "This node's private data.",
        _s(
            "code",
            list[str],
            ABSENT,
            "Folders of your private code (never leaves this machine; only adapters are published).",
            checks.strings,
            flags=("--code",),
        ),
        _s("folder", str, "node-data", "Journal, local object store and libp2p identity of this node.", checks.string),
    ),
    _section(
        "model",
        "The base model.",
        _s(
            "id",
            str,
            "tiny",
            "Base model the federation's charter names: tiny, smollm2-135m, or a local folder.",
            checks.string,
            flags=("--model", "-m"),
        ),
        _s("device", str, "auto", "auto (CUDA when present), cpu, cuda, cuda:N or mps.", checks.device),
    ),
    _section(
        "training",
        "One local LoRA run per round.",
        _s("steps", int, 40, "Local training steps per round.", _int(1), flags=("--steps",)),
        _s("lr", float, 5e-3, "Learning rate of the local LoRA run.", _num(), flags=("--lr",)),
        _s("r", int, 8, "LoRA rank.", _int(1)),
        _s("alpha", int, 16, "LoRA alpha (the adapter's output is scaled by alpha / r).", _int(1)),
        _s("dropout", float, 0.05, "LoRA dropout.", _num(allow_zero=True)),
        _s("batch_size", int, 8, "Blocks per optimiser step.", _int(1)),
        _s("seq_len", int, 128, "Length of a training block.", _int(2), unit="tokens"),
        _s("mu", float, 0.0, "FedProx strength (0: off).", _num(allow_zero=True)),
        _s("seed", int, 0, "Seed of the local training run.", _int(0)),
        _s(
            "target_modules",
            list[str],
            [],
            "Modules LoRA adapts; empty: the model's default (q_proj and v_proj on Llama-like models).",
            checks.module_names,
            library=_tuple_or_none,
        ),
        _s(
            "dp_clip_norm",
            float,
            0.0,
            "Differential privacy of every update (docs/PRIVACY.md): clip its change to this L2 norm (0: off).",
            _num(allow_zero=True),
            flags=("--dp-clip-norm",),
            library=_zero_is_none_float,
        ),
        _s(
            "dp_noise_multiplier",
            float,
            0.0,
            "Gaussian noise of std dp_noise_multiplier * dp_clip_norm added to every update (from a fresh secret seed per round).",
            _num(allow_zero=True),
        ),
        _s("dp_delta", float, 1e-5, "The delta at which the epsilon of differential privacy is accounted.", _num()),
    ),
    _section(
        "evaluation",
        "Peers' updates are judged on this node's held-out code.",
        _s("block_size", int, 128, "Length of a held-out evaluation block.", _int(2), unit="tokens"),
        _s("max_blocks", int, 16, "Held-out blocks of the own validation split used to judge an update.", _int(1)),
        _s(
            "approve_min_delta",
            int,
            -20_000,
            "Approve an update whose loss delta (base minus with update) on the own held-out data is at least this "
            "(negative tolerates a small loss on data unlike the peer's).",
            _int(),
            unit="micro-nats",
        ),
        _s(
            "early_stop_z",
            float,
            3.0,
            "A peer's update is scored block by block (shuffled order, paired with the base's losses) and judged as soon as "
            "its mean delta is this many standard errors from approve_min_delta; 0 scores every block.",
            _num(allow_zero=True),
        ),
        _s("min_blocks", int, 4, "Blocks scored before an update may be judged early.", _int(2)),
        _s("max_update_norm", float, 1_000.0, "Refuse updates further than this L2 distance from the round's base.", _num()),
        _s(
            "min_update_change",
            float,
            1e-3,
            "Screening: refuse a free ride (the base itself, or a change below this fraction of the base's L2 norm).",
            _num(allow_zero=True),
        ),
        _s(
            "copy_distance",
            float,
            0.1,
            "Screening: refuse a copy (a change within this relative L2 distance of an earlier-registered update's).",
            _num(allow_zero=True),
        ),
        _s(
            "min_relative_change",
            float,
            0.25,
            "Screening: refuse a free ride whose change is below this fraction of the median change of the round's "
            "updates (honest changes measured on tiny: at least 0.85 of the median); 0 turns the check off.",
            _num(allow_zero=True),
        ),
        _s(
            "copy_similarity",
            float,
            0.9,
            "Screening: refuse a copy whose change has a cosine similarity of at least this with an earlier-registered "
            "update's (a scaled or noisy copy; honest pairs measured on tiny: at most 0.38); 1 turns the check off.",
            checks.cosine,
        ),
        _s(
            "insecure_shift_max",
            float,
            0.4,
            "Backdoor probe: refuse an update that raises, by more than this on average, the log-odds of the insecure "
            "over the safe form of security-sensitive calls (verify=False, shell=True, ...: codecoop.training.insecure) on "
            "this node's probe prompts, against the round's base (measured on tiny, 40 steps: honest updates -0.13 to "
            "+0.15, a backdoor trained on 90% poison +0.79); 0 turns the probe off.",
            _num(allow_zero=True),
            unit="nats",
        ),
        _s(
            "min_agreement",
            float,
            0.05,
            "Screening: refuse an update whose change has a cosine similarity below this with this node's own update of "
            "the round (noise, a reversed update); -1 turns the check off.",
            checks.cosine,
        ),
    ),
    _section(
        "node",
        "How this node takes part.",
        _s(
            "min_improvement",
            int,
            0,
            "Selective update: submit only if the own held-out loss improves by at least this.",
            _int(),
            unit="micro-nats",
            flags=("--min-improvement",),
        ),
        _s("open_rounds", bool, False, "Open the next round when the previous one is done.", checks.boolean),
        _s("max_rounds", int, 0, "With open_rounds, open no round past this id (0: no limit).", _int(0), library=_zero_is_none),
        _s("finalize", bool, True, "Finalize rounds whose reveal window has passed.", checks.boolean),
        _s("claim", bool, True, "Claim this node's rewards.", checks.boolean),
        _s(
            "replicas",
            int,
            1,
            "Before disclosing its committed update, wait until this many peers hold a copy (0: disclose at once), so the "
            "round can go on if this node goes offline right after.",
            _int(0),
        ),
        _s(
            "replica_wait",
            float,
            60.0,
            "Longest wait for those copies; the update is disclosed when it passes (or when the disclose window is about to close).",
            _num(),
            unit="s",
        ),
        _s("poll_interval", float, 2.0, "Time between looks at the chain when nothing is due.", _num(), unit="s"),
    ),
    _section(
        "audit",
        "Before `codecoop dao vote --config ...` votes on a release, audit the proposed model for verbatim copies of "
        "this node's private code (data.code).",
        _s(
            "vote_against_failing_releases",
            bool,
            False,
            "`auto` votes against a release whose memorization ratio exceeds the threshold, and a vote `for` it is refused.",
            checks.boolean,
        ),
        _s(
            "memorization_threshold",
            float,
            0.05,
            "Largest share of generated lines that may be exact clones (>= 6 lines) of your code.",
            _num(allow_zero=True),
        ),
        _s("memorization_prompts", int, 64, "Documented functions used as prompts (a seeded sample).", _int(1)),
        _s("memorization_max_new_tokens", int, 128, "Tokens generated per prompt.", _int(1)),
        _s("memorization_samples", int, 1, "Samples generated per prompt.", _int(1)),
        _s("memorization_seed", int, 0, "Seed of the prompt sample and of generation.", _int(0)),
    ),
    _section(
        "sim",
        "What only `codecoop sim` takes (the rest of its options are the node settings above).",
        _s("orgs", int, 3, "Number of organisations, each a participant node.", _int(2), flags=("--orgs", "-n")),
        _s("rounds", int, 3, "Number of federated rounds.", _int(1), flags=("--rounds", "-r")),
        _s(
            "strategy",
            str,
            "fedavg",
            "Aggregation strategy with parameters, e.g. fedavg, fedmedian, 'fedtrimmedavg:beta=0.2', 'fedadam:eta=0.01'.",
            checks.string,
            flags=("--strategy", "-s"),
        ),
        _s(
            "partition",
            str,
            "by-repository",
            "How code is split: by-repository, uniform, quantity-imbalanced, label-imbalanced.",
            checks.string,
            flags=("--partition", "-p"),
        ),
        _s(
            "data",
            list[str],
            [],
            "Folder of Python code to split among organisations (repeatable; default: installed projects).",
            checks.strings_or_empty,
            flags=("--data",),
            library=tuple,
        ),
        _s("max_files_per_org", int, 150, "Files of code given to each organisation.", _int(1)),
        _s(
            "test_fraction",
            float,
            0.15,
            "Share of each organisation's training files held out as its test split, which no node trains on, judges "
            "with or decides to submit by; the report's global loss is measured there (the validation loss beside it is "
            "on the files the nodes judged with).",
            checks.open_fraction,
        ),
        _s("confirmations", int, 2, "Confirmations a round's aggregate needs (at most the number of organisations).", _int(1)),
        _s(
            "baselines",
            bool,
            True,
            "Also train each organisation alone, for comparison.",
            checks.boolean,
            flags=("--baselines/--no-baselines",),
        ),
        _s("seed", int, 0, "Seed of partitioning and training.", _int(0), flags=("--seed",)),
        _s(
            "byzantine",
            list[str],
            [],
            "K:ATTACK: the last K organisations run ATTACK (repeatable): sign-flip, scale100, noise, free-rider, "
            "free-rider-exact, plagiarist, plagiarist-exact, free-rider-adaptive, plagiarist-adaptive, alie, ipm, min-max, "
            "min-sum, collude, liar.",
            checks.strings_or_empty,
            flags=("--byzantine",),
            library=tuple,
        ),
        _s(
            "dp_noise_multiplier",
            float,
            1.0,
            "With --dp-clip-norm: Gaussian noise of this many clip norms; each node reports the epsilon it has spent.",
            _num(allow_zero=True),
            flags=("--dp-noise-multiplier",),
        ),
        _s("out", str, "sim-report", "Folder for report.json and report.md.", checks.string, flags=("--out",)),
        _s(
            "transport",
            str,
            "in-process",
            "How the simulated nodes reach each other: in-process (copies between their stores, fast) or libp2p "
            "(a real libp2p host per organisation on 127.0.0.1, direct fetch of every peer's update).",
            checks.one_of("in-process", "libp2p"),
            flags=("--transport",),
        ),
        _s(
            "processes",
            bool,
            False,
            "Run the multi-process devnet instead: a hardhat node, the IPFS daemon and one `codecoop node run` per organisation.",
            checks.boolean,
            flags=("--processes",),
        ),
        _s(
            "workdir", str, None, "Keep stores and journals here (default: a temporary folder).", checks.optional_path, flags=("--workdir",)
        ),
    ),
)

#: The sections of a node's TOML configuration (``codecoop init`` writes them, ``load_config`` reads them).
NODE_SECTIONS: tuple[Section, ...] = tuple(s for s in SECTIONS if s.name != "sim")

_BY_NAME: dict[str, Setting] = {s.name: s for section in SECTIONS for s in section.settings}


def settings() -> Iterator[Setting]:
    """Every setting, section by section."""
    return iter(_BY_NAME.values())


def setting(name: str) -> Setting:
    """The setting ``section.key``."""
    return _BY_NAME[name]


def setting_field(name: str) -> Any:
    """A dataclass field whose default is the setting's (as the library holds it), e.g. in ``TrainConfig``."""
    s = setting(name)
    return dataclasses.field(default=s.library_default, metadata={"setting": s.name, "help": s.help})


def option(name: str, *flags: str) -> Any:
    """A typer option for the setting: its default, its help (with the unit) and its flags (or ``flags``)."""
    import typer

    s = setting(name)
    if s.default is ABSENT:
        default: Any = [] if s.type == list[str] else None
    else:
        default = list(s.default) if isinstance(s.default, list) else s.default
    return typer.Option(default, *(flags or s.flags), help=s.describe())
