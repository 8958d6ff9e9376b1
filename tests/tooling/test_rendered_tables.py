"""Tables in docs/ that come from a results file are the rendering of the committed file: a figure
cannot drift from the run that produced it (re-render with ``python benchmarks/NAME.py --render``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: (doc, results name): every block rendered from a results file.
RENDERED = [
    (ROOT / "docs" / "UI.md", "ui"),
    (ROOT / "docs" / "RELIABILITY.md", "byzantine"),
    (ROOT / "docs" / "CONTRACTS.md", "gas"),
    (ROOT / "docs" / "NODE.md", "sim"),
    (ROOT / "docs" / "NODE.md", "round"),
]


@pytest.mark.parametrize("doc, name", RENDERED, ids=[n for _, n in RENDERED])
def test_the_table_in_the_doc_is_the_rendering_of_the_committed_results(doc, name, load_benchmark):
    module = load_benchmark(name)
    rendered_block = sys.modules["_common"].rendered_block  # loaded with the benchmark
    data = json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text())
    assert data.get("commit"), "a results file records the commit it came from"
    assert rendered_block(doc, name) == module.docs_block(data), f"run `python benchmarks/{name}.py --render`"
