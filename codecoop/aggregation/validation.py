"""Checks every update passes before any arithmetic, and the canonical order.

An update is refused with :class:`~codecoop.errors.InvalidUpdate` naming its CID when it has the
wrong tensor names, shapes or dtypes, a non-finite value, a tensor off the CPU, or a sample count
that is not a positive integer. Names, shapes and dtypes are compared with ``base`` when it is given
(the global adapter is the authority), otherwise with the update that sorts first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from codecoop.aggregation.update import FLOAT_DTYPES, Tensors, Update
from codecoop.errors import AggregationError, InvalidUpdate

__all__ = ["validate_updates", "validate_tensors", "all_finite"]


def all_finite(t: torch.Tensor) -> bool:
    """Whether every value of ``t`` is finite.

    A sum is non-finite whenever one of its terms is, so one read-only pass usually decides; only
    when the float sum overflows does it fall back to the element-wise test. numpy sums on one
    thread, which on a loaded machine is much faster than torch's threaded reduction.
    """
    if t.numel() == 0:
        return True
    if t.dtype == torch.bfloat16:
        # numpy has no bfloat16; bfloat16 shares float32's exponent, so the widening is exact.
        t = t.float()
    values = t.detach().numpy()
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(values.sum(dtype=np.float64 if values.dtype == np.float64 else np.float32)):
            return True
    return bool(np.isfinite(values).all())


def validate_tensors(tensors: Tensors, *, who: str, cid: str | None, finite: bool = True) -> None:
    """Refuse a tensor mapping that no strategy can use (types, device, dtype and, when ``finite``,
    non-finite values, naming the first such tensor by name)."""
    if not isinstance(tensors, Mapping):
        raise InvalidUpdate(f"{who}: tensors must be a mapping of name to tensor", update=cid)
    if not tensors:
        raise InvalidUpdate(f"{who} has no tensors", update=cid)
    for name, t in tensors.items():
        if not isinstance(name, str):
            raise InvalidUpdate(f"{who}: tensor names must be strings, got {name!r}", update=cid)
        if not isinstance(t, torch.Tensor):
            raise InvalidUpdate(f"{who}: {name!r} is a {type(t).__name__}, not a torch.Tensor", update=cid)
        if t.device.type != "cpu" or t.layout != torch.strided:
            raise InvalidUpdate(
                f"{who}: {name!r} is a {t.layout} tensor on {t.device}; aggregation is defined on dense CPU "
                "tensors only (bit-for-bit results are guaranteed there), move it with .cpu()",
                update=cid,
            )
        if t.dtype not in FLOAT_DTYPES:
            raise InvalidUpdate(f"{who}: {name!r} has dtype {t.dtype}; adapters must be floating point", update=cid)
    if finite:
        for name in sorted(tensors):
            if not all_finite(tensors[name]):
                raise InvalidUpdate(f"{who}: {name!r} contains NaN or Inf values; refuse this update", update=cid)


def validate_updates(updates: Sequence[Update], *, base: Tensors | None = None) -> list[Update]:
    """Check ``updates`` (and ``base``) and return them in ascending CID order.

    Raises
    ------
    AggregationError
        If there is no update at all.
    InvalidUpdate
        Naming the offending update (``update=cid``) or ``base`` (``update=None``).
    """
    if len(updates) == 0:
        raise AggregationError("no updates to aggregate; a round needs at least one accepted update")
    seen: set[str] = set()
    for u in updates:
        if not isinstance(u, Update):
            raise AggregationError(f"expected codecoop.aggregation.Update objects, got {type(u).__name__}")
        if not isinstance(u.cid, str) or not u.cid:
            raise InvalidUpdate(f"update CID must be a non-empty string, got {u.cid!r}", update=None)
        if u.cid in seen:
            raise InvalidUpdate(f"update {u.cid} appears twice; each accepted update counts once", update=u.cid)
        seen.add(u.cid)
        if isinstance(u.num_samples, bool) or not isinstance(u.num_samples, int) or u.num_samples <= 0:
            raise InvalidUpdate(f"update {u.cid}: num_samples must be a positive integer, got {u.num_samples!r}", update=u.cid)
    ordered = sorted(updates, key=lambda u: u.cid)

    # Cheap structural checks first, so a wrong layout is reported before the pass over the values.
    if base is not None:
        validate_tensors(base, who="base adapter", cid=None, finite=False)
    for u in ordered:
        validate_tensors(u.tensors, who=f"update {u.cid}", cid=u.cid, finite=False)
    if base is not None:
        ref, ref_who = base, "the base adapter"
    else:
        ref, ref_who = ordered[0].tensors, f"update {ordered[0].cid} (first by CID)"
    names = sorted(ref)
    for u in ordered:
        who = f"update {u.cid}"
        if sorted(u.tensors) != names:
            missing = sorted(set(names) - set(u.tensors))[:3]
            extra = sorted(set(u.tensors) - set(names))[:3]
            raise InvalidUpdate(
                f"{who} has different tensor names from {ref_who}: missing {missing}, unexpected {extra}; "
                "it was trained for another adapter layout",
                update=u.cid,
            )
        for name in names:
            t, r = u.tensors[name], ref[name]
            if t.shape != r.shape:
                raise InvalidUpdate(f"{who}: {name!r} has shape {tuple(t.shape)}, {ref_who} has {tuple(r.shape)}", update=u.cid)
            if t.dtype != r.dtype:
                raise InvalidUpdate(f"{who}: {name!r} has dtype {t.dtype}, {ref_who} has {r.dtype}", update=u.cid)
    if base is not None:
        validate_tensors(base, who="base adapter", cid=None)
    for u in ordered:
        validate_tensors(u.tensors, who=f"update {u.cid}", cid=u.cid)
    return ordered
