"""Shared pieces of the fuzz tests: bounded hypothesis settings and a real "disk full".

``deadline=None``: a shared CI machine can stall any single example; the bound is the count.
"""

from __future__ import annotations

import contextlib
import resource
import signal
from collections.abc import Iterator

from hypothesis import HealthCheck, settings

#: Examples per property; RELIABILITY.md section 3 reports the totals from a run of the folder.
SMALL, MEDIUM, LARGE = 100, 200, 500
#: Nesting depth of the "too deep to parse" regressions: past Python's default recursion limit
#: (1000), shallow enough for the C JSON parser's stack.
DEEP = 5000


def bounded(n: int) -> settings:
    """Hypothesis settings for a property checked on ``n`` examples."""
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    )


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Make writes past ``limit`` bytes of any regular file fail with ``OSError(EFBIG)``, as a full
    disk would fail them midway (RLIMIT_FSIZE, with SIGXFSZ ignored so the write returns the error)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
