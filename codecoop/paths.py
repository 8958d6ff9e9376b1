"""Where codecoop keeps caches and finds the repository's toolchain."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root", "repo_root"]


def cache_root() -> Path:
    """The cache folder: ``$CODECOOP_CACHE``, or ``~/.cache/codecoop``; created on first use."""
    root = Path(os.environ.get("CODECOOP_CACHE") or Path.home() / ".cache" / "codecoop").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def repo_root() -> Path:
    """The source checkout (the folder that holds ``contracts/`` and ``package.json``)."""
    env = os.environ.get("CODECOOP_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent.parent
