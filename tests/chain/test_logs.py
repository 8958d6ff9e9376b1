"""The embedded chain's fast log reader returns exactly what eth_getLogs returns."""

from __future__ import annotations

import tempfile

from codecoop.audit.synthetic import SyntheticFederation
from codecoop.chain.backend import Chain
from codecoop.chain.devtools import DevFederation
from codecoop.chain.logs import read_logs
from codecoop.chain.params import FederationParams
from codecoop.storage import LocalStore


def test_the_fast_embedded_reader_equals_eth_getlogs_over_full_rounds():
    params = FederationParams(submit_window=8, commit_window=8, reveal_window=8, confirm_window=8, epoch_length=500)
    with tempfile.TemporaryDirectory() as tmp:
        sim = SyntheticFederation(DevFederation.create(4, params), LocalStore(tmp, durable=False), seed=2)
        for r in range(3):
            sim.run_round(harmful=[1] if r == 1 else ())
        d, chain = sim.fed.deployment, sim.fed.chain
        wanted = {d.token.contract.address, d.rounds.contract.address, d.members.contract.address}
        fast = chain.read_logs(wanted, 0, chain.block_number)
        assert fast == Chain.read_logs(chain, wanted, 0, chain.block_number), "the embedded reader is eth_getLogs"
        kinds = {log.address for log in fast}
        assert len(fast) > 50 and len(kinds) == 3, "every contract's events, over many blocks"
        assert read_logs(chain, [d.token.contract.address], 5, 40) == [
            log for log in fast if log.address == d.token.contract.address and 5 <= log.block <= 40
        ]
