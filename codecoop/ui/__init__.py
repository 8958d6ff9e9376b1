"""``codecoop ui``: the federation's web dashboard for DAO voters, auditors and member operators.

- :mod:`codecoop.ui.dashboard`: the server's state. One thread follows the chain for every client
  (:class:`~codecoop.token.ledger.LedgerFollower` folds only the new blocks' events), pushes each
  new block to the browsers (server-sent events), caches each page's data per head block, holds the
  signer (an encrypted keystore unlocked once per server session) and runs ledger audits.
- :mod:`codecoop.ui.views`: the data of each page, from the ledger and the chain clients.
- :mod:`codecoop.ui.app`: the Starlette application: pages (Jinja2, autoescaped), forms (CSRF
  token on every state-changing request), a strict Content-Security-Policy, static assets from the
  repository and Chart.js from the npm lockfile.
- :mod:`codecoop.ui.demo`: ``codecoop ui --demo``, a short federation on the embedded chain.
"""

from __future__ import annotations

__all__ = ["Dashboard", "create_app"]


def __getattr__(name: str):
    if name == "Dashboard":
        from codecoop.ui.dashboard import Dashboard

        return Dashboard
    if name == "create_app":
        from codecoop.ui.app import create_app

        return create_app
    raise AttributeError(name)
