"""Re-running a round's aggregation from its accepted updates, to check the confirmed CID.

The strategy is the on-chain ``aggregationStrategy`` in effect when the round opened, written as
``name`` or ``name:key=value,key=value`` (values are JSON literals, else strings), e.g.
``fedtrimmedavg:beta=0.2``. Server optimisers (fedadam, fedyogi, fedadagrad) carry a state that
never goes on-chain, so their aggregates cannot be recomputed from the chain alone; the audit says
so instead of guessing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from codecoop.errors import ConfigError

__all__ = ["StrategySpec", "parse_strategy", "STATEFUL"]

#: Strategies whose result depends on a server-optimiser state kept off-chain.
STATEFUL = frozenset({"fedadam", "fedyogi", "fedadagrad"})


@dataclass(frozen=True)
class StrategySpec:
    name: str
    params: Mapping[str, object]

    @property
    def needs_base(self) -> bool:
        """Whether the result depends on the round's base adapter (server optimisers, clipping)."""
        return self.name in STATEFUL or "clip_norm" in self.params

    @property
    def stateful(self) -> bool:
        return self.name in STATEFUL


def parse_strategy(spec: str) -> StrategySpec:
    """Parse ``name[:key=value,...]``; raise ``ConfigError`` for a malformed spec."""
    name, _, rest = spec.strip().partition(":")
    if not name:
        raise ConfigError(f"aggregation strategy {spec!r} has no name")
    params: dict[str, object] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"aggregation strategy {spec!r}: {item!r} is not key=value")
        try:
            params[key.strip()] = json.loads(value)
        except ValueError:
            params[key.strip()] = value.strip()
    return StrategySpec(name, params)
