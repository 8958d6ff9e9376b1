"""The gas targets of ``benchmarks/gas.py`` hold on the current contracts (gas on eth-tester is exact:
no timing, no machine in it), so a contract change that breaks one fails here, not only in a rerun."""

from __future__ import annotations

from codecoop.chain.devtools import DevFederation


def test_every_operation_and_the_deployment_stay_within_their_gas_targets_in_a_steady_round(load_benchmark):
    gas = load_benchmark("gas")
    fed = DevFederation.create(4)
    fed.run_round(tag="first")
    steady = fed.run_round(tag="steady")
    measured = {op: max(steady.gas[op]) for op in gas.TARGETS}
    measured["deploy"] = sum(fed.deployment.record.gas_used.values())
    goals = {**gas.TARGETS, "deploy": gas.DEPLOY_TARGET}
    missed = {op: f"{measured[op]:,} > {goals[op]:,}" for op in goals if measured[op] > goals[op]}
    assert not missed, f"gas targets missed: {missed}"
