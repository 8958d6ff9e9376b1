"""Audits anyone with chain access can run: the ledger check (every token, every aggregate, every
governance action, rebuilt from chain events) and its reports; the memorization audit a participant
runs on its own private code (``memorization``, ``clones``); keyed clone fingerprints compared across
organisations without sharing code (``fingerprints``); influence concentration.

Importing this package is cheap: web3, torch and matplotlib load when an audit or a report runs.
"""

from __future__ import annotations

from codecoop.lazy import lazy_attributes

__all__ = [
    "AuditReport",
    "CheckResult",
    "Finding",
    "audit_ledger",
    "audit_deployment",
    "render_html",
    "Concentration",
    "gini",
    "nakamoto",
    "top_share",
    "MemorizationConfig",
    "MemorizationReport",
    "Leak",
    "audit_memorization",
    "CloneIndex",
]

_WHERE = {
    "AuditReport": "ledger_audit",
    "CheckResult": "ledger_audit",
    "Finding": "ledger_audit",
    "audit_ledger": "ledger_audit",
    "audit_deployment": "run",
    "render_html": "report",
    "Concentration": "concentration",
    "gini": "concentration",
    "nakamoto": "concentration",
    "top_share": "concentration",
    "MemorizationConfig": "memorization",
    "MemorizationReport": "memorization",
    "Leak": "memorization",
    "audit_memorization": "memorization",
    "CloneIndex": "clones",
}


__getattr__ = lazy_attributes(__name__, _WHERE)
