"""HumanEval pass@k: problems from the wheel, the sandbox, the estimator."""

from __future__ import annotations

import time

import pytest

from codecoop.errors import TrainingError
from codecoop.training import BaseModel, check_completion, estimate_pass_at_k, humaneval_problems, pass_at_k, run_sandboxed


def test_all_164_problems_ship_in_the_wheel() -> None:
    problems = humaneval_problems()
    assert len(problems) == 164
    assert problems[0].task_id == "HumanEval/0" and problems[0].entry_point == "has_close_elements"


def test_canonical_solutions_pass_and_wrong_ones_fail() -> None:
    for problem in humaneval_problems(limit=3):
        assert check_completion(problem, problem.canonical_solution).passed
        assert not check_completion(problem, "    return None\n").passed


def test_sandbox_kills_an_infinite_loop() -> None:
    started = time.monotonic()
    result = run_sandboxed("while True:\n    pass\n", timeout=1.0)
    assert result.status == "timeout"
    assert time.monotonic() - started < 5


def test_sandbox_stops_a_memory_bomb() -> None:
    result = run_sandboxed("blocks = []\nwhile True:\n    blocks.append(bytearray(10**7))\n", memory_mb=256, timeout=10)
    assert result.status == "memory"


def test_sandbox_has_no_network() -> None:
    result = run_sandboxed("import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)\n")
    assert result.status == "failed" and "network" in result.detail.lower()
    raw = run_sandboxed("import _socket\n_socket.socket().connect(('127.0.0.1', 9))\n")
    assert raw.status == "failed"


@pytest.mark.parametrize("escape", ["import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n"])
def test_exiting_early_is_not_a_pass(escape: str) -> None:
    assert run_sandboxed(escape).status == "failed"


def test_destructive_calls_are_disabled() -> None:
    assert run_sandboxed("import subprocess\nsubprocess.Popen(['true'])\n").status == "failed"
    assert run_sandboxed("import os\nos.system('true')\n").status == "failed"


def test_estimator_matches_the_closed_form() -> None:
    assert estimate_pass_at_k(10, 0, 1) == 0.0
    assert estimate_pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert estimate_pass_at_k(10, 1, 10) == 1.0
    # 1 - C(8, 2) / C(10, 2) = 1 - 28 / 45
    assert estimate_pass_at_k(10, 2, 2) == pytest.approx(1 - 28 / 45)
    with pytest.raises(TrainingError):
        estimate_pass_at_k(2, 1, 5)


def test_pass_at_k_runs_end_to_end_on_tiny(tiny: BaseModel) -> None:
    result = pass_at_k(tiny, problems=["HumanEval/2"], n=2, k=(1, 2), max_new_tokens=16, temperature=0.8)
    assert result.n_problems == 1 and result.n_samples == 2
    assert set(result.scores) == {1, 2}
    assert all(0.0 <= s <= 1.0 for s in result.scores.values())
