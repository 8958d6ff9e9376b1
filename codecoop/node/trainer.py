"""The trainer: the part of a node that produces this member's update of a round.

The round driver asks its trainer for the round's update once the submit window is open and this
member has none registered; the trainer returns a :class:`Submission` (an adapter already stored
and pinned), a :class:`Skipped` (nothing is submitted this round) or ``None`` (nothing yet: ask
again at the next step). Registering it on the chain, the journal and the gossip are the driver's.
An attacking trainer (``codecoop.sim.byzantine``) is another implementation of the same interface.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from codecoop.chain.clients import RoundInfo
from codecoop.node.member import VERSION_0, Member

__all__ = ["Trainer", "Submission", "Skipped", "LoraTrainer"]


@dataclass(frozen=True)
class Submission:
    """An update ready to register: its CID (stored and pinned), ``nSamples`` and the event to report.

    ``dp`` is ``{"noise_multiplier", "delta"}`` of a differentially private update; ``kind``,
    ``message`` and ``data`` make the event the driver emits once the journal holds the update.
    """

    cid: str
    samples: int
    kind: str
    message: str
    improvement_micro: int | None = None
    dp: Mapping[str, float] | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """No update this round (the selective-update rule), with the figures that decided it."""

    message: str
    improvement_micro: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


class Trainer(Protocol):
    """Produces this member's update of a round."""

    def update(self, info: RoundInfo) -> Submission | Skipped | None:
        """The update of round ``info``: stored and pinned, skipped, or ``None`` for not yet."""
        ...


class LoraTrainer:
    """The honest trainer: a LoRA run on the member's private code from the round's global model.

    It submits only when the own held-out loss improves by at least the node's ``min_improvement``
    (selective update).
    """

    def __init__(self, member: Member):
        self.member = member

    def train(self, info: RoundInfo) -> Any:
        """Train the round's adapter from its base (the global model ``info.base_cid``)."""
        from codecoop.training import train_lora

        m = self.member
        start = m.global_adapter(info.base_cid)
        m.emit(info.round, "training", f"training {m.settings.train.steps} steps from {info.base_cid or 'version 0'}")
        return train_lora(m.base, m.corpus, m.settings.train, start=start, on_step=m.on_train_step)

    def update(self, info: RoundInfo) -> Submission | Skipped:
        m = self.member
        with m.timed("train"):
            base_loss = m.own_loss(m.global_adapter(info.base_cid), info.base_cid or VERSION_0)
            began = time.perf_counter()
            adapter = self.train(info)
            train_s = time.perf_counter() - began
            loss = m.own_loss(adapter, None)
        improvement = round((base_loss - loss) * 1e6)
        data = {"train_s": train_s, "base_loss": base_loss, "loss": loss, "improvement_micro": improvement}
        if improvement < m.settings.min_improvement_micro:
            m.skipped_adapters = {info.round: adapter}  # the judge's direction reference (codecoop.node.screening)
            return Skipped(f"own loss {base_loss:.4f} -> {loss:.4f}: below the submit threshold, not submitting", improvement, data)
        with m.timed("publish"):
            blob = adapter.to_bytes()
            cid = m.put(blob)
        dp = adapter.training.get("dp")
        return Submission(
            cid,
            max(adapter.num_samples, 1),
            "trained",
            f"own loss {base_loss:.4f} -> {loss:.4f} in {train_s:.1f} s",
            improvement_micro=improvement,
            dp={"noise_multiplier": float(dp["noise_multiplier"]), "delta": float(dp["delta"])} if dp else None,
            data={"bytes": len(blob), **data},
        )
