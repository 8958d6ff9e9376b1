"""Shared pytest configuration.

Markers (declared in pyproject.toml): ``slow`` for long runs, ``daemon`` for tests that start a real
hardhat node, IPFS daemon or libp2p peers. CI runs everything; locally ``-m "not slow and not daemon"``
gives the fast unit suite.
"""

from __future__ import annotations

import pytest


def _load_benchmark(name: str):
    """``benchmarks/NAME.py`` as a module (its ``_common`` import resolved), for tests that hold its targets or tables."""
    import importlib.util
    import sys
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(f"_bench_{name}", folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    return module


@pytest.fixture(scope="session")
def load_benchmark():
    """:func:`_load_benchmark`: ``load_benchmark("gas")`` is ``benchmarks/gas.py``."""
    return _load_benchmark
