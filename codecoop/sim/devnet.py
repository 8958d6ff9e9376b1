"""The multi-process devnet: a hardhat@2 JSON-RPC chain and one ``codecoop node run`` process per
organisation, talking over libp2p: each in its own Linux network namespace when they can be made
(``codecoop.sim.netns``; run as root), else on 127.0.0.1.

Nothing here is simulated, and nothing is shared but the chain: every node is a separate process
with its own encrypted keystore, configuration file, journal, libp2p identity and content store
(the embedded store in its own folder, or for the organisations in ``ipfs_orgs`` an IPFS daemon of
its own). They meet through the MemberRegistry on the chain, gossip their announcements and fetch
every peer's update over libp2p direct fetch. The chain mines a block every ``block_interval_ms`` (besides
one per transaction), so the round windows (in blocks) pass in real time. The devnet itself only
opens each round, with a member account of its own, once every organisation has joined.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codecoop.errors import CodecoopError, ToolchainError
from codecoop.node.screening import SCREENING_OFF
from codecoop.paths import repo_root
from codecoop.storage.local import process_alive

__all__ = ["Devnet", "DevnetConfig", "DevnetResult", "run_devnet"]

PASSWORD = "codecoop-devnet-password"


#: Node settings under which every member submits whatever its loss says and approves every update that
#: passes the sanity bounds: tests that need a submission, an accepted update or an aggregate force them with
#: it, since a few training steps can make an update look harmful or unrelated to another's.
ACCEPT_EVERY_UPDATE: tuple[str, ...] = (
    "node.min_improvement=-1000000000",
    "evaluation.approve_min_delta=-1000000000",
    *(f"evaluation.{name}={value}" for name, value in SCREENING_OFF.items()),
)


@dataclass(frozen=True)
class DevnetConfig:
    """Size and timing of a devnet run (windows in blocks, one block every ``block_interval_ms``)."""

    orgs: int = 3
    rounds: int = 1
    steps: int = 10
    model: str = "tiny"
    strategy: str = "fedavg"
    chain_port: int = 8547
    #: API port of the IPFS daemon of organisation ``i`` in ``ipfs_orgs``: ``ipfs_port + i``.
    ipfs_port: int = 5093
    p2p_port: int = 4301
    block_interval_ms: int = 1000
    submit_window: int = 90
    disclose_window: int = 60
    commit_window: int = 45
    reveal_window: int = 25
    confirm_window: int = 45
    timeout_s: float = 900.0
    workdir: str | None = None
    confirmations: int = 2
    poll_interval: float = 1.0
    #: ``section.key=value`` settings of every node's configuration (as ``codecoop node run --set``).
    node_overrides: tuple[str, ...] = ()
    #: Organisations whose store is an IPFS daemon of their own (js-ipfs, offline); the others use the embedded store.
    ipfs_orgs: tuple[int, ...] = ()
    #: ``auto``: each organisation in its own Linux network namespace when they can be made (root), else loopback
    #: ports; ``on``: namespaces or an error; ``off``: loopback ports (every node on 127.0.0.1).
    namespaces: str = "auto"


@dataclass(frozen=True)
class DevnetResult:
    rounds_completed: int
    wall_s: float
    workdir: str
    global_cids: tuple[str, ...]
    #: Each organisation's fetch counters at the end (``FetchCounters.to_json``), read from its journal.
    network: dict[int, dict[str, Any]]
    #: Each organisation's member address.
    addresses: tuple[str, ...] = ()
    #: Round -> the (submitter, CID) of every update registered in it.
    updates: dict[int, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    #: How the organisations were connected (``Devnet.network_mode``).
    network_mode: str = ""


def _rpc(url: str, method: str, params: list) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())["result"]


def _wait(what: str, ready: Callable[[], bool], timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise CodecoopError(f"{what}: the process exited early (see its log)")
        try:
            if ready():
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    raise CodecoopError(f"timed out after {timeout:.0f} s waiting for {what}")


def _stop(p: subprocess.Popen) -> None:
    """Stop a process and its children (npx runs hardhat in a child: its own session, one group)."""
    if p.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, sig)
        try:
            p.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _org_code(orgs: int) -> list[list[Path]]:
    """Each organisation's private code: whole installed projects, dealt round-robin."""
    from codecoop.sim.data import default_sources

    sources = default_sources()
    return [sources[i::orgs][:2] for i in range(orgs)]


class Devnet:
    """A running devnet whose parts the caller drives: the fault-injection tests kill, stop and restart them.

    :meth:`start` starts the hardhat node (and the IPFS daemons of ``ipfs_orgs``), deploys the
    contracts and prepares one folder per organisation (encrypted keystore, funded account,
    configuration naming its own store); node processes are started with :meth:`start_node`. Use it as a context manager: :meth:`close`
    stops every process it started.
    """

    def __init__(self, cfg: DevnetConfig, log: Callable[[str], None] = print):
        self.cfg = cfg
        self.log = log
        self.root = repo_root()
        self._tmp = None if cfg.workdir else tempfile.TemporaryDirectory(prefix="codecoop-devnet-")
        self.work = Path(cfg.workdir or self._tmp.name)  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{cfg.chain_port}"
        self.apis: dict[int, str] = {}  # organisation -> API multiaddr of its own IPFS daemon
        self.chain: Any = None
        self.deployment: Any = None
        self.accounts: list[Any] = []
        self.nodes: dict[int, subprocess.Popen] = {}
        self._hardhat: Any = None
        self._opener: Any = None
        self._ipfs_restarted: list[subprocess.Popen] = []
        self._logs: list[Any] = []
        bad = [i for i in cfg.ipfs_orgs if not 0 <= i < cfg.orgs]
        if bad:
            raise CodecoopError(f"ipfs_orgs {bad} are not organisations of this devnet (0 to {cfg.orgs - 1})")
        if cfg.namespaces not in ("auto", "on", "off"):
            raise CodecoopError(f"namespaces must be auto, on or off, not {cfg.namespaces!r}")
        self.netns: Any = None
        """The organisations' network namespaces (``codecoop.sim.netns.Namespaces``), or ``None`` on loopback."""
        self.network_mode = ""
        """How the organisations are connected, in words (namespaces with their subnet, or loopback and why)."""

    def _ipfs_env(self, i: int) -> dict[str, str]:
        return {**os.environ, "IPFS_DEVNET_PORT": str(self.cfg.ipfs_port + i), "IPFS_DEVNET_STATE": str(self._ipfs_folder(i))}

    def _ipfs_folder(self, i: int) -> Path:
        return self.work / f"org-{i}" / "ipfs"

    def __enter__(self) -> Devnet:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the chain and the stores
    def start(self) -> Devnet:
        """Start the chain (and the IPFS daemons of ``ipfs_orgs``), deploy, and write every organisation's folder (no node yet)."""
        from codecoop.chain import FederationParams, connect, deploy
        from codecoop.keys import create_keystore
        from codecoop.node.config import load_config, render_template
        from codecoop.training import load_base

        cfg = self.cfg
        if shutil.which("npx") is None or not (self.root / "node_modules" / ".bin" / "hardhat").exists():
            raise ToolchainError("the devnet needs Node.js and hardhat from package-lock.json: run `npm ci` in the repository")
        self.work.mkdir(parents=True, exist_ok=True)
        for port, what in (
            (cfg.chain_port, "chain"),
            *((cfg.ipfs_port + i, "IPFS API") for i in cfg.ipfs_orgs),
            *((cfg.p2p_port + i, "libp2p") for i in range(cfg.orgs)),
        ):
            if not _port_free(port):
                raise CodecoopError(f"port {port} ({what}) on 127.0.0.1 is taken; stop what uses it or choose other ports")
        self.start_chain()
        self._start_network()
        for i in cfg.ipfs_orgs:
            self.log(f"org-{i}: starting its own IPFS daemon")
            self._ipfs_folder(i).parent.mkdir(parents=True, exist_ok=True)
            self.apis[i] = (
                subprocess.run(
                    [str(self.root / "scripts" / "ipfs-devnet.sh"), "start"],
                    env=self._ipfs_env(i),
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )

        self.log(f"loading {cfg.model!r} for the charter's weights hash")
        weights = load_base(cfg.model).weights_hash
        self.chain = connect(self.url)
        params = FederationParams(
            submit_window=cfg.submit_window,
            disclose_window=cfg.disclose_window,
            commit_window=cfg.commit_window,
            reveal_window=cfg.reveal_window,
            confirm_window=cfg.confirm_window,
            confirmations=min(cfg.confirmations, cfg.orgs),
            aggregation_strategy=cfg.strategy,
            base_model_id=cfg.model,
            base_weights_hash="0x" + weights,
        )
        self.deployment = deploy(self.chain, params)
        self.deployment.save(self.work / "deployment.json")
        self.log(f"deployed; RoundManager at {self.deployment.addresses['RoundManager']}")

        (self.work / "password.txt").write_text(PASSWORD + "\n")
        for i, code in enumerate(_org_code(cfg.orgs)):
            folder = self.work / f"org-{i}"
            folder.mkdir(exist_ok=True)
            account = create_keystore(folder / "key.json", PASSWORD)
            self.chain.fund(account.address, 10.0)
            self.accounts.append(account)
            config = folder / "node.toml"
            config.write_text(
                render_template(
                    config_name="node.toml",
                    chain=self.url,
                    deployment=str(self.work / "deployment.json"),
                    store=self.apis.get(i, "embedded"),
                    listen=f"/ip4/{self.host_address(i)}/tcp/{cfg.p2p_port + i}",
                    keystore="key.json",
                    password_line=f'password_file = "{self.work / "password.txt"}"',
                    code=", ".join(f'"{c}"' for c in code),
                    folder="node-data",
                    model=cfg.model,
                )
            )
            load_config(config)
        return self

    def _start_network(self) -> None:
        from codecoop.sim.netns import Namespaces, unavailable

        cfg = self.cfg
        why = unavailable() if cfg.namespaces != "off" else "namespaces=off"
        if why is None and cfg.ipfs_orgs:
            why = "an organisation runs its own IPFS daemon (on the host's loopback)"
        if why is not None and cfg.namespaces == "on":
            raise CodecoopError(f"the devnet cannot put the organisations in network namespaces: {why}")
        if why is None:
            self.netns = Namespaces(cfg.orgs, self.work, cfg.chain_port).create()
            self.network_mode = (
                f"network namespaces: each organisation alone in its own, on {self.netns.subnet}.0/24 over a bridge; "
                "the chain reached through a Unix-socket forwarder"
            )
        else:
            self.network_mode = f"loopback: every node on 127.0.0.1 ({why})"
        self.log(self.network_mode)

    def host_address(self, i: int) -> str:
        """The IPv4 address organisation ``i``'s libp2p host listens on."""
        return self.netns.address(i) if self.netns is not None else "127.0.0.1"

    def set_link(self, i: int, up: bool) -> None:
        """Cut organisation ``i`` off from its peers (``up=False``) or reconnect it; needs namespaces."""
        if self.netns is None:
            raise CodecoopError(f"org-{i} has no link of its own to take down: the devnet runs on loopback ({self.network_mode})")
        self.netns.set_link(i, up)
        self.log(f"org-{i}: link to the other organisations {'up' if up else 'down'}")

    def start_chain(self) -> None:
        """Start the hardhat node (empty: hardhat@2 keeps its state in memory only) with interval mining."""
        from codecoop.chain.hardhat import HardhatNode

        self.log(f"starting hardhat node on {self.url}")
        self._hardhat = HardhatNode(self.cfg.chain_port, log_path=self.work / "hardhat.log").start()
        _wait("the hardhat node", lambda: _rpc(self.url, "eth_blockNumber", []) is not None, 60)
        _rpc(self.url, "evm_setIntervalMining", [self.cfg.block_interval_ms])

    def stop_chain(self) -> None:
        """Stop the hardhat node; everything on the chain is lost with it."""
        if self._hardhat is not None:
            self._hardhat.stop()
            self._hardhat = None

    def mine(self, blocks: int) -> None:
        """Mine ``blocks`` blocks at once (``hardhat_mine``): end a window early when nobody has anything left to do in it."""
        if blocks > 0:
            _rpc(self.url, "hardhat_mine", [hex(blocks)])

    def _ipfs_state(self, i: int) -> tuple[int, str]:
        if i not in self.apis:
            raise CodecoopError(f"org-{i} runs no IPFS daemon of its own (DevnetConfig.ipfs_orgs)")
        state = self._ipfs_folder(i)
        return int((state / "pid").read_text().strip()), (state / "repo").read_text().strip()

    def stop_ipfs(self, i: int) -> None:
        """Stop organisation ``i``'s IPFS daemon (SIGTERM, so it releases its repository lock) and keep its repository."""
        pid, _ = self._ipfs_state(i)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and process_alive(pid):
            time.sleep(0.2)
        if process_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.log(f"org-{i}: IPFS daemon stopped")

    def start_ipfs(self, i: int) -> None:
        """Start organisation ``i``'s IPFS daemon again on the repository it had (what it held is still there)."""
        _, repo = self._ipfs_state(i)
        state = self._ipfs_folder(i)
        env = {
            **os.environ,
            "IPFS_PATH": repo,
            "NODE_OPTIONS": f"--require {self.root / 'scripts' / 'promise-with-resolvers.cjs'}",
        }
        out = open(state / "daemon.log", "a")
        self._logs.append(out)
        proc = subprocess.Popen(
            [str(self.root / "node_modules" / ".bin" / "jsipfs"), "daemon", "--offline"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._ipfs_restarted.append(proc)
        (state / "pid").write_text(f"{proc.pid}\n")  # ipfs-devnet.sh stop finds it there
        url = f"http://127.0.0.1:{self.cfg.ipfs_port + i}/api/v0/id"
        _wait(
            "the IPFS daemon to answer again",
            lambda: bool(urllib.request.urlopen(urllib.request.Request(url, b"", method="POST"), timeout=2).read()),
            90,
            lambda: proc.poll() is None,
        )
        self.log(f"org-{i}: IPFS daemon running again")

    # ------------------------------------------------------------------ node processes
    def start_node(
        self, i: int, *, rounds: int = 0, env: dict[str, str] | None = None, overrides: tuple[str, ...] = ()
    ) -> subprocess.Popen:
        """Start ``codecoop node run`` for organisation ``i`` (``rounds=0``: until stopped); its output is appended to ``org-i/node.log``."""
        folder = self.work / f"org-{i}"
        out = open(folder / "node.log", "a")
        self._logs.append(out)
        codecoop = str(Path(sys.executable).with_name("codecoop"))
        sets = ["training.steps=" + str(self.cfg.steps), f"node.poll_interval={self.cfg.poll_interval}", "evaluation.max_blocks=16"]
        sets += [*self.cfg.node_overrides, *overrides]
        proc = subprocess.Popen(
            [
                *(self.netns.exec_prefix(i) if self.netns is not None else []),
                codecoop,
                "node",
                "run",
                "--config",
                str(folder / "node.toml"),
                "--rounds",
                str(rounds),
                *(a for s in sets for a in ("--set", s)),
            ],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        self.nodes[i] = proc
        self.log(f"org-{i}: node process {proc.pid} for {self.accounts[i].address}" + (f" ({env})" if env else ""))
        return proc

    def stop_node(self, i: int, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int | None:
        """Send ``sig`` to organisation ``i``'s node process and wait for it; return its exit status."""
        proc = self.nodes.get(i)
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _stop(proc)
        return proc.returncode

    def node_log(self, i: int) -> str:
        return (self.work / f"org-{i}" / "node.log").read_text(errors="replace")

    def journal_path(self, i: int) -> Path:
        return self.work / f"org-{i}" / "node-data" / "journal.json"

    def store(self, i: int) -> Any:
        """Organisation ``i``'s own content store (its embedded store, or its IPFS daemon while that runs)."""
        from codecoop.storage import open_store

        return open_store(self.apis.get(i, "embedded"), root=self.work / f"org-{i}" / "node-data" / "store")

    def network(self, i: int) -> Any:
        """Organisation ``i``'s fetch counters (``FetchCounters``) as its journal last saved them."""
        from codecoop.node.journal import Journal
        from codecoop.node.transport import FetchCounters

        return FetchCounters.from_json(Journal(self.journal_path(i), deployment=self.deployment.addresses["RoundManager"]).network)

    # ------------------------------------------------------------------ rounds
    def wait_joined(self, count: int, timeout: float = 600.0) -> None:
        """Wait until ``count`` members have joined (every node joins when it starts)."""
        started = list(self.nodes.values())
        _wait(
            f"{count} nodes to join",
            lambda: self.deployment.members.active_count() >= count,
            timeout,
            lambda: all(p.poll() is None for p in started),
        )

    def open_round(self) -> int:
        """Open the next round with a member account of the devnet's own (the nodes' keys are busy in their processes)."""
        if self._opener is None:
            self._opener = self.chain.new_account(10.0)
            self.deployment.members.join(self._opener, "devnet-coordinator", [])
        r = self.deployment.rounds.open_round(self._opener)
        self.log(f"round {r} opened")
        return r

    def wait_round(
        self,
        r: int,
        *,
        timeout: float | None = None,
        expect: int | tuple[int, int, int] | None = None,
        on_poll: Callable[[], None] | None = None,
    ) -> Any:
        """Wait for round ``r`` to complete or fail and return its ``RoundInfo``.

        With ``expect``, a submit, disclose, commit or reveal window is ended early (by mining to its
        end) as soon as ``expect`` members have committed to an update, disclosed it (every one
        committed, at most the first count), committed votes or revealed them in it (a tuple: how many
        for submit, commit and reveal, when members come or go during the round): windows can then be
        generous (a killed node has time to restart) without every round lasting as long as they.
        ``on_poll`` runs at every look (a test restarts killed nodes there).
        """
        from codecoop.chain.clients import Phase

        rounds = self.deployment.rounds
        last = None
        wanted = (expect,) * 3 if isinstance(expect, int) else expect

        def finished() -> bool:
            nonlocal last
            if on_poll is not None:
                on_poll()
            phase = rounds.phase(r)
            if phase != last:
                self.log(f"round {r}: {phase.name.lower()} (block {self.chain.block_number})")
                last = phase
            if wanted is not None and phase in (Phase.SUBMIT, Phase.DISCLOSE, Phase.COMMIT, Phase.REVEAL):
                info = rounds.round(r)
                if phase is Phase.SUBMIT:  # commitments
                    done, end, due = info.update_count, info.submit_end, wanted[0]
                elif phase is Phase.DISCLOSE:
                    done, end, due = len(rounds.updates(r)), info.disclose_end, min(wanted[0], info.update_count)
                elif phase is Phase.COMMIT:
                    done, end, due = self.committed(r), info.commit_end, wanted[1]
                else:
                    done, end, due = info.revealed_count, info.reveal_end, wanted[2]
                if done >= due:
                    self.mine(end - self.chain.block_number + 1)
            return phase in (Phase.COMPLETED, Phase.FAILED)

        _wait(f"round {r} to finish", finished, timeout or self.cfg.timeout_s, lambda: self._hardhat is not None)
        return rounds.round(r)

    def committed(self, r: int) -> int:
        """How many members committed votes in round ``r``."""
        return len(self.deployment.rounds.committed_voters(r, self.deployment.record.block))

    # ------------------------------------------------------------------ stop
    def close(self) -> None:
        """Stop every node process, the IPFS daemons (deleting their repositories) and the chain."""
        for proc in self.nodes.values():
            _stop(proc)
        if self.netns is not None:
            self.netns.close()
            self.netns = None
        self.stop_chain()
        for i in self.apis:
            subprocess.run([str(self.root / "scripts" / "ipfs-devnet.sh"), "stop"], env=self._ipfs_env(i), capture_output=True)
        for proc in self._ipfs_restarted:
            _stop(proc)
        for f in self._logs:
            f.close()
        self._logs.clear()
        if self._tmp is not None and not os.environ.get("CODECOOP_KEEP_DEVNET"):
            self._tmp.cleanup()
            self._tmp = None


def run_devnet(cfg: DevnetConfig, log: Callable[[str], None] = print) -> DevnetResult:
    """Start everything, run ``cfg.rounds`` rounds, stop everything; raise if a round does not complete."""
    from codecoop.chain.clients import Phase

    began = time.perf_counter()
    with Devnet(cfg, log) as net:
        for i in range(cfg.orgs):
            net.start_node(i, rounds=cfg.rounds)
            log(f"org-{i}: code {', '.join(p.name for p in _org_code(cfg.orgs)[i])}")
        net.wait_joined(cfg.orgs)
        cids: list[str] = []
        updates: dict[int, tuple[tuple[str, str], ...]] = {}
        for _ in range(cfg.rounds):
            r = net.open_round()
            log(f"round {r}: waiting for the nodes to train, vote, aggregate and confirm")
            info = net.wait_round(r, expect=cfg.orgs)  # a window ends as soon as every organisation acted in it
            if info.phase is not Phase.COMPLETED:
                raise CodecoopError(f"round {r} failed; see the node logs in {net.work}")
            cids.append(info.global_cid or "")
            updates[r] = tuple((u.submitter, u.cid) for u in net.deployment.rounds.updates(r))
            log(
                f"round {r} completed: {len(info.accepted_ids)}/{len(net.deployment.rounds.updates(r))} updates accepted, "
                f"global model {info.global_cid}"
            )
        nodes = list(net.nodes.values())
        _wait("the node processes to exit", lambda: all(p.poll() is not None for p in nodes), 180)
        bad = [i for i, p in net.nodes.items() if p.returncode != 0]
        if bad:
            raise CodecoopError(f"node process(es) {bad} exited with an error; see {net.work}/org-N/node.log")
        network = {i: net.network(i) for i in range(cfg.orgs)}
        for i, counters in network.items():
            log(f"org-{i}: {counters.summary()}")
        return DevnetResult(
            len(cids),
            time.perf_counter() - began,
            str(net.work),
            tuple(cids),
            {i: c.to_json() for i, c in network.items()},
            tuple(a.address for a in net.accounts),
            updates,
            net.network_mode,
        )
