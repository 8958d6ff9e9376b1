"""The participant node: the round state machine that ties chain, store, transport, training and aggregation.

* :class:`Node` — one organisation's side of every round (:meth:`Node.step`, :meth:`Node.run`): the round
  driver, which runs a :mod:`~codecoop.node.trainer`, a :mod:`~codecoop.node.judge` and an
  :mod:`~codecoop.node.aggregator` (:class:`Parts`) over one :class:`~codecoop.node.member.Member`.
* :mod:`~codecoop.node.config` — the node's TOML configuration, validated with errors naming the key.
* :mod:`~codecoop.node.journal` — the small local journal that makes a restart safe.
* :mod:`~codecoop.node.transport` — in-process and libp2p transports.

Names load lazily: ``import codecoop.node`` does not import torch, web3 or libp2p.
"""

from __future__ import annotations

from codecoop.lazy import lazy_attributes

__all__ = [
    "Node",
    "NodeSettings",
    "Parts",
    "Member",
    "LoraTrainer",
    "HeldOutJudge",
    "StrategyAggregator",
    "NodeEvent",
    "NodeConfig",
    "load_config",
    "Journal",
    "RoundEntry",
    "InProcessNetwork",
    "P2PTransport",
    "initial_adapter",
    "global_bytes",
]

_WHERE = {
    "Node": "node",
    "NodeSettings": "node",
    "Parts": "node",
    "Member": "member",
    "NodeEvent": "member",
    "initial_adapter": "member",
    "LoraTrainer": "trainer",
    "HeldOutJudge": "judge",
    "StrategyAggregator": "aggregator",
    "global_bytes": "aggregator",
    "NodeConfig": "config",
    "load_config": "config",
    "Journal": "journal",
    "RoundEntry": "journal",
    "InProcessNetwork": "transport",
    "P2PTransport": "transport",
}


__getattr__ = lazy_attributes(__name__, _WHERE)
