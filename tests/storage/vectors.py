"""Deterministic test data for the CID vectors (only seeds, sizes and CIDs are committed)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

VECTORS_PATH = Path(__file__).parent / "data" / "cid_vectors.json"


def vector_bytes(seed: str, size: int) -> bytes:
    """The bytes of a vector: an extendable-output hash, so any size is reproducible anywhere."""
    return hashlib.shake_256(b"codecoop-cid-vector:" + seed.encode()).digest(size)


def load_vectors() -> list[dict[str, Any]]:
    """The recorded vectors: dicts with ``seed``, ``size`` and ``cid``."""
    return json.loads(VECTORS_PATH.read_text())["vectors"]
