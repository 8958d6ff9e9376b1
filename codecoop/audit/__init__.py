"""Audits anyone with chain access can run: the ledger check (every token, every aggregate, every
governance action, rebuilt from chain events) and its reports. Further audits (memorization,
influence) live beside it as their own modules.

Importing this package is cheap: web3, torch and matplotlib load when an audit or a report runs.
"""

from __future__ import annotations

import importlib
from typing import Any

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
]

_WHERE = {
    "AuditReport": "ledger",
    "CheckResult": "ledger",
    "Finding": "ledger",
    "audit_ledger": "ledger",
    "audit_deployment": "run",
    "render_html": "report",
    "Concentration": "concentration",
    "gini": "concentration",
    "nakamoto": "concentration",
    "top_share": "concentration",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"codecoop.audit.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'codecoop.audit' has no attribute {name!r}")
