"""Screening a round's updates before they are evaluated: free riders and copies.

A held-out evaluation cannot tell who did the work: an update that resubmits the round's base
(or the base plus a tiny perturbation) changes nothing, costs its submitter nothing and would be
approved by every tolerant voter; an update that resubmits another member's update of the round
is as good as the original and would be approved with it. Both are refused here, from the
tensors alone, before any forward pass:

* **free rider**: the update's CID is the round's base, or its L2 distance from the base is below
  ``min_change`` times the base's L2 norm;
* **copy**: the update's CID equals an earlier-registered update's of the same round, or its
  change from the base is within ``copy_distance`` (relative) of an earlier one's change:
  ``||d - d_earlier|| <= copy_distance * ||d_earlier||``. "Earlier" is by update id, which is
  the chain's registration order, so the original keeps its place and only the later copy is
  refused; every honest member reaches the same verdict.

Norms and distances are summed in float64 over the tensors in name order, so they do not depend
on the order tensors were loaded in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from codecoop.errors import CodecoopError

__all__ = [
    "DEFAULT_MIN_CHANGE",
    "DEFAULT_COPY_DISTANCE",
    "ScreeningError",
    "FreeRide",
    "CopiedUpdate",
    "Candidate",
    "screen_updates",
    "screen_round",
]

#: Smallest change from the base, relative to the base's L2 norm, that counts as work.
DEFAULT_MIN_CHANGE = 1e-3
#: Largest relative distance between two updates' changes at which the later one is a copy.
DEFAULT_COPY_DISTANCE = 0.1


class ScreeningError(CodecoopError):
    """An update was refused by screening: it is a free ride or a copy (the vote is a rejection)."""


class FreeRide(ScreeningError):
    """The update is the round's base, or differs from it by less than the configured floor."""


class CopiedUpdate(ScreeningError):
    """The update is, or is within the configured distance of, an earlier update of the same round."""

    def __init__(self, message: str, *, original: int):
        super().__init__(message)
        self.original = original


@dataclass(frozen=True)
class Candidate:
    """One registered update of a round: its id (registration order), CID and tensors.

    ``tensors`` is ``None`` when the update could not be loaded (it is then judged by the other
    checks, and nothing is compared with it).
    """

    update_id: int
    cid: str
    tensors: Mapping[str, Any] | None


def _change(tensors: Mapping[str, Any], base: Mapping[str, Any]) -> list[Any] | None:
    """The update's change from the base, one float64 flat tensor per name (name order); ``None`` if not comparable."""
    if set(tensors) != set(base):
        return None
    out = []
    for name in sorted(base):
        t, b = tensors[name], base[name]
        if tuple(t.shape) != tuple(b.shape):
            return None
        out.append((t.double() - b.double()).reshape(-1))
    return out


def _norm(parts: Sequence[Any]) -> float:
    return math.sqrt(sum(float(p.dot(p)) for p in parts))


def _distance(a: Sequence[Any], b: Sequence[Any]) -> float:
    total = 0.0
    for x, y in zip(a, b):
        d = x - y
        total += float(d.dot(d))
    return math.sqrt(total)


def screen_updates(
    candidates: Sequence[Candidate],
    base_cid: str | None,
    base_tensors: Mapping[str, Any],
    *,
    min_change: float = DEFAULT_MIN_CHANGE,
    copy_distance: float = DEFAULT_COPY_DISTANCE,
) -> dict[int, ScreeningError]:
    """Find the free rides and copies among a round's updates.

    Parameters
    ----------
    candidates:
        Every registered update of the round, the screening node's own included (a copy of its
        own update is a copy all the same); any order.
    base_cid, base_tensors:
        The round's base (``base_cid`` ``None`` for version 0, which is never stored).
    min_change:
        Floor on ``||update - base|| / ||base||`` (``0`` turns the floor off).
    copy_distance:
        Relative distance to an earlier update's change at or below which an update is a copy
        (``0``: only identical CIDs or tensors).

    Returns
    -------
    dict
        ``update_id -> FreeRide | CopiedUpdate`` for every update refused; the others are absent.
    """
    refused: dict[int, ScreeningError] = {}
    base_norm = _norm([t.double().reshape(-1) for _, t in sorted(base_tensors.items())])
    floor = min_change * base_norm
    earlier: list[tuple[int, str, list[Any] | None, float]] = []  # (id, cid, change, its norm)
    for c in sorted(candidates, key=lambda c: c.update_id):
        change = _change(c.tensors, base_tensors) if c.tensors is not None else None
        norm = _norm(change) if change is not None else math.nan
        if base_cid is not None and c.cid == base_cid:
            refused[c.update_id] = FreeRide(f"update #{c.update_id} is the round's base model itself ({c.cid[:20]}...)")
        elif change is not None and norm <= floor:
            refused[c.update_id] = FreeRide(
                f"update #{c.update_id} differs from the round's base by {norm:.3g} (L2), below the floor "
                f"{floor:.3g} ({min_change:g} of the base's norm): no work was done"
            )
        else:
            for uid, cid, other, other_norm in earlier:
                if cid == c.cid:
                    refused[c.update_id] = CopiedUpdate(
                        f"update #{c.update_id} resubmits update #{uid} ({cid[:20]}...), registered before it", original=uid
                    )
                    break
                if change is None or other is None or other_norm <= floor:
                    continue
                distance = _distance(change, other)
                if distance <= copy_distance * other_norm:
                    refused[c.update_id] = CopiedUpdate(
                        f"update #{c.update_id} is within {distance / other_norm:.3g} (relative L2 distance of the changes; "
                        f"the limit is {copy_distance:g}) of update #{uid}, registered before it: a copy",
                        original=uid,
                    )
                    break
        earlier.append((c.update_id, c.cid, change, norm))
    return refused


def screen_round(
    updates: Sequence[Any],
    load: Callable[[Any], Mapping[str, Any]],
    base_cid: str | None,
    base_tensors: Mapping[str, Any],
    *,
    min_change: float = DEFAULT_MIN_CHANGE,
    copy_distance: float = DEFAULT_COPY_DISTANCE,
) -> dict[int, ScreeningError]:
    """:func:`screen_updates` over a round's registered updates (``UpdateInfo``), loading each with ``load``.

    An update that ``load`` cannot read (it raises a :class:`~codecoop.errors.CodecoopError`) is
    screened by CID only; the caller's own checks refuse it.
    """
    candidates = []
    for u in updates:
        try:
            tensors: Mapping[str, Any] | None = load(u)
        except CodecoopError:
            tensors = None
        candidates.append(Candidate(u.update_id, u.cid, tensors))
    return screen_updates(candidates, base_cid, base_tensors, min_change=min_change, copy_distance=copy_distance)
