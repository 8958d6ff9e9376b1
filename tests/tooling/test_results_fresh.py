"""Every results file records the commit and machine it came from, and is newer than the code it
measures, or is listed in ``benchmarks/results/STALE.md`` with the reason."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
#: What each benchmark measures: a change under one of these paths after a results file's commit makes it stale.
MEASURES: dict[str, tuple[str, ...]] = {
    "aggregation": ("codecoop/aggregation", "codecoop/tensors.py"),
    "audit": ("codecoop/audit", "codecoop/token", "codecoop/chain"),
    "byzantine": (
        "contracts", "codecoop/sim/byzantine.py", "codecoop/sim/runner.py", "codecoop/node", "codecoop/aggregation",
        "codecoop/training", "codecoop/chain",
    ),
    "gas": ("contracts",),
    "load": ("contracts", "codecoop/chain"),
    "network": ("codecoop/node", "codecoop/p2p", "codecoop/storage", "codecoop/sim/devnet.py", "codecoop/sim/netns.py"),
    "round": ("contracts", "codecoop/node", "codecoop/sim/runner.py", "codecoop/training", "codecoop/aggregation"),
    "sim": (
        "contracts", "codecoop/node", "codecoop/sim/runner.py", "codecoop/sim/report.py", "codecoop/training",
        "codecoop/aggregation", "codecoop/chain",
    ),
    "training": ("codecoop/training",),
    "transport": ("codecoop/p2p", "codecoop/storage", "codecoop/node/transport.py"),
    "ui": ("codecoop/ui", "codecoop/token"),
}  # fmt: skip


def _stale() -> set[str]:
    text = (RESULTS / "STALE.md").read_text()
    return {m.group(1) for m in re.finditer(r"^\| ([\w-]+)\.json \|", text, re.M)}


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def _changed_since(commit: str, paths: tuple[str, ...]) -> list[str]:
    if _git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        pytest.skip(f"commit {commit[:10]} is not in this clone's history (a shallow clone?)")
    out = _git("diff", "--name-only", commit, "HEAD", "--", *paths)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line]


def test_every_benchmark_with_results_has_what_it_measures_declared():
    assert {p.stem for p in RESULTS.glob("*.json")} <= set(MEASURES)


@pytest.mark.parametrize("name", sorted(p.stem for p in RESULTS.glob("*.json")))
def test_a_results_file_is_newer_than_the_code_it_measures_or_listed_as_stale(name):
    if _git("rev-parse", "HEAD").returncode != 0:
        pytest.skip("not a git checkout")
    data = json.loads((RESULTS / f"{name}.json").read_text())
    stale = name in _stale()
    if stale:
        return  # listed, with its reason; documents quoting it say so
    assert data.get("commit"), f"{name}.json records no commit: rerun it, or list it in benchmarks/results/STALE.md"
    assert data.get("machine"), f"{name}.json records no machine"
    assert not data.get("dirty"), f"{name}.json came from a working tree with uncommitted changes: rerun it on a clean one"
    changed = _changed_since(data["commit"], MEASURES[name])
    assert not changed, f"{name}.json ({data['commit'][:10]}) is older than changes to {changed[:5]}: rerun it or list it as stale"


def test_a_file_listed_as_stale_is_really_stale():
    """A stale entry that a rerun made fresh must leave the list (so the list cannot hide anything)."""
    if _git("rev-parse", "HEAD").returncode != 0:
        pytest.skip("not a git checkout")
    for name in sorted(_stale()):
        data = json.loads((RESULTS / f"{name}.json").read_text())
        if data.get("commit") and not data.get("quick") and not data.get("dirty"):
            assert _changed_since(data["commit"], MEASURES[name]), f"{name}.json is fresh: remove it from STALE.md"
