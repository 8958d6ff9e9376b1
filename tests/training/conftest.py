"""Fixtures for the training tests: the ``tiny`` base model (built once, then cached) and a small corpus.

``tiny`` lives in the normal cache (``$CODECOOP_CACHE`` or ``~/.cache/codecoop``); the first run on
a fresh machine builds it in about a minute, later runs load it in a second.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codecoop.training import BaseModel, CodeCorpus, load_base


@pytest.fixture(scope="session")
def tiny() -> BaseModel:
    """The tiny Llama on the CPU, shared by every test; tests must leave it unmodified.

    A first build runs on the recipe's own thread count (``tiny._THREADS``); after it, the tests run on one intra-op thread: on a shared
    2-core machine two OpenMP threads competing with other processes run up to ten times slower
    than one, and a fixed thread count keeps float sums identical from run to run.
    """
    base = load_base("tiny", device="cpu")
    torch.set_num_threads(1)
    return base


@pytest.fixture(scope="session")
def project_dir() -> Path:
    """An installed project's sources: realistic Python code that tiny was not pre-trained on."""
    import datasketch

    return Path(datasketch.__file__).parent


@pytest.fixture(scope="session")
def corpus(tiny: BaseModel, project_dir: Path) -> CodeCorpus:
    """The project's code as a tokenised corpus."""
    return CodeCorpus.from_path(project_dir, tiny.tokenizer, validation_fraction=0.15, seed=0)
