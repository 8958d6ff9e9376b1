"""Many organisations on one machine: ``codecoop sim`` and the multi-process devnet.

The simulation runs the participant node's real state machine for every organisation, on the
real contracts (embedded chain), real content stores, real LoRA training and real aggregation.
"""

from __future__ import annotations

from codecoop.sim.report import OrgReport, RoundReport, SimReport
from codecoop.sim.runner import Hooks, SimConfig, Simulation, run_simulation

__all__ = ["Hooks", "OrgReport", "RoundReport", "SimConfig", "SimReport", "Simulation", "run_simulation"]
