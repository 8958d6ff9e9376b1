"""Fixtures for the bounded fuzz tests: the ``tiny`` base model that adapters are checked against.

Every fuzz test has a fixed ``max_examples`` (``support.bounded``), so the folder
runs in about a minute; the property of each is that nothing but a typed ``CodecoopError`` escapes.
"""

from __future__ import annotations

import pytest
import torch

from codecoop.training import BaseModel, load_base


@pytest.fixture(scope="session")
def tiny() -> BaseModel:
    """The tiny Llama on the CPU (built once and cached; see tests/training/conftest.py)."""
    base = load_base("tiny", device="cpu")
    torch.set_num_threads(1)
    return base
