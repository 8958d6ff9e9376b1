"""``codecoop sim``: many organisations on one machine, through full rounds on the real contracts.

One embedded chain (eth-tester) with the real contract suite, one real :class:`LocalStore` per
organisation, a transport between them (in-process copies between their stores, or with
``transport="libp2p"`` a real libp2p host per organisation on 127.0.0.1 that fetches every peer's
update by direct fetch), one shared base model, real LoRA training and the federation's real
aggregation. Each organisation is a :class:`~codecoop.node.Node`, exactly the
state machine ``codecoop node run`` drives; the simulation steps the nodes in turn and, whenever
none has anything left to do, mines the embedded chain to the end of the current window.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codecoop.chain.units import to_tokens
from codecoop.errors import ConfigError, MembershipEnded, TrainingError
from codecoop.settings import setting_field
from codecoop.sim.report import OrgReport, RoundReport, SimReport

__all__ = ["SimConfig", "Simulation", "run_simulation"]

#: Seconds between looks while a node waits for its peers to copy its offered update (libp2p transport).
_COPY_POLL_S = 0.05


@dataclass(frozen=True)
class SimConfig:
    """Settings of one simulation; the defaults are the README's main job (about 5 minutes on 2 CPU cores).

    Each field's default is the setting named beside it (``codecoop.settings``, docs/SETTINGS.md): the
    node's where a simulated node does the same, section ``sim`` for the rest. LoRA alpha is ``2 * r``
    and the evaluation block is ``seq_len`` long.
    """

    orgs: int = setting_field("sim.orgs")
    rounds: int = setting_field("sim.rounds")
    strategy: str = setting_field("sim.strategy")
    model: str = setting_field("model.id")
    partition: str = setting_field("sim.partition")
    data: tuple[str, ...] = setting_field("sim.data")
    steps: int = setting_field("training.steps")
    lr: float = setting_field("training.lr")
    r: int = setting_field("training.r")
    batch_size: int = setting_field("training.batch_size")
    seq_len: int = setting_field("training.seq_len")
    target_modules: tuple[str, ...] | None = setting_field("training.target_modules")
    eval_blocks: int = setting_field("evaluation.max_blocks")
    max_files_per_org: int | None = setting_field("sim.max_files_per_org")
    test_fraction: float = setting_field("sim.test_fraction")
    min_improvement_micro: int = setting_field("node.min_improvement")
    approve_min_delta_micro: int = setting_field("evaluation.approve_min_delta")
    confirmations: int = setting_field("sim.confirmations")
    baselines: bool = setting_field("sim.baselines")
    seed: int = setting_field("sim.seed")
    workdir: str | None = setting_field("sim.workdir")
    byzantine: tuple[str, ...] = setting_field("sim.byzantine")  # codecoop.sim.byzantine
    dp_clip_norm: float | None = setting_field("training.dp_clip_norm")  # codecoop.training.dp
    dp_noise_multiplier: float = setting_field("training.dp_noise_multiplier")
    transport: str = setting_field("sim.transport")
    #: ``False``: screening lets every update through (``codecoop.node.screening.SCREENING_OFF``), for
    #: runs that must reach aggregation whatever a few training steps make of an update's direction
    screening: bool = True

    def __post_init__(self) -> None:
        if self.orgs < 2:
            raise ConfigError("--orgs must be at least 2 (a federation needs peers to vote on updates)")
        if self.rounds < 1:
            raise ConfigError("--rounds must be at least 1")
        if self.steps < 1:
            raise ConfigError("--steps must be at least 1")
        if self.dp_clip_norm is not None and not self.dp_clip_norm > 0:
            raise ConfigError(f"--dp-clip-norm must be positive, got {self.dp_clip_norm} (0 turns differential privacy off)")
        if self.transport not in ("in-process", "libp2p"):
            raise ConfigError(f"--transport must be in-process or libp2p, got {self.transport!r}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"the test fraction must be between 0 and 1, got {self.test_fraction}")
        if not self.dp_noise_multiplier >= 0:
            raise ConfigError(f"--dp-noise-multiplier must not be negative, got {self.dp_noise_multiplier}")

    def train_config(self) -> Any:
        from codecoop.training import TrainConfig

        return TrainConfig(
            r=self.r,
            alpha=2 * self.r,
            lr=self.lr,
            steps=self.steps,
            batch_size=self.batch_size,
            seq_len=self.seq_len,
            seed=self.seed,
            target_modules=self.target_modules,
            progress=False,
            dp_clip_norm=self.dp_clip_norm,
            dp_noise_multiplier=self.dp_noise_multiplier,
        )


Log = Callable[[str], None]


@dataclass
class Hooks:
    """Where a simulation reports progress (the CLI draws it with rich; tests stay quiet)."""

    log: Log = lambda message: None
    on_event: Callable[[Any], None] = lambda event: None
    on_train_step: Callable[[str, Any], None] = lambda org, info: None
    on_round: Callable[[RoundReport], None] = lambda report: None


@dataclass
class _Org:
    name: str
    node: Any
    corpus: Any  # what the node has: training files, and the validation files it judges and selects with
    test: Any  # a corpus whose validation split is the organisation's test files, which its node never sees
    projects: list[str]
    baseline: Any = None
    gas: dict[int, int] = field(default_factory=dict)
    minted: dict[int, int] = field(default_factory=dict)


class Simulation:
    """Set up once (:meth:`setup`), then :meth:`run_round` R times; :meth:`run` does both."""

    def __init__(self, config: SimConfig, hooks: Hooks | None = None):
        self.config = config
        self.hooks = hooks or Hooks()
        self.orgs: list[_Org] = []
        self.chain: Any = None
        self.deployment: Any = None
        self.base: Any = None
        self.report: SimReport | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._reports: dict[int, RoundReport] = {}
        self._started: dict[int, float] = {}
        self._fetched_before: dict[int, dict[str, int]] = {}  # round -> org -> bytes fetched before it opened
        self._hosts: list[Any] = []  # libp2p hosts (transport "libp2p")
        self._peers: dict[str, tuple[str, tuple[str, ...]]] = {}  # address -> (peer id, multiaddrs), once all joined

    # ------------------------------------------------------------------ setup
    def setup(self) -> SimReport:
        from codecoop.aggregation.spec import parse_strategy
        from codecoop.chain import FederationParams, connect, deploy
        from codecoop.node import InProcessNetwork, Journal, NodeSettings
        from codecoop.node.screening import SCREENING_OFF
        from codecoop.node.transport import FetchCounters
        from codecoop.sim.byzantine import assign_attacks, node_factories, parse_byzantine
        from codecoop.sim.data import default_sources, organisation_files
        from codecoop.storage import LocalStore
        from codecoop.training import CodeCorpus, load_base

        cfg, log = self.config, self.hooks.log
        began = time.perf_counter()
        parse_strategy(cfg.strategy).build()  # a bad strategy fails before anything slow
        byzantine = parse_byzantine(cfg.byzantine, cfg.orgs)
        factories = node_factories(byzantine, cfg.orgs, cfg.seed)
        for i, attack in enumerate(assign_attacks(byzantine, cfg.orgs)):
            if attack is not None:
                log(f"org-{i} is Byzantine: {attack}")
        train = cfg.train_config()
        if cfg.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="codecoop-sim-")
        work = Path(cfg.workdir or self._tmp.name)  # type: ignore[union-attr]

        log(f"loading base model {cfg.model!r} (tiny is built and cached on first use, 1-2 min)")
        self.base = load_base(cfg.model)
        sources = [Path(p).expanduser() for p in cfg.data] or default_sources()
        parts = organisation_files(sources, cfg.orgs, cfg.partition, cfg.seed, max_files=cfg.max_files_per_org)
        corpora = []
        for i, files in enumerate(parts):
            try:
                corpus, test = CodeCorpus.from_files(files, seed=cfg.seed, validation_fraction=0.15).hold_out(
                    cfg.test_fraction, self.base.tokenizer
                )
            except TrainingError as exc:
                raise ConfigError(f"org-{i}: {exc}") from exc
            corpora.append((corpus, test))
            projects = sorted({d.repository for d in corpus.documents + test.documents})
            log(
                f"org-{i}: {len(files)} files from {', '.join(projects)}: {corpus.stats.train_tokens:,} training / "
                f"{corpus.stats.validation_tokens:,} validation / {test.stats.validation_tokens:,} test tokens"
            )

        self.chain = connect("embedded")
        n = cfg.orgs
        window = 2 * n + 10  # every transaction mines a block on the embedded chain
        params = FederationParams(
            submit_window=window,
            disclose_window=window,
            commit_window=window,
            reveal_window=window,
            confirm_window=window,
            confirmations=min(cfg.confirmations, n),
            aggregation_strategy=cfg.strategy,
            base_model_id=cfg.model,
            base_weights_hash="0x" + self.base.weights_hash,
        )
        log("compiling and deploying the contracts on the embedded chain")
        self.deployment = deploy(self.chain, params)
        network = InProcessNetwork()
        settings = NodeSettings(
            train=train,
            eval_block_size=cfg.seq_len,
            eval_max_blocks=cfg.eval_blocks,
            min_improvement_micro=cfg.min_improvement_micro,
            approve_min_delta_micro=cfg.approve_min_delta_micro,
            **({} if cfg.screening else SCREENING_OFF),
        )
        for i, (corpus, test) in enumerate(corpora):
            name = f"org-{i}"
            account = self.chain.new_account()
            store = LocalStore(work / name / "store")
            journal = Journal(work / name / "journal.json", deployment=self.deployment.addresses["RoundManager"])
            counters = FetchCounters.from_json(journal.network)
            if cfg.transport == "libp2p":
                transport = self._libp2p_transport(work / name, account, store, counters)
            else:
                transport = network.attach(account.address, store, counters)
            node = factories[i](
                name=name,
                account=account,
                deployment=self.deployment,
                store=store,
                transport=transport,
                base=self.base,
                corpus=corpus,
                settings=settings,
                journal=journal,
                on_event=self._event,
                on_train_step=lambda info, name=name: self.hooks.on_train_step(name, info),
            )
            node.check_charter()
            if cfg.transport == "libp2p":
                host = transport.host
                node.ensure_member(host.peer_id, tuple(host.addrs))
            else:
                node.ensure_member(peer_id=f"sim-{name}")
            self.orgs.append(_Org(name, node, corpus, test, sorted({d.repository for d in corpus.documents + test.documents})))
        if self._hosts:
            self._connect_hosts()
        version0 = self.orgs[0].node.global_adapter(None)
        initial, initial_validation = self.global_loss(version0), self.global_loss(version0, split="validation")
        log(f"global test loss of version 0: {initial:.4f} (perplexity {math.exp(initial):.2f}); validation {initial_validation:.4f}")
        self.report = SimReport(
            settings={k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
            orgs=[
                OrgReport(
                    o.name,
                    o.node.address,
                    o.projects,
                    o.corpus.stats.train_files,
                    o.corpus.stats.validation_files,
                    o.corpus.stats.train_tokens,
                    o.corpus.stats.validation_tokens,
                    o.test.stats.validation_files,
                    o.test.stats.validation_tokens,
                )
                for o in self.orgs
            ],
            initial_loss=initial,
            initial_validation_loss=initial_validation,
            setup_s=time.perf_counter() - began,
        )
        return self.report

    def _event(self, event: Any) -> None:
        org = next((o for o in self.orgs if o.name == event.node), None)
        if org is not None:
            if "gas" in event.data:
                org.gas[event.round] = org.gas.get(event.round, 0) + int(event.data["gas"])
            if event.kind == "claimed":
                org.minted[event.round] = org.minted.get(event.round, 0) + int(event.data["minted"])
        self.hooks.on_event(event)

    def _libp2p_transport(self, folder: Path, account: Any, store: Any, counters: Any) -> Any:
        """A started libp2p host on a free 127.0.0.1 port serving ``store``, as the node's transport.

        The registry is read once every organisation has joined (``_peers``): the hosts' own threads
        never touch the embedded chain, which is not thread-safe.
        """
        from codecoop.node.transport import P2PTransport
        from codecoop.p2p import P2PConfig, P2PHost

        config = P2PConfig(
            federation="sim-" + self.deployment.addresses["RoundManager"][2:12].lower(),
            identity_path=folder / "libp2p.key",
            listen="/ip4/127.0.0.1/tcp/0",
            fetch_timeout=120.0,
        )
        host = P2PHost(config, account, store=store, authorize=lambda a: self._peers.get(a.sender, ("",))[0] == a.peer).start()
        self._hosts.append(host)
        return P2PTransport(host, store, lambda: [(a, p, addrs) for a, (p, addrs) in self._peers.items()], counters=counters)

    def _connect_hosts(self) -> None:
        """Dial every host from every later one, so fetches and gossip need no discovery."""
        self._peers = {o.node.address: (o.node.transport.host.peer_id, tuple(o.node.transport.host.addrs)) for o in self.orgs}
        for j, later in enumerate(self._hosts):
            for earlier in self._hosts[:j]:
                later.connect(earlier.addrs[0])
        self.hooks.log(f"libp2p: {len(self._hosts)} hosts on 127.0.0.1, each connected to every other")

    # ------------------------------------------------------------------ evaluation
    def global_loss(self, adapter: Any, split: str = "test") -> float:
        """Token-weighted loss of ``adapter`` over every organisation's test split (``split="test"``: files no node
        trains, judges or selects with), or over the validation splits the nodes judged with (``"validation"``)."""
        from codecoop.training import evaluate

        if split not in ("test", "validation"):
            raise ValueError(f"split must be test or validation, got {split!r}")
        total = tokens = 0.0
        for o in self.orgs:
            corpus = o.test if split == "test" else o.corpus
            m = evaluate(self.base, adapter, corpus, block_size=self.config.seq_len, max_blocks=self.config.eval_blocks)
            total += m.loss * m.n_tokens
            tokens += m.n_tokens
        return total / tokens

    def _baselines(self, round_id: int) -> dict[str, float]:
        """Train each organisation alone for one more round's steps and measure it on the global test split."""
        from codecoop.training import Adapter, train_lora

        out = {}
        for o in self.orgs:
            entry = o.node.journal.rounds.get(1)
            if o.baseline is None and round_id == 1 and entry is not None and entry.trained_cid:
                # round 1 trains from version 0 in both settings: the submitted adapter is the baseline
                o.baseline = Adapter.from_bytes(o.node.store.get(entry.trained_cid), self.base)
            else:
                start = o.baseline if o.baseline is not None else o.node.global_adapter(None)
                self.hooks.log(f"{o.name}: single-client baseline, {self.config.steps} more steps alone")
                o.baseline = train_lora(
                    self.base,
                    o.corpus,
                    self.config.train_config(),
                    start=start,
                    on_step=lambda info, name=o.name: self.hooks.on_train_step(f"{name} alone", info),
                )
            out[o.name] = self.global_loss(o.baseline)
        return out

    # ------------------------------------------------------------------ rounds
    def run_round(self) -> RoundReport:
        """Open a round (as org-0) and step every node through it until it completes or fails."""
        return self.drive(self.open_round())

    def open_round(self) -> int:
        """Open the next round as org-0 and return its id."""
        r = self.orgs[0].node.open_round()
        if r is None:
            raise ConfigError("the previous round is not done; cannot open another")
        self._reports[r] = RoundReport(round=r)
        self._started[r] = time.perf_counter()
        self._fetched_before[r] = {o.name: o.node.transport.counters.bytes for o in self.orgs}
        return r

    def drive(self, r: int) -> RoundReport:
        """Step every node through round ``r`` until it completes or fails, mining when all wait.

        Safe to call again after an exception escaped from a node (a simulated crash): the round's
        phases seen so far are kept, and the nodes pick up from the chain and their journals.
        """
        from codecoop.chain import Phase

        assert self.report is not None, "call setup() first"
        rounds = self.deployment.rounds
        rep = self._reports[r]

        def seen() -> Phase:
            phase = rounds.phase(r)
            if not rep.phases or rep.phases[-1] != phase.name:
                rep.phases.append(phase.name)
            return phase

        while True:
            phase = seen()
            acted = False
            for o in list(self.orgs):
                try:
                    stepped = o.node.step()
                except MembershipEnded as exc:  # it left, or governance removed it: the others go on without it
                    o.node.end(exc)
                    self.orgs.remove(o)
                    continue
                if stepped:
                    acted = True
                    seen()
            if acted:
                continue
            if phase in (Phase.COMPLETED, Phase.FAILED):
                break
            if phase is Phase.DISCLOSE and any(o.node.awaiting_copies for o in self.orgs):
                time.sleep(_COPY_POLL_S)  # an offer is still on its way to the peers; each node gives up after node.replica_wait
                continue
            info = rounds.round(r)
            ends = {
                Phase.SUBMIT: info.submit_end,
                Phase.DISCLOSE: info.disclose_end,
                Phase.COMMIT: info.commit_end,
                Phase.REVEAL: info.reveal_end,
                Phase.CONFIRM: info.confirm_end,
            }
            if phase not in ends:
                raise ConfigError(f"round {r} is stuck in phase {phase.name}: no node can act")
            self.chain.mine_to(ends[phase] + 1)
        rep.protocol_s = time.perf_counter() - self._started[r]
        info = rounds.round(r)
        rep.submitted = len(rounds.updates(r))  # disclosed (a commitment never disclosed is no update)
        rep.skipped = sum(1 for o in self.orgs if o.node.journal.entry(r).skipped)
        rep.accepted = len(info.accepted_ids)
        rep.rejected = rep.submitted - rep.accepted
        rep.outcome = {Phase.COMPLETED: "completed", Phase.FAILED: "failed"}[info.phase]
        if info.phase is Phase.COMPLETED and not info.accepted_ids:
            rep.outcome = "completed, nothing accepted"
        rep.global_cid = info.global_cid
        adopted = self.orgs[0].node.global_adapter(info.global_cid)
        rep.global_loss, rep.validation_loss = self.global_loss(adopted), self.global_loss(adopted, split="validation")
        if self.config.baselines:
            rep.baseline_loss = self._baselines(r)
        rep.gas = {o.name: o.gas.get(r, 0) for o in self.orgs}
        rep.minted = {o.name: to_tokens(o.minted.get(r, 0)) for o in self.orgs}
        before = self._fetched_before.get(r, {})
        rep.fetched_bytes = {o.name: o.node.transport.counters.bytes - before.get(o.name, 0) for o in self.orgs}
        self.report.network = {o.name: o.node.transport.counters.to_json() for o in self.orgs}
        rep.wall_s = time.perf_counter() - self._started[r]
        self.report.rounds.append(rep)
        self.hooks.on_round(rep)
        return rep

    def run(self) -> SimReport:
        began = time.perf_counter()
        report = self.setup()
        for _ in range(self.config.rounds):
            self.run_round()
        report.wall_s = time.perf_counter() - began
        return report

    def close(self) -> None:
        for host in self._hosts:
            host.stop()
        self._hosts.clear()
        if self._tmp is not None:
            self._tmp.cleanup()


def run_simulation(config: SimConfig, hooks: Hooks | None = None) -> SimReport:
    """Run a whole simulation and return its report (temporary files removed)."""
    sim = Simulation(config, hooks)
    try:
        return sim.run()
    finally:
        sim.close()
