"""A test hook for fault injection: ``CODECOOP_CRASH_AT`` kills a node process at a named point.

Only the fault-injection tests (``tests/node/test_faults.py``) set it. When the variable is unset,
as it always is in production, :func:`with_crash_point` returns the callbacks it was given
unchanged: nothing is wrapped and the variable is not read again.

``CODECOOP_CRASH_AT=<point>``, where ``<point>`` is

* a node event kind (``training``, ``trained``, ``submitted``, ``committed``, ``revealed``,
  ``finalized``, ``aggregated``, ``confirmed``, ``claimed``): the process dies right after the
  node reports it, i.e. after what the event reports reached the chain or the journal and before
  the next piece of work (``trained``: adapter stored and journaled, not yet registered;
  ``aggregated``: aggregate stored and journaled, not yet confirmed);
* ``train-step``: during local training, after its first optimiser step.

The process dies by ``SIGKILL`` sent to itself: no signal handler, ``finally`` block or atexit
hook runs, exactly as with ``kill -9`` from outside. Only the log is flushed first, so that the
test can see where it died.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ENV", "with_crash_point"]

#: The environment variable read by :func:`with_crash_point`.
ENV = "CODECOOP_CRASH_AT"

Callback = Callable[[Any], None] | None


def _die(point: str) -> None:
    print(f"[{ENV}] crash point {point!r} reached: SIGKILL", flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def with_crash_point(on_event: Callback, on_train_step: Callback, environ: Mapping[str, str] = os.environ) -> tuple[Callback, Callback]:
    """The node's callbacks, wrapped to kill the process at ``environ[ENV]``'s point (unchanged when unset)."""
    point = environ.get(ENV, "").strip()
    if not point:
        return on_event, on_train_step

    def event(e: Any) -> None:
        if on_event is not None:
            on_event(e)
        if e.kind == point:
            _die(point)

    def step(info: Any) -> None:
        if on_train_step is not None:
            on_train_step(info)
        if point == "train-step":
            _die(point)

    return event, step
