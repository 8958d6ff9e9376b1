"""The node's small local journal: what is in flight in each round, so a restart never acts twice.

The chain and the content store hold almost all state; the journal holds what only this node
knows and cannot recompute: the CID of the adapter it trained (so a restart does not retrain), the
decision to skip a round, and above all the ballot with its secret salt, written *before* the
commitment is sent (a committed ballot whose salt is lost could never be revealed). It also keeps
the node's network counters (what it fetched from and served to peers), so they add up over
restarts. The file is rewritten atomically (temporary file, fsync, rename) on every change.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codecoop.errors import ConfigError

__all__ = ["Journal", "RoundEntry"]

FORMAT = "codecoop-journal/1"


@dataclass
class RoundEntry:
    """This node's private facts about one round."""

    round: int
    base_cid: str | None = None
    trained_cid: str | None = None
    samples: int | None = None
    improvement_micro: int | None = None
    skipped: bool = False
    ballot: dict[str, Any] | None = None
    votes: dict[str, Any] = field(default_factory=dict)  # update id -> {"approve", "delta", "reason"}
    aggregate_cid: str | None = None
    aggregate_error: str | None = None
    disclosure: dict[str, Any] | None = None  # UpdateDisclosure.to_json(): what was committed, with its secret salt
    announced: bool = False
    done: bool = False
    dp: dict[str, float] | None = None  # {"noise_multiplier", "delta"} of a differentially private update (docs/PRIVACY.md)


class Journal:
    """A JSON file of :class:`RoundEntry` by round, plus the deployment it belongs to."""

    def __init__(self, path: str | Path, *, deployment: str):
        self.path = Path(path)
        self.deployment = deployment
        self.rounds: dict[int, RoundEntry] = {}
        self.network: dict[str, Any] = {}
        """The node's fetch counters as last saved (``FetchCounters.to_json``); ``{}`` before any."""
        self.network_of: Callable[[], dict[str, Any]] | None = None
        """Where :meth:`save` reads the current counters from (the node's transport), if set."""
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"journal {self.path} is unreadable ({exc}); move it away to start afresh") from None
        if data.get("format") != FORMAT:
            raise ConfigError(f"{self.path} is not a codecoop journal (format {data.get('format')!r})")
        if data.get("deployment") != self.deployment:
            raise ConfigError(
                f"journal {self.path} belongs to the deployment at {data.get('deployment')}, not {self.deployment}; "
                "use another data folder for another federation"
            )
        self.rounds = {int(k): RoundEntry(**v) for k, v in data.get("rounds", {}).items()}
        self.network = dict(data.get("network") or {})

    def entry(self, round_id: int) -> RoundEntry:
        """The entry of ``round_id``, created (in memory) on first use."""
        if round_id not in self.rounds:
            self.rounds[round_id] = RoundEntry(round_id)
        return self.rounds[round_id]

    def privacy_spent(self, delta: float) -> tuple[float, int] | None:
        """``(epsilon, rounds)`` at ``delta`` over every update this member released (stored for peers).

        Rounds compose by Rényi DP (``codecoop.training.dp.PrivacyAccountant``); an update released
        without DP makes epsilon infinite. ``None`` when no released update was private at all.
        Updates stored but never registered (a closed submit window) count too: they were in the store.
        """
        released = [e for _, e in sorted(self.rounds.items()) if e.trained_cid is not None]
        if not any(e.dp for e in released):
            return None
        from codecoop.training.dp import PrivacyAccountant

        accountant = PrivacyAccountant(delta)
        for e in released:
            accountant.step(float(e.dp["noise_multiplier"]) if e.dp else 0.0)
        return accountant.epsilon(), accountant.rounds

    def save(self) -> None:
        """Write the journal atomically and durably."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.network_of is not None:
            self.network = self.network_of()
        data = {
            "format": FORMAT,
            "deployment": self.deployment,
            "rounds": {str(k): asdict(v) for k, v in sorted(self.rounds.items())},
            "network": self.network,
        }
        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp", delete=False) as f:
            try:
                json.dump(data, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            except BaseException:  # Ctrl-C or SIGTERM mid-write: the old journal stands, no half-written file stays behind
                f.close()
                os.unlink(f.name)
                raise
        os.replace(f.name, self.path)
