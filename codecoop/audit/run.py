"""One call for the whole ledger audit of a deployment: rebuild from events, check, time it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from codecoop.audit.ledger_audit import AuditReport, audit_ledger
from codecoop.chain.deployment import Deployment
from codecoop.token.ledger import Ledger

if TYPE_CHECKING:
    from codecoop.storage import ContentStore

__all__ = ["audit_deployment"]


def audit_deployment(
    deployment: Deployment, *, store: ContentStore | None = None, recompute: bool = True, to_block: int | None = None
) -> AuditReport:
    """Rebuild the ledger of ``deployment`` from chain events and audit it (see :func:`audit_ledger`)."""
    started = time.perf_counter()
    ledger = Ledger.from_deployment(deployment, to_block)
    rebuild_s = time.perf_counter() - started
    report = audit_ledger(ledger, store=store, recompute=recompute)
    report.timings = {"rebuild_s": rebuild_s, **report.timings}
    return report
