"""mypy over codecoop/: its error count may shrink, never grow (the count is recorded in mypy-errors.txt)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "mypy-errors.txt"


def _mypy() -> list[str]:
    exe = shutil.which("mypy", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("mypy is not installed (scripts/bootstrap.sh installs it with the dev extra)")
    out = subprocess.run([exe, "codecoop"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    return [line for line in out.stdout.splitlines() if re.search(r": error: ", line)]


def test_the_mypy_error_count_does_not_grow_past_the_recorded_count():
    recorded = int(RECORDED.read_text().split()[0])
    errors = _mypy()
    assert len(errors) <= recorded, (
        f"mypy finds {len(errors)} errors in codecoop/, more than the {recorded} recorded in {RECORDED.name}; "
        "fix the new ones:\n" + "\n".join(errors)
    )
