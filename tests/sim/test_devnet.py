"""The multi-process network: hardhat, the IPFS daemon and three `codecoop node run` processes over libp2p."""

from __future__ import annotations

import shutil

import pytest

from codecoop.sim.devnet import ACCEPT_EVERY_UPDATE, DevnetConfig, run_devnet

pytestmark = [pytest.mark.slow, pytest.mark.daemon]


@pytest.mark.skipif(shutil.which("npx") is None, reason="needs Node.js for the hardhat node and the IPFS daemon")
def test_three_node_processes_complete_a_round_on_hardhat_and_ipfs(tmp_path):
    result = run_devnet(
        DevnetConfig(orgs=3, rounds=1, steps=4, workdir=str(tmp_path), node_overrides=ACCEPT_EVERY_UPDATE), log=lambda m: None
    )
    assert result.rounds_completed == 1
    assert result.global_cids[0].startswith("bafk")
    journals = sorted(tmp_path.glob("org-*/node-data/journal.json"))
    assert len(journals) == 3
