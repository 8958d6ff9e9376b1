"""Partitioning files among simulated organisations."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codecoop.errors import TrainingError
from codecoop.training import STRATEGIES, file_kind, partition, repository_of

ROOT = Path("/site-packages")


def _files() -> list[Path]:
    """Eight 'projects' of different sizes, with tests, inits and modules."""
    files = []
    for i, size in enumerate([40, 25, 12, 9, 6, 4, 3, 1]):
        for j in range(size):
            name = ["__init__.py", f"test_{j}.py", f"mod_{j}.py"][j % 3] if j else "__init__.py"
            files.append(ROOT / f"proj{i}" / ("tests" if name.startswith("test_") else "") / name)
    return files


def _assert_exact_cover(parts: list[list[Path]], files: list[Path], n: int) -> None:
    assert len(parts) == n
    assert all(parts), "every part must be non-empty"
    flat = [f for part in parts for f in part]
    assert Counter(flat) == Counter(set(files))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_covers_each_file_exactly_once(strategy: str) -> None:
    files = _files()
    _assert_exact_cover(partition(files, strategy, 4, seed=3, root=ROOT), files, 4)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_same_seed_same_parts_whatever_the_input_order(strategy: str) -> None:
    files = _files()
    shuffled = list(files)
    random.Random(9).shuffle(shuffled)
    assert partition(files, strategy, 4, seed=5, root=ROOT) == partition(shuffled, strategy, 4, seed=5, root=ROOT)


@pytest.mark.parametrize("strategy", ["uniform", "quantity-imbalanced", "label-imbalanced"])
def test_another_seed_gives_another_partition(strategy: str) -> None:
    files = _files()
    assert partition(files, strategy, 4, seed=1, root=ROOT) != partition(files, strategy, 4, seed=2, root=ROOT)


def test_uniform_sizes_differ_by_at_most_one() -> None:
    sizes = [len(p) for p in partition(_files(), "uniform", 7, seed=0)]
    assert max(sizes) - min(sizes) <= 1


def test_quantity_imbalanced_sizes_are_skewed() -> None:
    sizes = sorted(len(p) for p in partition(_files(), "quantity-imbalanced", 5, seed=0, alpha=0.3))
    assert sizes[-1] >= 3 * sizes[0]


def test_by_repository_never_splits_a_project() -> None:
    parts = partition(_files(), "by-repository", 3, seed=0, root=ROOT)
    owners = {repository_of(f, ROOT): i for i, part in enumerate(parts) for f in part}
    for i, part in enumerate(parts):
        assert {owners[repository_of(f, ROOT)] for f in part} == {i}


def test_by_repository_uses_the_top_level_project_under_the_common_root() -> None:
    parts = partition(_files(), "by-repository", 8, seed=0)
    assert sorted(len({f.parts[2] for f in part}) for part in parts) == [1] * 8


def test_label_imbalanced_by_file_kind_skews_kinds() -> None:
    parts = partition(_files(), "label-imbalanced", 3, seed=0, label="kind", alpha=0.1)
    shares = [Counter(file_kind(f) for f in part) for part in parts]
    assert any(len(s) < 3 or max(s.values()) > 0.7 * sum(s.values()) for s in shares)


def test_file_kinds() -> None:
    assert file_kind(Path("p/tests/helpers.py")) == "test"
    assert file_kind(Path("p/test_x.py")) == "test"
    assert file_kind(Path("p/__init__.py")) == "init"
    assert file_kind(Path("p/setup.py")) == "script"
    assert file_kind(Path("p/core.py")) == "module"


def test_bad_requests_are_refused() -> None:
    with pytest.raises(TrainingError, match="unknown partition strategy"):
        partition(_files(), "random", 2)
    with pytest.raises(TrainingError, match="non-empty parts"):
        partition(_files()[:3], "uniform", 4)
    with pytest.raises(TrainingError, match="repositories"):
        partition(_files(), "by-repository", 9, root=ROOT)


@settings(max_examples=60, deadline=None)
@given(
    names=st.sets(st.tuples(st.integers(0, 5), st.integers(0, 30)), min_size=1, max_size=80),
    n=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
    strategy=st.sampled_from(["uniform", "quantity-imbalanced", "label-imbalanced"]),
)
def test_cover_property_holds_for_random_file_sets(names, n, seed, strategy) -> None:
    files = [ROOT / f"p{a}" / f"m{b}.py" for a, b in names]
    if n > len(files):
        with pytest.raises(TrainingError):
            partition(files, strategy, n, seed=seed, root=ROOT)
        return
    _assert_exact_cover(partition(files, strategy, n, seed=seed, root=ROOT), files, n)
