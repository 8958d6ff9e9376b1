"""The aggregator: the part of a node that computes the round's aggregate it will confirm.

The round driver asks its aggregator for the next global model once the round is finalized; the
aggregator returns its CID and bytes, stored and pinned. Every honest aggregator gets the same
bytes (inputs sorted by CID, fixed dtypes, fixed summation order), so ``k`` honest confirmations
agree; a colluding aggregator is another implementation of the same interface.

The global model of a round is an adapter: version 0 is the federation's initial LoRA adapter
(seed 0, ``B = 0``), and each completed round's aggregate, stored as a codecoop adapter file whose
header also records how it was aggregated, is the next round's base. Server-optimiser state
travels beside it, named by ``codecoop.state``.
"""

from __future__ import annotations

from typing import Any, Protocol

from codecoop.chain.clients import RoundInfo
from codecoop.node.member import Member

__all__ = ["Aggregator", "StrategyAggregator", "global_bytes", "STATE_KEY"]

#: Header key of a global model file naming the CID of the server-optimiser state beside it.
STATE_KEY = "codecoop.state"


class Aggregator(Protocol):
    """Computes the aggregate of a finalized round."""

    def aggregate(self, info: RoundInfo) -> tuple[str, bytes]:
        """The next global model of round ``info``: (CID, bytes), stored and pinned."""
        ...


def global_bytes(aggregate: Any, template: Any, base_model_id: str, state_cid: str | None) -> bytes:
    """The next global model's canonical bytes: a codecoop adapter file that also records its making.

    Every honest node passes the same aggregate, template (the round's base adapter) and charter
    model id, so every honest node writes the same bytes and confirms the same CID.
    """
    from codecoop.tensors import to_safetensors
    from codecoop.training import Adapter

    adapter = Adapter(aggregate.tensors, base_model_id, template.base_weights_hash, template.lora, {})
    metadata = {**aggregate.metadata, **adapter.metadata(include_training=False)}
    if state_cid:
        metadata[STATE_KEY] = state_cid
    return to_safetensors(aggregate.tensors, metadata)


class StrategyAggregator:
    """The honest aggregator: the federation's governed strategy over the round's accepted updates."""

    def __init__(self, member: Member):
        self.member = member

    def state(self, base_cid: str | None) -> bytes | None:
        """The server-optimiser state the global model ``base_cid`` names, if any."""
        from codecoop.tensors import from_safetensors

        if base_cid is None:
            return None
        _, meta = from_safetensors(self.member.fetch(base_cid, None))
        state_cid = meta.get(STATE_KEY)
        return self.member.fetch(state_cid, None) if state_cid else None

    def aggregate(self, info: RoundInfo) -> tuple[str, bytes]:
        from codecoop.aggregation import Update
        from codecoop.aggregation.spec import parse_strategy

        m = self.member
        rounds = m.deployment.rounds
        samples = rounds.sample_counts(info.round, m.deployment.record.block)
        by_id = {u.update_id: u for u in rounds.updates(info.round)}
        updates = []
        for uid in info.accepted_ids:
            u = by_id[uid]
            updates.append(Update.from_bytes(u.cid, m.fetch(u.cid, u.submitter), samples.get(uid, 1)))
        current = m.global_adapter(info.base_cid)
        strategy = parse_strategy(rounds.aggregation_strategy()).build()
        agg = strategy.aggregate(updates, self.state(info.base_cid), base=current.tensors)
        state_cid = m.put(agg.state) if agg.state is not None else None
        data = global_bytes(agg, current, m.deployment.models.charter().base_model_id, state_cid)
        return m.put(data), data
