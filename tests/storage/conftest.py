"""Fixtures for the storage tests: the real IPFS devnet daemon, started once per session."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "ipfs-devnet.sh"


@pytest.fixture(scope="session")
def ipfs_api() -> Iterator[str]:
    """API multiaddr of a real js-ipfs daemon (scripts/ipfs-devnet.sh).

    A daemon already running (CI may start one) is used and left running; otherwise one is
    started here on a port of its own and always stopped at the end of the session.
    """
    status = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True)
    if status.returncode == 0:
        yield status.stdout.strip()
        return
    env = {**os.environ, "IPFS_DEVNET_PORT": os.environ.get("IPFS_DEVNET_PORT", "5091")}
    try:
        started = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, env=env, timeout=600)
        if started.returncode != 0:
            pytest.fail(f"scripts/ipfs-devnet.sh start failed:\n{started.stderr}")
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, env=env, timeout=60)
