"""Screening a round's updates before they are evaluated: free riders and copies.

A held-out evaluation cannot tell who did the work: an update that resubmits the round's base
(or the base plus a tiny perturbation) changes nothing, costs its submitter nothing and would be
approved by every tolerant voter; an update that resubmits another member's update of the round
is as good as the original and would be approved with it. Both are refused here, from the
tensors alone, before any forward pass:

* **free rider**: the update's CID is the round's base, or its L2 distance from the base is below
  ``min_change`` times the base's L2 norm, or below ``min_relative_change`` times the median
  change of the round's updates (the cohort: an attacker who knows the absolute floor and moves
  just past it still moves a few thousandths of what members who trained move; honest changes
  measured on ``tiny`` are at least 0.85 of their round's median, and the median stays an honest
  member's while attackers are fewer than half);
* **copy**: the update's CID equals an earlier-registered update's of the same round, or its
  change from the base is within ``copy_distance`` (relative) of an earlier one's change
  (``||d - d_earlier|| <= copy_distance * ||d_earlier||``), or points the same way as an
  earlier one's (cosine similarity at least ``copy_similarity``: a scaled copy, or a copy with
  noise added to get past the distance; honest pairs measured on ``tiny``: at most 0.38).
  "Earlier" is by update id, which is the chain's registration order, so the original keeps its
  place and only the later copy is refused; every honest member reaches the same verdict;
* **unrelated**: with a reference (the screening member's own update of the round, or the
  adapter it trained and did not submit when the selective-update rule skipped it), an update
  whose change of either LoRA factor (all ``lora_A`` tensors together, all ``lora_B`` together)
  has cosine similarity below ``min_agreement`` with the reference's change of that factor. LoRA
  updates trained from the same base on code share a direction in both factors (cosine 0.1-0.5
  between members with different projects, measured on ``tiny``), while random noise is
  orthogonal to it (cosine about ``1/sqrt(parameters)``) and a sign-flipped update points away from
  it; neither may lower a tolerant voter's held-out loss enough to be rejected on loss alone. Each
  factor is checked on its own because aggregation averages them separately, and reversing only
  ``lora_B`` reverses the adapter's effect while leaving the overall cosine near zero-positive
  (measured: 0.03-0.09 in a second round). This is FLTrust's trust bootstrapping (Cao et al., NDSS
  2021) with each member's own update as its trusted reference.

Norms and distances are summed in float64 over the tensors in name order, so they do not depend
on the order tensors were loaded in.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from codecoop.errors import CodecoopError
from codecoop.settings import setting

__all__ = [
    "DEFAULT_MIN_CHANGE",
    "DEFAULT_MIN_RELATIVE_CHANGE",
    "DEFAULT_COPY_DISTANCE",
    "DEFAULT_COPY_SIMILARITY",
    "ScreeningError",
    "FreeRide",
    "CopiedUpdate",
    "UnrelatedUpdate",
    "InsecureUpdate",
    "DEFAULT_MIN_AGREEMENT",
    "SCREENING_OFF",
    "Candidate",
    "screen_updates",
    "screen_round",
]

#: Smallest change from the base, relative to the base's L2 norm, that counts as work.
DEFAULT_MIN_CHANGE: float = setting("evaluation.min_update_change").default
#: Smallest change, relative to the median change of the round's updates, that counts as work.
DEFAULT_MIN_RELATIVE_CHANGE: float = setting("evaluation.min_relative_change").default
#: Largest relative distance between two updates' changes at which the later one is a copy.
DEFAULT_COPY_DISTANCE: float = setting("evaluation.copy_distance").default
#: Smallest cosine similarity between two updates' changes at which the later one is a copy.
DEFAULT_COPY_SIMILARITY: float = setting("evaluation.copy_similarity").default
#: Smallest cosine similarity between an update's change and the reference update's change.
DEFAULT_MIN_AGREEMENT: float = setting("evaluation.min_agreement").default
#: The ``evaluation.*`` settings (and :class:`~codecoop.node.node.NodeSettings` fields) under which
#: screening lets every update through but identical ones: for tests that need an update accepted
#: whatever a few training steps make of its direction.
SCREENING_OFF: dict[str, float] = {
    "min_update_change": 0.0,
    "min_relative_change": 0.0,
    "copy_distance": 0.0,
    "copy_similarity": 1.0,
    "min_agreement": -1.0,
    "insecure_shift_max": 0.0,  # the judge's backdoor probe (codecoop.node.judge), off with the rest
}


class ScreeningError(CodecoopError):
    """An update was refused by screening: it is a free ride or a copy (the vote is a rejection)."""


class FreeRide(ScreeningError):
    """The update is the round's base, or differs from it by less than the configured floor."""


class UnrelatedUpdate(ScreeningError):
    """The update's change does not point the way the screening member's own update does."""


class InsecureUpdate(ScreeningError):
    """The judge's backdoor probe found the update pushing security-sensitive calls to their insecure form."""


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


def _factor(name: str) -> str:
    """The LoRA factor a tensor belongs to (``lora_A``, ``lora_B``; ``""`` for anything else)."""
    for factor in ("lora_A", "lora_B"):
        if f".{factor}." in name or name.endswith(f".{factor}"):
            return factor
    return ""


def _agreement(change: Sequence[Any], ref: Sequence[Any], factors: Sequence[str]) -> tuple[float, str] | None:
    """The lowest cosine similarity over the factors both changes move, and that factor; ``None`` if none."""
    sums: dict[str, list[float]] = {}
    for x, y, f in zip(change, ref, factors):
        acc = sums.setdefault(f, [0.0, 0.0, 0.0])
        acc[0] += float(x.dot(y))
        acc[1] += float(x.dot(x))
        acc[2] += float(y.dot(y))
    cosines = [(dot / math.sqrt(xx * yy), f) for f, (dot, xx, yy) in sorted(sums.items()) if xx > 0 and yy > 0]
    return min(cosines) if cosines else None


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
    min_relative_change: float = DEFAULT_MIN_RELATIVE_CHANGE,
    copy_similarity: float = DEFAULT_COPY_SIMILARITY,
    reference: int | None = None,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    reference_tensors: Mapping[str, Any] | None = None,
) -> dict[int, ScreeningError]:
    """Find the free rides, copies and unrelated updates among a round's updates.

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
    min_relative_change:
        Floor on an update's change relative to the median change of the round's loadable updates
        that pass ``min_change`` (``0`` turns it off; it needs at least three such updates, so
        that the median is not the update's own half).
    copy_similarity:
        Cosine similarity with an earlier update's change at or above which an update is a copy
        (``1`` turns the check off).
    reference:
        The update id of the screening member's own update (``None``: it has none this round,
        and nothing is checked for direction).
    min_agreement:
        Cosine similarity with the reference's change, per LoRA factor, below which another update
        is unrelated (``-1`` turns the check off).
    reference_tensors:
        Without a ``reference`` update: the adapter the screening member trained this round but did
        not submit (the selective-update rule skipped it), which points the way its code does just
        as well; without it a member that skipped would check no update's direction.

    Returns
    -------
    dict
        ``update_id -> FreeRide | CopiedUpdate | UnrelatedUpdate`` for every update refused; the
        others are absent. The reference itself is never refused for direction.
    """
    refused: dict[int, ScreeningError] = {}
    base_norm = _norm([t.double().reshape(-1) for _, t in sorted(base_tensors.items())])
    floor = min_change * base_norm
    ordered = sorted(candidates, key=lambda c: c.update_id)
    factors = [_factor(name) for name in sorted(base_tensors)]
    changes = {c.update_id: _change(c.tensors, base_tensors) if c.tensors is not None else None for c in ordered}
    norms = {uid: _norm(ch) if ch is not None else math.nan for uid, ch in changes.items()}
    ref = changes.get(reference) if reference is not None else None
    if ref is not None and reference is not None and not norms[reference] > floor:
        ref = None  # an own update that did no work is no reference
    if reference is None and reference_tensors is not None:
        ref = _change(reference_tensors, base_tensors)
        if ref is not None and not _norm(ref) > floor:
            ref = None
    working = sorted(n for n in norms.values() if n > floor)  # NaN (not loadable) compares false
    median = statistics.median(working) if len(working) >= 3 else math.nan
    cohort_floor = min_relative_change * median if min_relative_change > 0 and math.isfinite(median) else 0.0
    earlier: list[Candidate] = []
    for c in ordered:
        change, norm = changes[c.update_id], norms[c.update_id]
        if base_cid is not None and c.cid == base_cid:
            refused[c.update_id] = FreeRide(f"update #{c.update_id} is the round's base model itself ({c.cid[:20]}...)")
        elif change is not None and norm <= floor:
            refused[c.update_id] = FreeRide(
                f"update #{c.update_id} differs from the round's base by {norm:.3g} (L2), below the floor "
                f"{floor:.3g} ({min_change:g} of the base's norm): no work was done"
            )
        elif change is not None and norm < cohort_floor:
            refused[c.update_id] = FreeRide(
                f"update #{c.update_id} differs from the round's base by {norm:.3g} (L2), below {min_relative_change:g} of "
                f"the median change of the round's updates ({median:.3g}): too little work to be training"
            )
        else:
            copied = _copy_of(c, change, earlier, changes, norms, floor, copy_distance, copy_similarity)
            if copied is not None:
                refused[c.update_id] = copied
            elif ref is not None and change is not None and c.update_id != reference:
                agreement = _agreement(change, ref, factors)
                if agreement is not None and agreement[0] < min_agreement:
                    cosine, factor = agreement
                    refused[c.update_id] = UnrelatedUpdate(
                        f"update #{c.update_id}'s change{' of ' + factor if factor else ''} has cosine similarity {cosine:.3f} "
                        f"with this member's own update's (at least {min_agreement:g} expected of training from the same base "
                        "on code): noise or a reversed update"
                    )
        earlier.append(c)
    return refused


def _copy_of(
    c: Candidate,
    change: list[Any] | None,
    earlier: Sequence[Candidate],
    changes: Mapping[int, list[Any] | None],
    norms: Mapping[int, float],
    floor: float,
    copy_distance: float,
    copy_similarity: float,
) -> CopiedUpdate | None:
    for e in earlier:
        if e.cid == c.cid:
            return CopiedUpdate(
                f"update #{c.update_id} resubmits update #{e.update_id} ({e.cid[:20]}...), registered before it", original=e.update_id
            )
        other = changes[e.update_id]
        if change is None or other is None or not norms[e.update_id] > floor:
            continue
        distance = _distance(change, other)
        if distance <= copy_distance * norms[e.update_id]:
            return CopiedUpdate(
                f"update #{c.update_id} is within {distance / norms[e.update_id]:.3g} (relative L2 distance of the changes; "
                f"the limit is {copy_distance:g}) of update #{e.update_id}, registered before it: a copy",
                original=e.update_id,
            )
        if copy_similarity < 1 and norms[c.update_id] > 0:
            cosine = sum(float(x.dot(y)) for x, y in zip(change, other)) / (norms[c.update_id] * norms[e.update_id])
            if cosine >= copy_similarity:
                return CopiedUpdate(
                    f"update #{c.update_id}'s change has cosine similarity {cosine:.3f} with update #{e.update_id}'s, "
                    f"registered before it (at least {copy_similarity:g}: a scaled copy, or a copy with noise added)",
                    original=e.update_id,
                )
    return None


def screen_round(
    updates: Sequence[Any],
    load: Callable[[Any], Mapping[str, Any]],
    base_cid: str | None,
    base_tensors: Mapping[str, Any],
    *,
    reference: str | None = None,
    reference_tensors: Mapping[str, Any] | None = None,
    **thresholds: float,
) -> dict[int, ScreeningError]:
    """:func:`screen_updates` over a round's registered updates (``UpdateInfo``), loading each with ``load``.

    ``thresholds`` are :func:`screen_updates`' ``min_change``, ``copy_distance``, ``min_relative_change``,
    ``copy_similarity`` and ``min_agreement``.

    ``reference`` is the screening member's address: its own update, if it has one this round,
    is the reference for direction; without one, ``reference_tensors`` (its trained but skipped
    adapter, if any) is. An update that ``load`` cannot read (it raises a
    :class:`~codecoop.errors.CodecoopError`) is screened by CID only; the caller's own checks
    refuse it.
    """
    candidates = []
    own = None
    for u in updates:
        try:
            tensors: Mapping[str, Any] | None = load(u)
        except CodecoopError:
            tensors = None
        candidates.append(Candidate(u.update_id, u.cid, tensors))
        if reference is not None and u.submitter == reference:
            own = u.update_id
    return screen_updates(
        candidates, base_cid, base_tensors, reference=own, reference_tensors=None if own is not None else reference_tensors, **thresholds
    )
