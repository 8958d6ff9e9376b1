"""Start and stop a local hardhat@2 JSON-RPC chain (integration tests and the multi-process devnet)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from codecoop.errors import ChainError, ToolchainError
from codecoop.paths import repo_root

__all__ = ["HardhatNode", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_block(count: int, *, tries: int = 50) -> int:
    """The first of ``count`` consecutive ports on 127.0.0.1 that are free now (for a devnet's
    per-organisation ports ``base + i``); a bounded search from ports the system hands out."""
    for _ in range(tries):
        base = free_port()
        if base + count > 65_535:
            continue
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise OSError(f"no {count} consecutive free ports on 127.0.0.1 after {tries} tries")


class HardhatNode:
    """``npx hardhat node`` on 127.0.0.1, as a context manager; its log goes to ``log_path``."""

    def __init__(self, port: int | None = None, *, log_path: Path | None = None, timeout: float = 60.0):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.timeout = timeout
        self.log_path = log_path
        self._proc: subprocess.Popen | None = None

    def start(self) -> HardhatNode:
        root = repo_root()
        npx = shutil.which("npx")
        if npx is None or not (root / "node_modules" / "hardhat").is_dir():
            raise ToolchainError("hardhat is not installed: run `bash scripts/bootstrap.sh` (or `npm ci`) in the repository root")
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self._proc = subprocess.Popen(
            [npx, "hardhat", "node", "--hostname", "127.0.0.1", "--port", str(self.port)],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true"},
            start_new_session=True,
        )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ChainError(f"hardhat node exited with status {self._proc.returncode} (log: {self.log_path})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise ChainError(f"hardhat node did not listen on {self.url} within {self.timeout:.0f} s")

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> HardhatNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
