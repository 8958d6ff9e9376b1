"""The federation's aggregation strategy as the chain states it: ``name[:key=value,...]``.

``RoundManager.aggregationStrategy`` is one string so that governance can change it in one call,
e.g. ``fedavg``, ``fedtrimmedavg:beta=0.2`` or ``fedadam:eta=0.05,clip_norm=2``. Every node that
aggregates and every auditor that recomputes parses it here, so all of them run the same strategy
with the same parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codecoop.errors import ConfigError

__all__ = ["STATEFUL", "StrategySpec", "parse_strategy"]

#: Server optimisers: their result depends on a state that never goes on-chain.
STATEFUL = frozenset({"fedadam", "fedyogi", "fedadagrad"})


@dataclass(frozen=True)
class StrategySpec:
    """A strategy name and its parameters (ints, floats, booleans or strings)."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def stateful(self) -> bool:
        """Whether the strategy carries a server-optimiser state between rounds."""
        return self.name in STATEFUL

    @property
    def needs_base(self) -> bool:
        """Whether the result depends on the round's base adapter (server optimisers, clipping)."""
        return self.stateful or "clip_norm" in self.kwargs

    def build(self) -> Any:
        """The :class:`codecoop.aggregation.Strategy` this spec names (ConfigError if it cannot be built)."""
        from codecoop.aggregation import get_strategy

        return get_strategy(self.name, **dict(self.params))

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in self.params)


def _value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_strategy(text: str) -> StrategySpec:
    """Parse ``name[:key=value,...]``; parameters come back sorted by key.

    Raises
    ------
    ConfigError
        For an empty name, a parameter without ``=``, or a repeated key.
    """
    name, _, rest = text.strip().partition(":")
    name = name.strip().lower()
    if not name:
        raise ConfigError(f"aggregation strategy {text!r} has no name; expected e.g. 'fedavg' or 'fedtrimmedavg:beta=0.2'")
    params: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"aggregation strategy {text!r}: parameter {item!r} is not key=value")
        if key in params:
            raise ConfigError(f"aggregation strategy {text!r}: parameter {key!r} is given twice")
        params[key] = _value(value.strip())
    return StrategySpec(name, tuple(sorted(params.items())))
