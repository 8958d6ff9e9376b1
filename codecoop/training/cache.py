"""The on-disk cache for built models, converted weights and weight hashes.

Several processes (parallel test workers, simulated organisations) may ask for the same entry at
once. An entry is built in a private temporary directory and renamed into place, so a reader never
sees half an entry; a lock file makes the others wait instead of building the same thing again.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from codecoop.paths import cache_root

__all__ = ["cache_root", "cached_dir", "atomic_write_bytes"]


def cached_dir(relative: str, build: Callable[[Path], None]) -> Path:
    """Return ``cache_root()/relative``, calling ``build(tmp_dir)`` first if the entry is missing.

    ``build`` fills an empty temporary directory; only a build that returns normally is published,
    so an interrupted or failed build leaves nothing behind under the final name.
    """
    target = cache_root() / relative
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if target.is_dir():
                return target
            tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex}"
            tmp.mkdir()
            try:
                build(tmp)
                os.rename(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
