"""Split files among simulated organisations, deterministically by seed, each file exactly once.

Strategies
----------
``uniform``
    A seeded shuffle dealt round-robin: part sizes differ by at most one file.
``quantity-imbalanced``
    Part sizes drawn from a symmetric Dirichlet(``alpha``): small ``alpha`` gives a few large
    organisations and many small ones. Every part gets at least one file.
``by-repository``
    Natural organisations: files grouped by their repository (git work tree, or top-level project
    under the files' common root, e.g. each project in a site-packages folder), whole groups
    assigned greedily to the currently smallest part, largest group first.
``label-imbalanced``
    Label skew over a file attribute (``label="package"``: top-level project; ``"kind"``: test,
    init, script or module; or any callable): for each label, its files are spread over the parts
    by a fresh Dirichlet(``alpha``) draw, the usual non-IID recipe of federated-learning studies.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from codecoop.errors import TrainingError
from codecoop.training.corpus import repository_of

__all__ = ["STRATEGIES", "partition", "file_kind"]

PartitionStrategy = Literal["uniform", "quantity-imbalanced", "by-repository", "label-imbalanced"]
STRATEGIES: tuple[str, ...] = ("uniform", "quantity-imbalanced", "by-repository", "label-imbalanced")


def file_kind(path: Path) -> str:
    """A coarse label for a source file: ``test``, ``init``, ``script`` or ``module``."""
    name = path.name
    if name.startswith("test_") or name.endswith("_test.py") or {"test", "tests", "testing"} & set(path.parts[:-1]):
        return "test"
    if name == "__init__.py":
        return "init"
    if name in {"setup.py", "conftest.py", "__main__.py", "manage.py"}:
        return "script"
    return "module"


def _largest_remainder(weights: np.ndarray, total: int) -> list[int]:
    """Integer counts summing to ``total``, proportional to ``weights`` (ties go to lower indices)."""
    raw = weights / weights.sum() * total
    counts = np.floor(raw).astype(int)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: total - int(counts.sum())]:
        counts[i] += 1
    return [int(c) for c in counts]


def partition(
    files: Sequence[str | Path],
    strategy: str,
    n: int,
    seed: int = 0,
    *,
    alpha: float = 0.5,
    label: str | Callable[[Path], str] = "package",
    root: str | Path | None = None,
) -> list[list[Path]]:
    """Split ``files`` into ``n`` non-empty parts (each sorted) by ``strategy``; see the module docstring.

    The result depends only on the set of files, the strategy, ``n``, ``seed`` and the options, not
    on the order ``files`` is given in.
    """
    if strategy not in STRATEGIES:
        raise TrainingError(f"unknown partition strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    paths = sorted({Path(f) for f in files})
    if n < 1 or n > len(paths):
        raise TrainingError(f"cannot split {len(paths)} files into {n} non-empty parts")
    if alpha <= 0:
        raise TrainingError(f"alpha must be positive, got {alpha}")
    base = Path(root) if root is not None else (Path(os.path.commonpath([str(p) for p in paths])) if len(paths) > 1 else paths[0].parent)
    rng = np.random.default_rng(seed)

    if strategy == "uniform":
        order = list(paths)
        random.Random(seed).shuffle(order)
        parts = [order[i::n] for i in range(n)]
    elif strategy == "quantity-imbalanced":
        order = list(paths)
        random.Random(seed).shuffle(order)
        sizes = [1 + c for c in _largest_remainder(rng.dirichlet([alpha] * n), len(paths) - n)]
        parts, start = [], 0
        for size in sizes:
            parts.append(order[start : start + size])
            start += size
    elif strategy == "by-repository":
        parts = _by_repository(paths, n, base, seed)
    else:
        key = label if callable(label) else _label_function(label, base)
        parts = _label_imbalanced(paths, n, key, alpha, rng)
    return [sorted(p) for p in parts]


def _label_function(label: str, base: Path) -> Callable[[Path], str]:
    if label == "package":
        return lambda p: repository_of(p, base)
    if label == "kind":
        return file_kind
    raise TrainingError(f"unknown label {label!r}: use 'package', 'kind' or a callable")


def _by_repository(paths: list[Path], n: int, base: Path, seed: int) -> list[list[Path]]:
    groups: dict[str, list[Path]] = defaultdict(list)
    for p in paths:
        groups[repository_of(p, base)].append(p)
    if len(groups) < n:
        raise TrainingError(f"by-repository needs at least {n} repositories; the files come from {len(groups)}")
    parts: list[list[Path]] = [[] for _ in range(n)]
    for _, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        smallest = min(range(n), key=lambda i: (len(parts[i]), i))
        parts[smallest].extend(members)
    # The greedy fill is seed-free; the seed decides which organisation index gets which share.
    random.Random(seed).shuffle(parts)
    return parts


def _label_imbalanced(paths: list[Path], n: int, key: Callable[[Path], str], alpha: float, rng: np.random.Generator) -> list[list[Path]]:
    groups: dict[str, list[Path]] = defaultdict(list)
    for p in paths:
        groups[key(p)].append(p)
    parts: list[list[Path]] = [[] for _ in range(n)]
    for _, members in sorted(groups.items()):
        members = [members[i] for i in rng.permutation(len(members))]
        start = 0
        for i, count in enumerate(_largest_remainder(rng.dirichlet([alpha] * n), len(members))):
            parts[i].extend(members[start : start + count])
            start += count
    # A Dirichlet draw can leave a part empty; hand it one file from the largest part.
    for i in range(n):
        if not parts[i]:
            donor = max(range(n), key=lambda j: (len(parts[j]), -j))
            parts[i].append(parts[donor].pop())
    return parts
