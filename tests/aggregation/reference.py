"""Plain numpy references: the formulas written as directly as possible, on float64 arrays.

The arithmetic order of the references follows the determinism rule (ascending CID, products
rounded once, added in order) wherever the rule fixes it, so several strategies must match them
bit for bit; elsewhere tests compare within a tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from codecoop.aggregation import Update

Arrays = dict[str, np.ndarray]


def arrays(update: Update) -> Arrays:
    return {k: v.to(torch.float64).numpy() for k, v in update.tensors.items()}


def by_cid(updates: list[Update]) -> list[Update]:
    return sorted(updates, key=lambda u: u.cid)


def fedavg(updates: list[Update], weights: list[float] | None = None) -> Arrays:
    """Weighted sum in float32 (the accumulation dtype of float32 adapters), CID order, each
    product rounded once; returned as float64 arrays holding float32 values."""
    ups = by_cid(updates)
    if weights is None:
        total = sum(u.num_samples for u in ups)
        weights = [u.num_samples / total for u in ups]
    out: Arrays = {}
    for name in ups[0].tensors:
        xs = [u.tensors[name].to(torch.float32).numpy() for u in ups]
        acc = xs[0] * np.float32(weights[0])
        for x, w in zip(xs[1:], weights[1:]):
            acc = acc + x * np.float32(w)
        out[name] = acc.astype(np.float64)
    return out


def fedmedian(updates: list[Update]) -> Arrays:
    ups = by_cid(updates)
    return {name: np.median(np.stack([arrays(u)[name] for u in ups]), axis=0) for name in ups[0].tensors}


def fedtrimmedavg(updates: list[Update], beta: float) -> Arrays:
    ups = by_cid(updates)
    cut = int(beta * len(ups))
    out: Arrays = {}
    for name in ups[0].tensors:
        s = np.sort(np.stack([arrays(u)[name] for u in ups]), axis=0)
        out[name] = s[cut : len(ups) - cut].mean(axis=0)
    return out


def krum_select(updates: list[Update], f: int, m: int) -> list[str]:
    """CIDs of the ``m`` best Krum-scored updates."""
    ups = by_cid(updates)
    flat = [np.concatenate([arrays(u)[k].ravel() for k in sorted(u.tensors)]) for u in ups]
    n = len(ups)
    dist = np.array([[float(np.sum((a - b) ** 2)) for b in flat] for a in flat])
    scores = [np.sort(np.delete(dist[i], i))[: n - f - 2].sum() for i in range(n)]
    order = sorted(range(n), key=lambda i: (scores[i], ups[i].cid))
    return [ups[i].cid for i in order[:m]]


def fedopt(kind: str, rounds: list[list[Update]], base: Arrays, eta: float, beta_1: float, beta_2: float, tau: float) -> list[Arrays]:
    """Several rounds of a server optimiser, each from the previous round's result."""
    m = {k: np.zeros_like(v) for k, v in base.items()}
    v = {k: np.zeros_like(x) for k, x in base.items()}
    results = []
    x = {k: val.copy() for k, val in base.items()}
    for t, ups in enumerate(rounds, start=1):
        avg = fedavg(ups)
        new = {}
        for k in x:
            d = avg[k] - x[k]
            m[k] = beta_1 * m[k] + (1 - beta_1) * d
            if kind == "fedadam":
                v[k] = beta_2 * v[k] + (1 - beta_2) * d * d
                lr = eta * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
            elif kind == "fedyogi":
                v[k] = v[k] - (1 - beta_2) * d * d * np.sign(v[k] - d * d)
                lr = eta
            else:
                v[k] = v[k] + d * d
                lr = eta
            new[k] = x[k] + lr * m[k] / (np.sqrt(v[k]) + tau)
        results.append(new)
        x = {k: val.astype(np.float32).astype(np.float64) for k, val in new.items()}
    return results


def clip(update: Update, base: Arrays | None, clip_norm: float) -> Arrays:
    a = arrays(update)
    origin = base if base is not None else {k: np.zeros_like(v) for k, v in a.items()}
    norm = math.sqrt(sum(float(np.sum((a[k] - origin[k]) ** 2)) for k in a))
    if norm <= clip_norm:
        return a
    return {k: origin[k] + (a[k] - origin[k]) * (clip_norm / norm) for k in a}


def as_float32(result: Arrays) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v.astype(np.float32)) for k, v in result.items()}
