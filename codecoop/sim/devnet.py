"""The multi-process devnet: a hardhat@2 JSON-RPC chain, the IPFS daemon, and one ``codecoop node run``
process per organisation, talking over libp2p on 127.0.0.1.

Nothing here is simulated: every node is a separate process with its own encrypted keystore,
configuration file, journal and libp2p identity; they meet through the MemberRegistry on the
chain and gossip their announcements. The chain mines a block every ``block_interval_ms`` (besides
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
from dataclasses import dataclass
from pathlib import Path

from codecoop.errors import CodecoopError, ToolchainError
from codecoop.paths import repo_root

__all__ = ["DevnetConfig", "DevnetResult", "run_devnet"]

PASSWORD = "codecoop-devnet-password"


@dataclass(frozen=True)
class DevnetConfig:
    """Size and timing of a devnet run (windows in blocks, one block every ``block_interval_ms``)."""

    orgs: int = 3
    rounds: int = 1
    steps: int = 10
    model: str = "tiny"
    strategy: str = "fedavg"
    chain_port: int = 8547
    ipfs_port: int = 5093
    p2p_port: int = 4301
    block_interval_ms: int = 1000
    submit_window: int = 90
    commit_window: int = 45
    reveal_window: int = 25
    confirm_window: int = 45
    timeout_s: float = 900.0
    workdir: str | None = None


@dataclass(frozen=True)
class DevnetResult:
    rounds_completed: int
    wall_s: float
    workdir: str
    global_cids: tuple[str, ...]


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


def run_devnet(cfg: DevnetConfig, log: Callable[[str], None] = print) -> DevnetResult:
    """Start everything, run ``cfg.rounds`` rounds, stop everything; raise if a round does not complete."""
    from codecoop.chain import FederationParams, connect, deploy
    from codecoop.chain.clients import Phase
    from codecoop.keys import create_keystore
    from codecoop.node.config import load_config, render_template
    from codecoop.training import load_base

    root = repo_root()
    npx = shutil.which("npx")
    if npx is None or not (root / "node_modules" / ".bin" / "hardhat").exists():
        raise ToolchainError("the devnet needs Node.js and hardhat from package-lock.json: run `npm ci` in the repository")
    began = time.perf_counter()
    tmp = None if cfg.workdir else tempfile.TemporaryDirectory(prefix="codecoop-devnet-")
    work = Path(cfg.workdir or tmp.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{cfg.chain_port}"
    for port, what in ((cfg.chain_port, "chain"), (cfg.ipfs_port, "IPFS API"), *((cfg.p2p_port + i, "libp2p") for i in range(cfg.orgs))):
        if not _port_free(port):
            raise CodecoopError(f"port {port} ({what}) on 127.0.0.1 is taken; stop what uses it or choose other ports")
    procs: list[subprocess.Popen] = []
    logs = []
    ipfs_env = {**os.environ, "IPFS_DEVNET_PORT": str(cfg.ipfs_port), "IPFS_DEVNET_STATE": str(work / "ipfs")}
    try:
        log(f"starting hardhat node on {url}")
        hh_log = open(work / "hardhat.log", "w")
        logs.append(hh_log)
        hardhat = subprocess.Popen(
            [npx, "hardhat", "node", "--hostname", "127.0.0.1", "--port", str(cfg.chain_port)],
            cwd=root, stdin=subprocess.DEVNULL, stdout=hh_log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        procs.append(hardhat)
        _wait("the hardhat node", lambda: _rpc(url, "eth_blockNumber", []) is not None, 60, lambda: hardhat.poll() is None)
        _rpc(url, "evm_setIntervalMining", [cfg.block_interval_ms])

        log("starting the IPFS daemon")
        api = subprocess.run(
            [str(root / "scripts" / "ipfs-devnet.sh"), "start"], env=ipfs_env, check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]

        log(f"loading {cfg.model!r} for the charter's weights hash")
        weights = load_base(cfg.model).weights_hash
        chain = connect(url)
        params = FederationParams(
            submit_window=cfg.submit_window, commit_window=cfg.commit_window, reveal_window=cfg.reveal_window,
            confirm_window=cfg.confirm_window, confirmations=min(2, cfg.orgs), aggregation_strategy=cfg.strategy,
            base_model_id=cfg.model, base_weights_hash="0x" + weights,
        )
        deployment = deploy(chain, params)
        deployment.save(work / "deployment.json")
        log(f"deployed; RoundManager at {deployment.addresses['RoundManager']}")

        (work / "password.txt").write_text(PASSWORD + "\n")
        codecoop = str(Path(sys.executable).with_name("codecoop"))
        accounts = []
        for i, code in enumerate(_org_code(cfg.orgs)):
            folder = work / f"org-{i}"
            folder.mkdir(exist_ok=True)
            account = create_keystore(folder / "key.json", PASSWORD)
            chain.fund(account.address, 10.0)
            accounts.append(account)
            config = folder / "node.toml"
            config.write_text(render_template(
                config_name="node.toml", chain=url, deployment=str(work / "deployment.json"), store=api,
                listen=f"/ip4/127.0.0.1/tcp/{cfg.p2p_port + i}", keystore="key.json",
                password_line=f'password_file = "{work / "password.txt"}"',
                code=", ".join(f'"{c}"' for c in code), folder="node-data", model=cfg.model,
            ))
            load_config(config)
            out = open(folder / "node.log", "w")
            logs.append(out)
            procs.append(subprocess.Popen(
                [codecoop, "node", "run", "--config", str(config), "--rounds", str(cfg.rounds),
                 "--set", f"training.steps={cfg.steps}", "--set", "node.poll_interval=1.0",
                 "--set", "evaluation.max_blocks=16"],
                cwd=folder, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            ))
            log(f"org-{i}: node process {procs[-1].pid} for {account.address} on code {', '.join(p.name for p in code)}")

        nodes = procs[1:]
        _wait("every node to join", lambda: deployment.members.active_count() >= cfg.orgs, 600,
              lambda: all(p.poll() is None for p in nodes))
        # a member of its own opens the rounds: the nodes' keys are busy in their processes (nonces)
        opener = chain.new_account(10.0)
        deployment.members.join(opener, "devnet-coordinator", [])
        cids: list[str] = []
        rounds = deployment.rounds
        for _ in range(cfg.rounds):
            r = rounds.open_round(opener)
            log(f"round {r} opened; waiting for the nodes to train, vote, aggregate and confirm")
            last = None

            def finished() -> bool:
                nonlocal last
                phase = rounds.phase(r)
                if phase != last:
                    log(f"round {r}: {phase.name.lower()} (block {chain.block_number})")
                    last = phase
                return phase in (Phase.COMPLETED, Phase.FAILED)

            _wait(f"round {r} to finish", finished, cfg.timeout_s, lambda: hardhat.poll() is None)
            info = rounds.round(r)
            if info.phase is not Phase.COMPLETED:
                raise CodecoopError(f"round {r} failed; see the node logs in {work}")
            cids.append(info.global_cid or "")
            log(f"round {r} completed: {len(info.accepted_ids)}/{info.update_count} updates accepted, global model {info.global_cid}")
        _wait("the node processes to exit", lambda: all(p.poll() is not None for p in nodes), 180)
        bad = [i for i, p in enumerate(nodes) if p.returncode != 0]
        if bad:
            raise CodecoopError(f"node process(es) {bad} exited with an error; see {work}/org-N/node.log")
        return DevnetResult(len(cids), time.perf_counter() - began, str(work), tuple(cids))
    finally:
        for p in reversed(procs):
            _stop(p)
        subprocess.run([str(root / "scripts" / "ipfs-devnet.sh"), "stop"], env=ipfs_env, capture_output=True)
        for f in logs:
            f.close()
        if tmp is not None and not os.environ.get("CODECOOP_KEEP_DEVNET"):
            tmp.cleanup()
