"""Helpers shared by the benchmark scripts: targets, the results JSON, a readable table, peak memory.

Convention for every benchmark: ``python benchmarks/NAME.py [--quick]`` prints a table and writes
``benchmarks/results/NAME.json`` with a top-level ``"targets"`` list of
``{"name", "value", "target", "op", "met"}``.
"""

from __future__ import annotations

import json
import operator
import platform
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"

_OPS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, ">=": operator.ge}


def target(name: str, value: float, goal: float, op: str) -> dict[str, Any]:
    """One target entry; ``op`` is ``"<="`` or ``">="``."""
    if op not in _OPS:
        raise ValueError(f"target op must be '<=' or '>=', got {op!r}")
    return {"name": name, "value": value, "target": goal, "op": op, "met": bool(_OPS[op](value, goal))}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import os

    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}


def source_commit() -> dict[str, Any]:
    """The commit the figures came from, and whether the working tree had changes beside it."""
    import subprocess

    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(status)}


def write_results(name: str, payload: dict[str, Any], targets: Sequence[dict[str, Any]]) -> Path:
    """Write ``benchmarks/results/NAME.json`` (payload plus ``targets``) and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    data = {"benchmark": name, **source_commit(), **payload, "targets": list(targets)}
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print rows as an aligned plain-text table."""
    text = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) if text else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for row in text:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))


def print_targets(targets: Sequence[dict[str, Any]]) -> None:
    """Print the targets, one line each, with MET or MISSED."""
    for t in targets:
        print(f"  {'MET   ' if t['met'] else 'MISSED'} {t['name']}: {_cell(t['value'])} {t['op']} {_cell(t['target'])}")


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


@dataclass
class Peak:
    """Peak resident memory above the level when measuring started, in bytes."""

    bytes: int = 0


@contextmanager
def peak_rss(interval: float = 0.002) -> Iterator[Peak]:
    """Sample this process's RSS in a thread while the block runs; yield the peak increase.

    Sampling misses spikes shorter than ``interval``; allocations as large as the ones measured
    here live far longer than that.
    """
    import ctypes
    import ctypes.util

    import psutil

    # Hand freed heap pages back to the OS first, or a call that reuses them would show no increase.
    libc_name = ctypes.util.find_library("c")
    if libc_name and hasattr(ctypes.CDLL(libc_name), "malloc_trim"):
        ctypes.CDLL(libc_name).malloc_trim(0)
    proc = psutil.Process()
    start = proc.memory_info().rss
    peak = Peak()
    top = start
    done = threading.Event()

    def sample() -> None:
        nonlocal top
        while not done.is_set():
            top = max(top, proc.memory_info().rss)
            time.sleep(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        done.set()
        thread.join()
        top = max(top, proc.memory_info().rss)
        peak.bytes = max(0, top - start)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows as a Markdown table (numbers right-aligned), for a block rendered into docs."""
    text = [[_cell(v) for v in row] for row in rows]
    align = ["---:" if all(_numeric(r[i]) for r in text) and text else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in text]
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def render_into(doc: Path, name: str, block: str) -> bool:
    """Replace the block between ``<!-- results/NAME.json -->`` and ``<!-- end results/NAME.json -->``
    in ``doc`` with ``block``; True when the file changed. Docs tables come from results files only."""
    start, end = f"<!-- results/{name}.json -->", f"<!-- end results/{name}.json -->"
    text = doc.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{doc} has no {start} ... {end} block to render into")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{block}\n{end}{tail}"
    if new != text:
        doc.write_text(new)
    return new != text


def rendered_block(doc: Path, name: str) -> str:
    """The block currently between the markers of results ``name`` in ``doc``."""
    text = doc.read_text()
    return text.split(f"<!-- results/{name}.json -->", 1)[1].split(f"<!-- end results/{name}.json -->", 1)[0].strip("\n")
