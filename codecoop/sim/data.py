"""The organisations' private code in a simulation: partitions of local Python source.

By default every organisation is one or more real projects installed beside codecoop (the
site-packages of different libraries), split with ``partition(..., "by-repository")``: natural,
non-identically distributed data, available offline on every machine that runs codecoop.
"""

from __future__ import annotations

import random
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from codecoop.errors import ConfigError

__all__ = ["DEFAULT_PROJECTS", "default_sources", "organisation_files"]

#: Pure-Python projects that codecoop's own dependencies install; those present are used.
DEFAULT_PROJECTS: tuple[str, ...] = (
    "click",
    "jinja2",
    "requests",
    "yaml",
    "attr",
    "idna",
    "httpx",
    "h11",
    "tqdm",
    "toolz",
    "packaging",
    "urllib3",
    "markdown_it",
    "multiformats",
    "mako",
    "anyio",
    "itsdangerous",
    "charset_normalizer",
    "typer",
    "eth_utils",
    "eth_abi",
)


def default_sources(projects: Sequence[str] = DEFAULT_PROJECTS) -> list[Path]:
    """The installed project folders among ``projects``, in site-packages."""
    site = Path(sysconfig.get_paths()["purelib"])
    found = [site / p for p in projects if (site / p).is_dir()]
    if not found:
        raise ConfigError(f"none of the default projects is installed in {site}; pass --data folders of Python code")
    return found


def organisation_files(sources: Sequence[Path], n: int, strategy: str, seed: int, *, max_files: int | None = None) -> list[list[Path]]:
    """Every ``.py`` file under ``sources``, split into ``n`` organisations' parts.

    ``max_files`` caps each part (a seeded sample) so that a simulation's cost stays bounded
    whatever is installed. With ``by-repository``, each source folder is one repository.
    """
    from codecoop.training import partition

    files = sorted({f for s in sources for f in Path(s).rglob("*.py") if f.is_file()})
    if not files:
        raise ConfigError(f"no Python files under {', '.join(map(str, sources))}")
    roots = {Path(s).parent for s in sources}
    root = roots.pop() if len(roots) == 1 else None
    if strategy == "by-repository" and len(sources) < n:
        raise ConfigError(f"--partition by-repository needs at least {n} projects (one per organisation); {len(sources)} given")
    parts = partition(files, strategy, n, seed, root=root)
    if max_files is not None:
        rng = random.Random(seed)
        parts = [sorted(rng.sample(p, max_files)) if len(p) > max_files else p for p in parts]
    return parts
