"""``codecoop experiment``: centralized, single-client, federated and incremental training compared.

For each partition of the same pool of files among N organisations, the harness trains

* **centralized**: one model on all organisations' training data pooled;
* **single**: each organisation alone on its own data;
* **federated**: R rounds in which every organisation trains S steps from the global adapter and the
  updates are merged by a real :mod:`codecoop.aggregation` strategy (``fedprox`` is FedAvg
  aggregation with the client-side proximal term of :class:`~codecoop.training.TrainConfig`);
* **incremental**: the organisations one after the other, each continuing from its predecessor's
  adapter, in every order (N! orders, or the first ``orders`` of them).

Compute is matched by optimizer steps of the same batch (``batch_size`` sequences of ``seq_len``
tokens), hence by training tokens: a federated run costs R x N x S steps in total; the centralized
model and every incremental order get the same R x N x S steps; each single-client model gets its
own share, R x S steps, so the N single-client models together cost the same R x N x S steps (each
organisation spends alone exactly what it spends in the federation).

Federated training runs in-process through the training and aggregation APIs, not through the
on-chain node: rounds, votes and rewards do not change what is learnt when every update is accepted,
and ``codecoop sim`` covers the protocol. Every model is then measured on the union of the
organisations' validation splits (and per organisation): perplexity and next-token accuracy; pass@1
on a HumanEval subset; and the memorization ratio of :mod:`codecoop.audit.memorization` against each
organisation's own training files, against the files planted in several organisations (duplicated)
and against the others (unique).

Results are cached under ``<out>/.cache/<fingerprint>/`` as they are produced (adapters as
safetensors, metrics as JSON), so an interrupted run resumes where it stopped, and a run with other
evaluation settings reuses the trained adapters.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from codecoop.errors import ConfigError
from codecoop.sim.experiment_report import write_json, write_report

__all__ = [
    "SETTINGS",
    "ExperimentConfig",
    "ExperimentResult",
    "Leakage",
    "Quality",
    "RunResult",
    "StrategyChoice",
    "parse_strategies",
    "run_experiment",
]

#: The settings compared, in table order.
SETTINGS: tuple[str, ...] = ("centralized", "single", "federated", "incremental")
#: Partitions this experiment accepts (label-imbalanced needs labels the experiment does not vary).
PARTITIONS: tuple[str, ...] = ("uniform", "quantity-imbalanced", "by-repository")
#: The client-side strategy: FedAvg aggregation with the FedProx term, mu by default.
FEDPROX_MU = 0.1
#: All linear layers of a Llama: on a model as small as tiny, LoRA on q/v alone barely moves the loss.
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

Log = Callable[[str], None]


@dataclass(frozen=True)
class StrategyChoice:
    """One federated variant: a label for the tables, the aggregation spec, the FedProx ``mu``."""

    label: str
    spec: str
    mu: float = 0.0


def parse_strategies(text: str | Sequence[str]) -> tuple[StrategyChoice, ...]:
    """Parse ``fedavg,fedmedian,fedprox:mu=0.5,fedyogi:eta=0.05,tau=0.01`` into strategy choices.

    A comma-separated piece holding ``=`` but no ``:`` continues the previous strategy's parameters.
    ``fedprox[:mu=...]`` is FedAvg aggregation with the client-side proximal term.

    Raises
    ------
    ConfigError
        For an unknown strategy or parameter (the message lists what exists), or a repeated label.
    """
    from codecoop.aggregation.spec import parse_strategy

    pieces = [p.strip() for p in (text.split(",") if isinstance(text, str) else text) if p.strip()]
    items: list[str] = []
    for piece in pieces:
        if "=" in piece and ":" not in piece and items:
            items[-1] += "," + piece
        else:
            items.append(piece)
    if not items:
        raise ConfigError("--strategies is empty; give e.g. 'fedavg,fedmedian,fedtrimmedavg,fedprox,fedyogi'")
    out: list[StrategyChoice] = []
    for item in items:
        spec = parse_strategy(item)
        if spec.name == "fedprox":
            params = spec.kwargs
            mu = float(params.pop("mu", FEDPROX_MU))
            if params or mu <= 0:
                raise ConfigError(f"strategy {item!r}: fedprox takes one parameter, mu > 0 (e.g. 'fedprox:mu=0.1')")
            out.append(StrategyChoice(str(spec) if spec.params else "fedprox", "fedavg", mu))
        else:
            spec.build()  # an unknown name or parameter fails here, before anything slow
            out.append(StrategyChoice(str(spec), str(spec)))
    labels = [c.label for c in out]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"--strategies names a strategy twice: {', '.join(labels)}")
    return tuple(out)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that decides an experiment; the defaults are the full run on ``tiny`` (about 45 min here).

    Attributes
    ----------
    rounds, steps:
        Federated rounds, and optimizer steps per organisation per round; every model is matched to
        ``rounds * orgs * steps`` steps (single-client models to their share, see the module doc).
    files:
        Size of the pool of source files split among the organisations (the same pool for every
        partition, so every partition holds the same data).
    shared_files, shared_copies:
        Files taken out of the pool and put into the training data of ``shared_copies``
        organisations each (rotating), to measure whether duplicated code is memorized more.
    orders:
        Incremental orders to run: ``None`` for all N!; otherwise that many, rotations first (see
        :meth:`incremental_orders`).
    memorization_prompts, memorization_tokens:
        Prompts per audit and new tokens per prompt of the memorization audit (0 prompts: skipped).
        A clone is at least 6 whole lines, so a generation needs well over 60 tokens to hold one.
    duplicate_audits:
        Also audit every model against the planted files alone and the other files alone. The
        per-organisation audits already say which leaked blocks come from planted files.
    humaneval:
        HumanEval problems for greedy pass@1 (0: skipped; ``tiny`` solves none, so it is refused).
    target_modules:
        LoRA targets; ``None`` means all linear layers on ``tiny`` and q/v elsewhere.
    """

    model: str = "tiny"
    orgs: int = 3
    rounds: int = 3
    steps: int = 6
    partitions: tuple[str, ...] = PARTITIONS
    strategies: tuple[StrategyChoice, ...] = field(
        default_factory=lambda: parse_strategies("fedavg,fedmedian,fedtrimmedavg,fedprox,fedyogi")
    )
    settings: tuple[str, ...] = SETTINGS
    orders: int | None = None
    humaneval: int = 0
    humaneval_tokens: int = 128
    memorization_prompts: int = 8
    memorization_tokens: int = 64
    duplicate_audits: bool = True
    seed: int = 0
    files: int = 45
    shared_files: int = 6
    shared_copies: int = 2
    max_file_bytes: int = 12_000
    data: tuple[str, ...] = ()
    lr: float = 5e-3
    r: int = 8
    target_modules: tuple[str, ...] | None = None
    batch_size: int = 8
    seq_len: int = 128
    eval_blocks: int = 16
    validation_fraction: float = 0.15

    def __post_init__(self) -> None:
        if self.orgs < 2:
            raise ConfigError("--orgs must be at least 2: the settings compare organisations with each other")
        for key in ("rounds", "steps", "files", "batch_size", "seq_len", "eval_blocks", "r"):
            if getattr(self, key) < 1:
                raise ConfigError(f"--{key.replace('_', '-')} must be at least 1, got {getattr(self, key)}")
        if self.memorization_prompts < 0 or self.humaneval < 0 or self.shared_files < 0:
            raise ConfigError("--memorization-prompts, --humaneval and --shared-files must not be negative")
        if self.memorization_prompts and self.memorization_tokens < 8:
            raise ConfigError("--memorization-tokens must be at least 8: a clone spans at least 6 generated lines")
        if self.files < self.orgs:
            raise ConfigError(f"--files must be at least --orgs ({self.orgs}): every organisation needs a file")
        if self.shared_files and not 2 <= self.shared_copies <= self.orgs:
            raise ConfigError(f"--shared-copies must be between 2 and --orgs ({self.orgs}), got {self.shared_copies}")
        bad = [p for p in self.partitions if p not in PARTITIONS]
        if bad or not self.partitions:
            raise ConfigError(f"unknown partition {', '.join(bad) or '(none given)'}; choose from {', '.join(PARTITIONS)}")
        bad = [s for s in self.settings if s not in SETTINGS]
        if bad or not self.settings:
            raise ConfigError(f"unknown setting {', '.join(bad) or '(none given)'}; choose from {', '.join(SETTINGS)}")
        if len(set(self.partitions)) != len(self.partitions) or len(set(self.settings)) != len(self.settings):
            raise ConfigError("--partitions and --settings must not repeat a name")
        if "federated" in self.settings and not self.strategies:
            raise ConfigError("the federated setting needs at least one strategy in --strategies")
        if self.orders is not None and not 1 <= self.orders <= math.factorial(self.orgs):
            raise ConfigError(f"--orders must be between 1 and {math.factorial(self.orgs)} (the orders of {self.orgs} organisations)")
        if self.humaneval and self.model == "tiny":
            raise ConfigError(
                "--humaneval needs a real code model (--model smollm2-135m): tiny is a 4M-parameter model "
                "pre-trained for 150 steps and solves no HumanEval problem, so its pass@1 is 0 by construction; use --humaneval 0"
            )
        if not 0.0 < self.validation_fraction < 1.0:
            raise ConfigError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")

    @property
    def budget_steps(self) -> int:
        """Optimizer steps of every centralized, federated and incremental model: rounds x orgs x steps."""
        return self.rounds * self.orgs * self.steps

    @property
    def tokens_per_step(self) -> int:
        """Training tokens of one optimizer step (one batch of whole blocks, no padding)."""
        return self.batch_size * self.seq_len

    def lora_targets(self) -> tuple[str, ...] | None:
        if self.target_modules is not None:
            return self.target_modules
        return ALL_LINEAR if self.model == "tiny" else None

    def train_config(self, steps: int, seed: int, mu: float = 0.0) -> Any:
        from codecoop.training import TrainConfig

        return TrainConfig(
            r=self.r,
            alpha=2 * self.r,
            lr=self.lr,
            steps=steps,
            batch_size=self.batch_size,
            seq_len=self.seq_len,
            seed=seed,
            mu=mu,
            target_modules=self.lora_targets(),
            progress=False,
        )

    def incremental_orders(self) -> list[tuple[int, ...]]:
        """The orders the incremental setting runs: all N! in lexicographic order, or the first ``orders``
        of the rotations of (0, 1, ..., N-1), then of its reverse, then the rest, so that N orders put
        every organisation once in every position (a Latin square) and position effects do not
        mix with organisation effects."""
        n = self.orgs
        every = list(itertools.permutations(range(n)))
        if self.orders is None or self.orders >= len(every):
            return every
        rotations = [tuple((i + s) % n for i in range(n)) for s in range(n)]
        preferred = rotations + [tuple(reversed(r)) for r in rotations]
        ranked = list(dict.fromkeys(preferred + every))
        return ranked[: self.orders]

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["strategies"] = [asdict(s) for s in self.strategies]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def training_key(self) -> dict[str, Any]:
        """The settings a trained adapter depends on (its cache key)."""
        skip = {
            "partitions",
            "strategies",
            "settings",
            "orders",
            "humaneval",
            "humaneval_tokens",
            "memorization_prompts",
            "memorization_tokens",
            "duplicate_audits",
            "eval_blocks",
        }
        d = self.to_json()
        return {f.name: d[f.name] for f in fields(self) if f.name not in skip}


# --------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Quality:
    """Held-out quality: mean next-token loss (nats), its perplexity, next-token accuracy, tokens scored."""

    loss: float
    perplexity: float
    token_accuracy: float
    n_tokens: int

    @classmethod
    def combine(cls, parts: Sequence[Quality]) -> Quality:
        """Token-weighted union of evaluations on disjoint token sets."""
        n = sum(p.n_tokens for p in parts)
        loss = sum(p.loss * p.n_tokens for p in parts) / n
        acc = sum(p.token_accuracy * p.n_tokens for p in parts) / n
        return cls(loss, math.exp(min(loss, 700.0)), acc, n)


@dataclass(frozen=True)
class Leakage:
    """One memorization audit: generated lines inside exact clones of the audited files, over all lines.

    ``from_shared`` counts the lines of the leaked blocks whose source is a planted (duplicated)
    file, to compare with the planted files' share of the audited data.
    """

    ratio: float
    memorized_lines: int
    generated_lines: int
    from_shared: int = 0

    @classmethod
    def combine(cls, parts: Sequence[Leakage]) -> Leakage:
        """The pooled ratio: memorized lines over generated lines of several audits."""
        mem = sum(p.memorized_lines for p in parts)
        gen = sum(p.generated_lines for p in parts)
        return cls(mem / gen if gen else 0.0, mem, gen, sum(p.from_shared for p in parts))


@dataclass(frozen=True)
class RunResult:
    """One trained model (or the untrained base) of one partition, and everything measured on it.

    ``setting`` is ``base``, ``centralized``, ``single``, ``federated`` or ``incremental``;
    ``variant`` names the organisation (single), the strategy (federated) or the order
    (incremental, organisations joined by ``>``). ``steps`` and ``tokens`` are the optimizer steps
    and training tokens behind the model; ``memorization`` maps each audited organisation to its
    audit, ``duplicated``/``unique`` audit the planted shared files and all the other training files.
    """

    partition: str
    setting: str
    variant: str
    steps: int
    tokens: int
    train_s: float
    validation: Quality
    per_org: dict[str, Quality]
    memorization: dict[str, Leakage] = field(default_factory=dict)
    duplicated: Leakage | None = None
    unique: Leakage | None = None
    pass_at_1: float | None = None
    humaneval_passed: dict[str, int] = field(default_factory=dict)
    order: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.setting} {self.variant}".strip()

    @property
    def leakage(self) -> Leakage | None:
        """Pooled memorization over the audited organisations, or None when none was audited."""
        return Leakage.combine(list(self.memorization.values())) if self.memorization else None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["order"] = list(self.order)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunResult:
        def leak(x: Any) -> Leakage | None:
            return Leakage(**x) if x is not None else None

        return cls(
            partition=d["partition"],
            setting=d["setting"],
            variant=d["variant"],
            steps=int(d["steps"]),
            tokens=int(d["tokens"]),
            train_s=float(d["train_s"]),
            validation=Quality(**d["validation"]),
            per_org={k: Quality(**v) for k, v in d["per_org"].items()},
            memorization={k: Leakage(**v) for k, v in d["memorization"].items()},
            duplicated=leak(d.get("duplicated")),
            unique=leak(d.get("unique")),
            pass_at_1=d.get("pass_at_1"),
            humaneval_passed=dict(d.get("humaneval_passed", {})),
            order=tuple(d.get("order", ())),
        )


@dataclass(frozen=True)
class OrgSummary:
    """What one organisation holds in one partition."""

    name: str
    train_files: int
    validation_files: int
    shared_files: int
    train_tokens: int
    validation_tokens: int
    repositories: tuple[str, ...]
    train_lines: int = 0
    shared_lines: int = 0


@dataclass
class ExperimentResult:
    """All runs of an experiment plus what is needed to read them (written as results.json)."""

    config: ExperimentConfig
    command: str
    data: dict[str, list[OrgSummary]] = field(default_factory=dict)
    shared: list[str] = field(default_factory=list)
    runs: list[RunResult] = field(default_factory=list)
    wall_s: float = 0.0
    device: str = ""
    base_model: dict[str, Any] = field(default_factory=dict)
    #: Every invocation that wrote into this experiment's cache: wall seconds and what it computed
    #: (a rerun that only re-reads the cache computes nothing).
    invocations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def compute_wall_s(self) -> float:
        """Wall seconds of the invocations that trained or measured something."""
        return sum(i["wall_s"] for i in self.invocations if i["computed"]) or self.wall_s

    def run(self, partition: str, setting: str, variant: str = "") -> RunResult | None:
        return next((r for r in self.runs if (r.partition, r.setting, r.variant) == (partition, setting, variant)), None)

    def to_json(self) -> dict[str, Any]:
        """The runs and their setting as plain data (``experiment_report.result_json`` adds the findings)."""
        return {
            "command": self.command,
            "config": self.config.to_json(),
            "compute": {
                "budget_steps": self.config.budget_steps,
                "tokens_per_step": self.config.tokens_per_step,
                "budget_tokens": self.config.budget_steps * self.config.tokens_per_step,
                "single_client_steps": self.config.rounds * self.config.steps,
                "rule": "centralized, every federated strategy and every incremental order: rounds x orgs x steps "
                "optimizer steps of batch_size x seq_len tokens; each single-client model: rounds x steps, "
                "so the single-client models together cost the same",
            },
            "base_model": self.base_model,
            "device": self.device,
            "data": {p: [asdict(o) | {"repositories": list(o.repositories)} for o in orgs] for p, orgs in self.data.items()},
            "shared_files": self.shared,
            "runs": [r.to_json() for r in self.runs],
            "wall_s": round(self.wall_s, 1),
            "invocations": self.invocations,
        }


# --------------------------------------------------------------------------------------- data
@dataclass
class _Org:
    name: str
    corpus: Any
    shared: list[Any]  # the planted Documents this organisation holds


@dataclass
class _Partition:
    name: str
    orgs: list[_Org]
    pooled: Any  # every organisation's training documents in one corpus (centralized)
    shared_docs: list[Any]
    unique_docs: list[Any]


def _candidate_files(sources: Sequence[Path], max_bytes: int) -> list[Path]:
    """Python files worth an organisation's data: with a documented function (the memorization audit's
    prompts), not huge, not trivial."""
    from codecoop.audit.clones import function_prompts

    out = []
    for s in sources:
        for f in sorted(Path(s).rglob("*.py")):
            try:
                size = f.stat().st_size
                if not 400 <= size <= max_bytes:
                    continue
                text = f.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if function_prompts(f, text):
                out.append(f)
    return sorted(set(out))


def select_files(cfg: ExperimentConfig) -> tuple[Path | None, list[Path], list[Path]]:
    """The pool of files to partition and the files planted in several organisations, both seeded.

    Returns ``(root, pool, shared)``: ``root`` is the folder whose top-level entries are the
    repositories (site-packages by default).
    """
    from codecoop.sim.data import default_sources

    sources = [Path(p).expanduser().resolve() for p in cfg.data] or default_sources()
    candidates = _candidate_files(sources, cfg.max_file_bytes)
    need = cfg.files + cfg.shared_files
    if len(candidates) < need:
        raise ConfigError(
            f"only {len(candidates)} Python files with documented functions (at most {cfg.max_file_bytes} bytes) under "
            f"{', '.join(map(str, sources))}; --files + --shared-files asks for {need}: lower them or add --data folders"
        )
    chosen = random.Random(cfg.seed).sample(candidates, need)
    shared = chosen[: cfg.shared_files]
    pool = sorted(chosen[cfg.shared_files :])
    roots = {s.parent for s in sources}
    root = roots.pop() if len(roots) == 1 else None
    return root, pool, sorted(shared)


def _corpus(train: Sequence[Any], validation: Sequence[Any], seed: int, tokenizer: Any) -> Any:
    from codecoop.training import CodeCorpus, CorpusStats

    return CodeCorpus(tuple(train), tuple(validation), CorpusStats.of(train, validation), seed).tokenized(tokenizer)


def build_partition(
    cfg: ExperimentConfig, name: str, root: Path | None, pool: list[Path], shared: list[Path], tokenizer: Any
) -> _Partition:
    """Split ``pool`` by ``name``, plant the shared files, and build every corpus the settings need."""
    from codecoop.training import CodeCorpus, Document, partition, repository_of

    if name == "by-repository":
        repos = {repository_of(f, root) for f in pool}
        if len(repos) < cfg.orgs:
            raise ConfigError(f"--partitions by-repository needs {cfg.orgs} repositories; the pool holds {len(repos)}: raise --files")
    parts = partition(pool, name, cfg.orgs, cfg.seed, root=root)
    shared_docs = [Document(f, f.read_text(encoding="utf-8"), repository_of(f, root)) for f in shared]
    orgs: list[_Org] = []
    for i, files in enumerate(parts):
        own = CodeCorpus.from_files(files, seed=cfg.seed, validation_fraction=cfg.validation_fraction, root=root)
        planted = [d for k, d in enumerate(shared_docs) if (i - k) % cfg.orgs < cfg.shared_copies]
        orgs.append(_Org(f"org-{i}", _corpus(own.train + tuple(planted), own.validation, cfg.seed, tokenizer), planted))
    train = [d for o in orgs for d in o.corpus.train]
    validation = [d for o in orgs for d in o.corpus.validation]
    shared_paths = {d.path for d in shared_docs}
    unique = [d for o in orgs for d in o.corpus.train if d.path not in shared_paths]
    return _Partition(name, orgs, _corpus(train, validation, cfg.seed, tokenizer), shared_docs, unique)


def _lines(docs: Sequence[Any]) -> int:
    """Non-blank lines: what the memorization ratio counts, roughly (it also drops comment-only lines)."""
    return sum(1 for d in docs for line in d.text.splitlines() if line.strip())


def _summary(p: _Partition) -> list[OrgSummary]:
    return [
        OrgSummary(
            o.name,
            o.corpus.stats.train_files,
            o.corpus.stats.validation_files,
            len(o.shared),
            o.corpus.stats.train_tokens,
            o.corpus.stats.validation_tokens,
            tuple(sorted({d.repository for d in o.corpus.documents if d not in o.shared})),
            _lines(o.corpus.train),
            _lines(o.shared),
        )
        for o in p.orgs
    ]


# --------------------------------------------------------------------------------------- harness
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


class Experiment:
    """Runs the grid of an :class:`ExperimentConfig`, caching each trained adapter and each measurement.

    Parameters
    ----------
    cache:
        Folder of the cache (``<out>/.cache`` from the CLI); ``None`` keeps nothing between runs.
    log:
        Receives one line per step of progress.
    """

    def __init__(self, config: ExperimentConfig, *, cache: Path | None, log: Log = lambda m: None, command: str = ""):
        self.cfg = config
        self.cache = cache
        self.log = log
        self.command = command
        self.base: Any = None
        self._v0: Any = None
        self._fingerprint = ""
        self._current = ""  # the partition being run
        self._computed = 0  # trainings and measurements not served from the cache
        self._memo: dict[str, Any] = {}

    # ------------------------------------------------------------------ cache
    def _path(self, kind: str, partition: str, run_id: str, suffix: str) -> Path | None:
        if self.cache is None:
            return None
        return self.cache / self._fingerprint / kind / _slug(partition) / f"{_slug(run_id)}{suffix}"

    def _load_adapter(self, partition: str, run_id: str) -> tuple[Any, dict[str, Any]] | None:
        from codecoop.training import Adapter

        key = f"{partition}/{run_id}"
        if key in self._memo:
            return self._memo[key]
        path = self._path("adapters", partition, run_id, ".safetensors")
        if path is None or not path.is_file() or not path.with_suffix(".json").is_file():
            return None
        found = (Adapter.load(path, self.base), json.loads(path.with_suffix(".json").read_text()))
        self._memo[key] = found
        return found

    def _save_adapter(self, partition: str, run_id: str, adapter: Any, info: dict[str, Any]) -> None:
        from codecoop.training.cache import atomic_write_bytes

        self._memo[f"{partition}/{run_id}"] = (adapter, info)
        path = self._path("adapters", partition, run_id, ".safetensors")
        if path is not None:
            adapter.save(path)
            atomic_write_bytes(path.with_suffix(".json"), json.dumps(info, sort_keys=True).encode())

    def _measure(self, partition: str, run_id: str, section: str, key: dict[str, Any], compute: Callable[[], Any]) -> Any:
        """``compute()`` unless the cache holds this section of this run's metrics under the same key."""
        from codecoop.training.cache import atomic_write_bytes

        path = self._path("metrics", partition, run_id, ".json")
        stored: dict[str, Any] = json.loads(path.read_text()) if path is not None and path.is_file() else {}
        entry = stored.get(section)
        if entry is not None and entry.get("key") == key:
            return entry["value"]
        value = compute()
        self._computed += 1
        if path is not None:
            stored[section] = {"key": key, "value": value}
            atomic_write_bytes(path, json.dumps(stored, sort_keys=True, indent=1).encode())
        return value

    # ------------------------------------------------------------------ training
    def _train(self, corpus: Any, steps: int, seed: int, start: Any, mu: float = 0.0) -> Any:
        from codecoop.training import train_lora

        return train_lora(self.base, corpus, self.cfg.train_config(steps, seed, mu), start=start)

    def _trained(self, part: _Partition, run_id: str, train: Callable[[], Any], steps: int) -> tuple[Any, dict[str, Any]]:
        found = self._load_adapter(part.name, run_id)
        if found is not None:
            return found
        began = time.perf_counter()
        adapter = train()
        self._computed += 1
        info = {"steps": steps, "tokens": steps * self.cfg.tokens_per_step, "train_s": round(time.perf_counter() - began, 2)}
        self._save_adapter(part.name, run_id, adapter, info)
        return adapter, info

    def _seed(self, *parts: int) -> int:
        return self.cfg.seed * 1_000_003 + sum(p * 1009**i for i, p in enumerate(parts, 1))

    def centralized(self, part: _Partition) -> tuple[Any, dict[str, Any]]:
        """One model on the pooled data, for the whole budget."""
        steps = self.cfg.budget_steps
        return self._trained(part, "centralized", lambda: self._train(part.pooled, steps, self._seed(1), self._v0), steps)

    def single(self, part: _Partition, i: int) -> tuple[Any, dict[str, Any]]:
        """Organisation ``i`` alone for its share of the budget (rounds x steps)."""
        steps = self.cfg.rounds * self.cfg.steps
        org = part.orgs[i]
        return self._trained(part, f"single-{org.name}", lambda: self._train(org.corpus, steps, self._seed(2, i), self._v0), steps)

    def federated(self, part: _Partition, choice: StrategyChoice) -> tuple[Any, dict[str, Any]]:
        """R rounds: every organisation trains S steps from the global adapter, the strategy merges the updates."""
        from codecoop.aggregation import Update
        from codecoop.aggregation.spec import parse_strategy
        from codecoop.storage.cid import cid_of
        from codecoop.training import Adapter

        cfg = self.cfg

        def train() -> Any:
            strategy = parse_strategy(choice.spec).build()
            current, state = self._v0, None
            for r in range(cfg.rounds):
                updates = []
                for i, org in enumerate(part.orgs):
                    local = self._train(org.corpus, cfg.steps, self._seed(3, r, i), current, choice.mu)
                    updates.append(Update(cid_of(local.to_bytes(include_training=False)), local.tensors, local.num_samples))
                agg = strategy.aggregate(updates, state, base=current.tensors)
                state = agg.state
                current = Adapter(
                    dict(agg.tensors), self.base.model_id, self.base.weights_hash, current.lora, {"round": r + 1, "strategy": choice.label}
                )
                self.log(f"  [{part.name}] {choice.label}: round {r + 1}/{cfg.rounds} aggregated")
            return current

        return self._trained(part, f"federated-{choice.label}", train, cfg.budget_steps)

    def incremental(self, part: _Partition, order: tuple[int, ...]) -> tuple[Any, dict[str, Any]]:
        """The organisations one after another, each for rounds x steps; shared prefixes are trained once."""
        cfg = self.cfg
        per_org = cfg.rounds * cfg.steps
        adapter, info = self._v0, {"steps": 0, "tokens": 0, "train_s": 0.0}
        for n in range(1, len(order) + 1):
            prefix = order[:n]
            start, before = adapter, info
            seed = self._seed(4, *[p + 1 for p in prefix])
            corpus = part.orgs[prefix[-1]].corpus
            stage_name = "stage-" + "-".join(map(str, prefix))
            train = lambda: self._train(corpus, per_org, seed, start)  # noqa: B023, E731 (called at once, below)
            adapter, stage = self._trained(part, stage_name, train, per_org)
            info = {
                "steps": before["steps"] + stage["steps"],
                "tokens": before["tokens"] + stage["tokens"],
                "train_s": round(before["train_s"] + stage["train_s"], 2),
            }
        return adapter, info

    # ------------------------------------------------------------------ measurement
    def quality(self, part: _Partition, run_id: str, adapter: Any) -> tuple[Quality, dict[str, Quality]]:
        from codecoop.training import evaluate

        def compute() -> dict[str, Any]:
            per = {}
            for org in part.orgs:
                if org.corpus.stats.validation_tokens < 2:
                    continue
                m = evaluate(self.base, adapter, org.corpus, block_size=self.cfg.seq_len, max_blocks=self.cfg.eval_blocks)
                per[org.name] = asdict(Quality(m.loss, m.perplexity, m.token_accuracy, m.n_tokens))
            return per

        per_org = {
            k: Quality(**v)
            for k, v in self._measure(
                part.name, run_id, "quality", {"eval_blocks": self.cfg.eval_blocks, "seq_len": self.cfg.seq_len}, compute
            ).items()
        }
        return Quality.combine(list(per_org.values())), per_org

    def _audit(self, part: _Partition, run_id: str, section: str, adapter: Any, documents: Sequence[Any]) -> Leakage | None:
        cfg = self.cfg
        if not cfg.memorization_prompts or not documents:
            return None
        from codecoop.audit.memorization import MemorizationConfig, audit_memorization

        shared = {str(d.path) for d in part.shared_docs}

        def compute() -> dict[str, Any]:
            report = audit_memorization(
                self.base,
                adapter,
                list(documents),
                MemorizationConfig(max_prompts=cfg.memorization_prompts, max_new_tokens=cfg.memorization_tokens, seed=cfg.seed),
            )
            from_shared = sum(sum(1 for line in leak.lines if line.strip()) for leak in report.leaks if leak.source in shared)
            return {
                "ratio": float(report.ratio),
                "memorized_lines": int(report.memorized_lines),
                "generated_lines": int(report.generated_lines),
                "from_shared": min(from_shared, int(report.memorized_lines)),
            }

        key = {
            "prompts": cfg.memorization_prompts,
            "tokens": cfg.memorization_tokens,
            "seed": cfg.seed,
            "docs": _digest(sorted(str(d.path) for d in documents)),
        }
        return Leakage(**self._measure(part.name, run_id, section, key, compute))

    def humaneval(self, run_id: str, adapter: Any) -> tuple[float | None, dict[str, int]]:
        cfg = self.cfg
        if not cfg.humaneval:
            return None, {}
        from codecoop.training import pass_at_k

        def compute() -> dict[str, Any]:
            res = pass_at_k(
                self.base, adapter, problems=cfg.humaneval, n=1, k=(1,), temperature=0.0, max_new_tokens=cfg.humaneval_tokens, seed=cfg.seed
            )
            return {"pass_at_1": res.scores[1], "passed": res.passed}

        partition = "all" if run_id == "base" else self._current
        value = self._measure(partition, run_id, "humaneval", {"problems": cfg.humaneval, "tokens": cfg.humaneval_tokens}, compute)
        return float(value["pass_at_1"]), {k: int(v) for k, v in value["passed"].items()}

    def measure(
        self,
        part: _Partition,
        setting: str,
        variant: str,
        run_id: str,
        adapter: Any,
        info: dict[str, Any],
        *,
        audit: Sequence[int],
        order: tuple[str, ...] = (),
    ) -> RunResult:
        """Every metric of one model: quality, memorization per audited organisation, duplicated/unique, pass@1."""
        began = time.perf_counter()
        validation, per_org = self.quality(part, run_id, adapter)
        memorization: dict[str, Leakage] = {}
        for i in audit:
            org = part.orgs[i]
            leak = self._audit(part, run_id, f"memorization-{org.name}", adapter, org.corpus.train)
            if leak is not None:
                memorization[org.name] = leak
        duplicated = unique = None
        if self.cfg.duplicate_audits and setting in ("centralized", "federated", "incremental", "base") and part.shared_docs:
            duplicated = self._audit(part, run_id, "memorization-duplicated", adapter, part.shared_docs)
            unique = self._audit(part, run_id, "memorization-unique", adapter, part.unique_docs)
        pass1, passed = self.humaneval(run_id, adapter)
        result = RunResult(
            part.name,
            setting,
            variant,
            int(info["steps"]),
            int(info["tokens"]),
            float(info["train_s"]),
            validation,
            per_org,
            memorization,
            duplicated,
            unique,
            pass1,
            passed,
            order,
        )
        leak = result.leakage
        self.log(
            f"[{part.name}] {result.label}: {result.steps} steps ({info['train_s']:.0f} s training); "
            f"validation ppl {validation.perplexity:.2f}, accuracy {validation.token_accuracy:.3f}"
            + (f"; memorization {leak.ratio:.3f} ({leak.memorized_lines}/{leak.generated_lines} lines)" if leak else "")
            + (f"; pass@1 {pass1:.2f}" if pass1 is not None else "")
            + f"; measured in {time.perf_counter() - began:.0f} s"
        )
        return result

    # ------------------------------------------------------------------ the grid
    def run(self, on_result: Callable[[ExperimentResult], None] = lambda r: None) -> ExperimentResult:
        """Train and measure every run of the grid, calling ``on_result`` after each (to write partial reports)."""
        from codecoop.node import initial_adapter
        from codecoop.training import load_base

        cfg = self.cfg
        began = time.perf_counter()
        if cfg.memorization_prompts:
            try:
                import codecoop.audit.memorization  # noqa: F401  (fail before anything slow)
            except ImportError as exc:
                raise ConfigError(
                    f"the memorization audit is not available ({exc}); run with --memorization-prompts 0 to skip it"
                ) from None
        self.log(f"loading base model {cfg.model!r}")
        self.base = load_base(cfg.model)
        self._v0 = initial_adapter(self.base, cfg.train_config(1, cfg.seed))
        self._fingerprint = _digest(cfg.training_key() | {"weights": self.base.weights_hash})
        root, pool, shared = select_files(cfg)
        result = ExperimentResult(
            cfg,
            self.command,
            shared=[_display(f, root) for f in shared],
            device=self.base.plan.description,
            base_model={
                "id": cfg.model,
                "parameters": self.base.num_parameters(),
                "weights_sha256": self.base.weights_hash,
                "lora_parameters": self._v0.num_parameters(),
                "lora_targets": list(self._v0.lora.target_modules),
            },
        )
        self.log(
            f"{len(pool)} files to partition, {len(shared)} planted in {cfg.shared_copies} organisations each; "
            f"budget {cfg.budget_steps} steps x {cfg.tokens_per_step} tokens per model; cache {self.cache}"
        )
        names = [f"org-{i}" for i in range(cfg.orgs)]
        everyone = list(range(cfg.orgs))
        for pname in cfg.partitions:
            self._current = pname
            part = build_partition(cfg, pname, root, pool, shared, self.base.tokenizer)
            result.data[pname] = _summary(part)
            self.log(
                f"[{pname}] "
                + "; ".join(
                    f"{o.name}: {o.train_files} train files ({o.train_tokens:,} tokens), {o.validation_files} validation"
                    for o in result.data[pname]
                )
            )

            def add(run: RunResult) -> None:
                result.runs.append(run)
                result.wall_s = time.perf_counter() - began
                on_result(result)

            add(self.measure(part, "base", "", "base", None, {"steps": 0, "tokens": 0, "train_s": 0.0}, audit=everyone))
            if "centralized" in cfg.settings:
                add(self.measure(part, "centralized", "", "centralized", *self.centralized(part), audit=everyone))
            if "single" in cfg.settings:
                for i in everyone:
                    add(self.measure(part, "single", names[i], f"single-{names[i]}", *self.single(part, i), audit=[i]))
            if "federated" in cfg.settings:
                for choice in cfg.strategies:
                    add(
                        self.measure(
                            part, "federated", choice.label, f"federated-{choice.label}", *self.federated(part, choice), audit=everyone
                        )
                    )
            if "incremental" in cfg.settings:
                for order in cfg.incremental_orders():
                    label = ">".join(names[i] for i in order)
                    add(
                        self.measure(
                            part,
                            "incremental",
                            label,
                            "incremental-" + "-".join(map(str, order)),
                            *self.incremental(part, order),
                            audit=everyone,
                            order=tuple(names[i] for i in order),
                        )
                    )
        result.wall_s = time.perf_counter() - began
        result.invocations = self._record_invocation(result.wall_s)
        return result

    def _record_invocation(self, wall_s: float) -> list[dict[str, Any]]:
        """Append this invocation to the cache's log and return the whole log."""
        entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "wall_s": round(wall_s, 1), "computed": self._computed}
        if self.cache is None:
            return [entry]
        from codecoop.training.cache import atomic_write_bytes

        path = self.cache / self._fingerprint / "invocations.json"
        log = json.loads(path.read_text()) if path.is_file() else []
        log.append(entry)
        atomic_write_bytes(path, json.dumps(log, indent=1).encode())
        return log


def _display(path: Path, root: Path | None) -> str:
    return str(path.relative_to(root)) if root is not None and path.is_relative_to(root) else str(path)


def run_experiment(
    config: ExperimentConfig, out: Path | None = None, *, log: Log = lambda m: None, command: str = "", plots: bool = True
) -> ExperimentResult:
    """Run the whole grid and, with ``out``, write results.json, README.md and the plots there.

    The cache lives in ``out/.cache``; the partial results.json is rewritten after every run.
    """
    experiment = Experiment(config, cache=out / ".cache" if out is not None else None, log=log, command=command)
    result = experiment.run(on_result=(lambda r: write_json(r, out)) if out is not None else (lambda r: None))
    if out is not None:
        write_report(result, out, plots=plots)
    return result
