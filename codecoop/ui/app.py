"""The dashboard's Starlette application: pages, forms, server-sent events, security headers.

Security, because every string on the chain or in the store is attacker-controlled:

- pages are Jinja2 templates with autoescape on; chart data is embedded as JSON in a
  non-executable ``<script type="application/json">`` (``tojson`` escapes ``<``, ``>`` and ``&``);
- a Content-Security-Policy with no inline script or style: scripts and styles come only from this
  server (the repository's ``static/`` and Chart.js from the npm lockfile); nothing from a CDN;
- every state-changing request is a POST carrying the server session's CSRF token, and its
  ``Origin`` (when the browser sends one) must be this server;
- the ``Host`` header must name this server (no DNS rebinding onto a dashboard on 127.0.0.1);
- the keystore password is posted once, used to decrypt, and dropped; nothing secret goes to the
  browser or into a cookie.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from codecoop.errors import CodecoopError, ConfigError
from codecoop.ui import views
from codecoop.ui.dashboard import Dashboard

__all__ = ["create_app", "CSP"]

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes Chromium send "Origin: null" with same-site forms
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
#: Seconds between keep-alive comments on an idle event stream.
_SSE_PING_S = 15.0
#: Flash messages kept for the page a form redirects to.
_FLASHES = 64


def _chart_js() -> Path | None:
    """Chart.js from the npm lockfile's node_modules (None when `npm ci` has not run)."""
    from codecoop.chain.compile import node_modules

    try:
        path = node_modules() / "chart.js" / "dist" / "chart.umd.js"
    except Exception:  # noqa: BLE001 - no node_modules at all: the pages show tables without charts
        return None
    return path if path.exists() else None


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its name: attacker-controlled strings are everywhere
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["short"] = _short
    env.filters["num"] = _num
    env.filters["pct"] = lambda v: "-" if v is None else f"{100 * v:.1f}%"
    return env


def _num(value: Any) -> str:
    """A figure for people: thousands separated, four significant digits below 1,000."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return f"{value:,}"


def _short(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= 18 else f"{text[:10]}…{text[-6:]}"


def create_app(db: Dashboard, *, allowed_hosts: list[str] | None = None) -> Starlette:
    """The dashboard application over ``db`` (started by the caller)."""
    env = _environment()
    chart_js = _chart_js()
    flashes: dict[str, tuple[bool, str]] = {}
    #: Transactions prepared for a browser wallet, by one-time token: (request, what it does, page to return to).
    wallet_requests: dict[str, tuple[dict[str, Any], _Tx, str]] = {}

    def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        flash = flashes.pop(request.query_params.get("flash", ""), None)
        html = env.get_template(template).render(
            request=request,
            path=request.url.path,
            db=db,
            head=db.head,
            csrf=db.csrf,
            signer=db.signer.address if db.signer is not None else None,
            can_unlock=db.can_unlock,
            has_journal=db.config is not None,
            has_store=db.store is not None,
            follow_error=db.follow_error,
            charts=chart_js is not None,
            flash=flash,
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=_HEADERS)

    def not_found(request: Request, what: str) -> HTMLResponse:
        return page(request, "error.html", status=404, title="Not found", message=what)

    def redirect(to: str, ok: bool, message: str) -> RedirectResponse:
        key = secrets.token_urlsafe(8)
        flashes[key] = (ok, message)
        while len(flashes) > _FLASHES:
            flashes.pop(next(iter(flashes)))
        sep = "&" if "?" in to else "?"
        return RedirectResponse(f"{to}{sep}{urlencode({'flash': key})}", status_code=303, headers=_HEADERS)

    async def form_of(request: Request) -> dict[str, str]:
        """The posted form, once its CSRF token and origin are checked (403 otherwise)."""
        form = await request.form()
        token = str(form.get("csrf", ""))
        origin = request.headers.get("origin")
        expected = f"{request.url.scheme}://{request.url.netloc}"
        if not hmac.compare_digest(token.encode(), db.csrf.encode()) or (origin is not None and origin != expected):
            raise _Forbidden()
        return {k: str(v) for k, v in form.items() if k != "csrf"}

    async def act(request: Request, back: str, action: Any) -> Response:
        """Run a state-changing ``action(form)`` off the event loop; redirect to ``back`` with what happened."""
        try:
            form = await form_of(request)
        except _Forbidden:
            return PlainTextResponse("forbidden: missing or wrong CSRF token, or a request from another site", 403, headers=_HEADERS)
        try:
            message = await asyncio.to_thread(action, form)
        except CodecoopError as exc:
            return redirect(back, False, str(exc))
        db.catch_up()
        return redirect(back if not isinstance(message, tuple) else message[1], True, message if isinstance(message, str) else message[0])

    # ------------------------------------------------------------------ pages
    async def overview(request: Request) -> Response:
        data = await asyncio.to_thread(db.cached, ("overview",), lambda: views.overview(db))
        return page(request, "overview.html", title="Overview", o=data)

    async def rounds(request: Request) -> Response:
        data = await asyncio.to_thread(lambda: db.cached(("rounds",), lambda: views.rounds_table(db), per_block=False))
        return page(request, "rounds.html", title="Rounds", t=data)

    async def round_page(request: Request) -> Response:
        r = request.path_params["r"]
        data = await asyncio.to_thread(db.cached, ("round", r), lambda: views.round_detail(db, r))
        if data is None:
            return not_found(request, f"round {r} has not been opened on this deployment")
        return page(request, "round.html", title=f"Round {r}", rd=data)

    async def members(request: Request) -> Response:
        data = await asyncio.to_thread(lambda: db.cached(("members",), lambda: views.members_table(db), per_block=False))
        return page(request, "members.html", title="Members", t=data)

    async def member_page(request: Request) -> Response:
        address = request.path_params["address"]
        data = await asyncio.to_thread(
            lambda: db.cached(("member", address.lower()), lambda: views.member_detail(db, address), per_block=False)
        )
        if data is None:
            return not_found(request, f"{address} never joined this federation")
        return page(request, "member.html", title="Member", mem=data)

    async def proposals(request: Request) -> Response:
        data = await asyncio.to_thread(db.cached, ("proposals",), lambda: views.proposals_table(db))
        return page(request, "proposals.html", title="Proposals", t=data)

    async def proposal_page(request: Request) -> Response:
        try:
            pid = int(request.path_params["pid"])
        except ValueError:
            return not_found(request, "a proposal id is a number")
        data = await asyncio.to_thread(db.cached, ("proposal", pid), lambda: views.proposal_detail(db, pid))
        if data is None:
            return not_found(request, f"no proposal {pid} on this deployment")
        return page(request, "proposal.html", title="Proposal", p=data)

    async def models(request: Request) -> Response:
        data = await asyncio.to_thread(lambda: db.cached(("models",), lambda: views.models_table(db), per_block=False))
        return page(request, "models.html", title="Models", t=data)

    async def audit(request: Request) -> Response:
        job = db.audits.get(request.query_params.get("job", ""))
        return page(request, "audit.html", title="Audit", job=job)

    async def audit_status(request: Request) -> Response:
        job = db.audits.get(request.path_params["job"])
        if job is None:
            return JSONResponse({"error": "no such audit"}, 404, headers=_HEADERS)
        return JSONResponse(job.to_json(), headers=_HEADERS)

    async def node(request: Request) -> Response:
        if db.config is None:
            return page(request, "node.html", title="My node", n=None)
        data = await asyncio.to_thread(db.cached, ("node",), lambda: views.node_journal(db))
        return page(request, "node.html", title="My node", n=data)

    async def cid_page(request: Request) -> Response:
        cid = request.path_params["cid"]
        data = await asyncio.to_thread(db.cached, ("cid", cid), lambda: views.cid_detail(db, cid))
        return page(request, "cid.html", title="Content", c=data)

    # ------------------------------------------------------------------ actions
    async def unlock(request: Request) -> Response:
        def do(form: dict[str, str]) -> str:
            try:
                address = db.unlock(form.get("password", ""))
            except ValueError:
                raise ConfigError("wrong password for this keystore") from None
            return f"unlocked {address} for this server session"

        return await act(request, request.headers.get("referer", "/") if _same_site(request) else "/", do)

    async def transaction(request: Request, back: str, build: Callable[[dict[str, str]], _Tx]) -> Response:
        """A state-changing chain transaction ``build(form)``: signed here with the unlocked keystore,
        or, when the page posts ``wallet`` (an address), handed back as an unsigned request for the
        browser wallet (EIP-1193 ``eth_sendTransaction``) after a dry run as that address."""
        try:
            form = await form_of(request)
        except _Forbidden:
            return PlainTextResponse("forbidden: missing or wrong CSRF token, or a request from another site", 403, headers=_HEADERS)
        wallet = form.pop("wallet", "").strip()
        chain = db.deployment.chain
        try:
            tx = await asyncio.to_thread(build, form)
            if wallet:
                if not _ADDRESS.fullmatch(wallet):
                    raise ConfigError(f"{wallet!r} is not an account address")
                req = await asyncio.to_thread(chain.request_for, tx.fn, wallet)
                token = secrets.token_urlsafe(16)
                wallet_requests[token] = (req, tx, back)
                while len(wallet_requests) > _FLASHES:
                    wallet_requests.pop(next(iter(wallet_requests)))
                return JSONResponse({"ok": True, "token": token, "tx": req, "what": tx.what}, headers=_HEADERS)
            signer = db.require_signer()
            result = await asyncio.to_thread(chain.transact, tx.fn, signer)
            message, to = tx.finish(result, back)
        except CodecoopError as exc:
            if wallet:
                # 200: a refusal is an answer the page shows (a 4xx would also be a console error)
                return JSONResponse({"ok": False, "error": str(exc)}, headers=_HEADERS)
            return redirect(back, False, str(exc))
        db.catch_up()
        return redirect(to, True, message)

    async def wallet_sent(request: Request) -> Response:
        """The browser wallet sent a prepared transaction: wait for its receipt, then say what happened."""
        try:
            form = await form_of(request)
        except _Forbidden:
            return JSONResponse({"ok": False, "error": "forbidden: missing or wrong CSRF token"}, status_code=403, headers=_HEADERS)
        pending = wallet_requests.pop(form.get("token", ""), None)
        tx_hash = form.get("hash", "")
        if pending is None:
            return JSONResponse({"ok": False, "error": "unknown or used request: reload the page and try again"}, headers=_HEADERS)
        if not _TX_HASH.fullmatch(tx_hash):
            return JSONResponse({"ok": False, "error": f"{tx_hash!r} is not a transaction hash"}, headers=_HEADERS)
        req, tx, back = pending
        chain = db.deployment.chain

        def settle() -> tuple[str, str]:
            return tx.finish(chain.wait_for(tx_hash, expect=req), back)

        try:
            message, to = await asyncio.to_thread(settle)
        except CodecoopError as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, headers=_HEADERS)
        except Exception as exc:  # noqa: BLE001 - an unknown hash or a chain that does not answer: say so
            return JSONResponse({"ok": False, "error": f"cannot read transaction {tx_hash}: {exc}"}, headers=_HEADERS)
        db.catch_up()
        key = secrets.token_urlsafe(8)
        flashes[key] = (True, f"{message} (signed by the browser wallet, transaction {tx_hash})")
        sep = "&" if "?" in to else "?"
        return JSONResponse({"ok": True, "message": message, "redirect": f"{to}{sep}{urlencode({'flash': key})}"}, headers=_HEADERS)

    async def new_proposal(request: Request) -> Response:
        def build(form: dict[str, str]) -> _Tx:
            from codecoop.governance import proposals as gp

            d = db.deployment
            kind = form.get("kind")
            description = form.get("description", "").strip() or None
            if kind == "param":
                proposal = gp.set_parameter(d, [(form.get("name", ""), form.get("value", "").strip())], description)
            elif kind == "release":
                tag, cid = form.get("tag", "").strip(), form.get("cid", "").strip()
                if not tag or not cid:
                    raise ConfigError("a release needs a tag and the adapter's CID")
                try:
                    parent = int(form.get("parent", "0") or 0)
                except ValueError:
                    raise ConfigError("the parent version is a number (0: none)") from None
                proposal = gp.release(
                    d, tag, cid, parent=parent, metrics_cid=form.get("metrics_cid", "").strip() or None, description=description
                )
            elif kind == "member":
                proposal = gp.member_action(d, form.get("action", ""), form.get("member", "").strip(), description)
            else:
                raise ConfigError(f"unknown proposal kind {kind!r}")

            def created(result: Any, back: str) -> tuple[str, str]:
                pid = d.governor.proposal_created(result)
                return f"proposal {pid} created", f"/proposals/{pid}"

            return _Tx(d.governor.propose_fn(list(proposal.calls), proposal.description), "create the proposal", created)

        return await transaction(request, "/proposals", build)

    def _calls(pid: int) -> tuple[list[tuple[str, bytes]], str]:
        p = db.ledger.proposals.get(pid)
        if p is None:
            raise ConfigError(f"no proposal {pid} on this deployment")
        return list(zip(p.targets, p.calldatas)), p.description

    async def vote(request: Request) -> Response:
        pid = int(request.path_params["pid"])

        def build(form: dict[str, str]) -> _Tx:
            support = {"for": 1, "against": 0, "abstain": 2}.get(form.get("support", ""))
            if support is None:
                raise ConfigError("vote for, against or abstain")
            _calls(pid)
            fn = db.deployment.governor.vote_fn(pid, support, form.get("reason", "").strip())
            return _Tx(fn, f"vote {form['support']} on proposal {pid}", _says(f"voted {form['support']} on proposal {pid}"))

        return await transaction(request, f"/proposals/{pid}", build)

    async def lifecycle(request: Request) -> Response:
        pid, step = int(request.path_params["pid"]), request.url.path.rsplit("/", 1)[1]  # its two routes: queue, execute
        done = {"queue": "queued in the timelock", "execute": "executed"}

        def build(form: dict[str, str]) -> _Tx:
            calls, description = _calls(pid)
            fn = db.deployment.governor.lifecycle_fn(step, calls, description)
            return _Tx(fn, f"{step} proposal {pid}", _says(f"proposal {pid} {done[step]}"))

        return await transaction(request, f"/proposals/{pid}", build)

    async def run_audit(request: Request) -> Response:
        def do(form: dict[str, str]) -> tuple[str, str]:
            job = db.start_audit(recompute=form.get("recompute") == "on")
            return "audit started", f"/audit?{urlencode({'job': job.id})}"

        return await act(request, "/audit", do)

    # ------------------------------------------------------------------ live
    async def events(request: Request) -> Response:
        client = db.hub.subscribe()

        async def stream():
            try:
                yield f"data: {json.dumps({'type': 'hello', 'head': db.head, 'status': db.status})}\n\n"
                while not db.stopping:
                    try:
                        message = await asyncio.wait_for(client[1].get(), timeout=1.0)
                    except TimeoutError:
                        if await request.is_disconnected():
                            break
                        continue
                    yield f"data: {json.dumps(message)}\n\n"
            finally:
                db.hub.unsubscribe(client)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={**_HEADERS, "X-Accel-Buffering": "no"})

    async def vendor_chart(request: Request) -> Response:
        if chart_js is None:
            return PlainTextResponse("Chart.js is not installed: run `npm ci` in the repository", 404, headers=_HEADERS)
        return FileResponse(chart_js, media_type="text/javascript", headers=_HEADERS)

    routes = [
        Route("/", overview),
        Route("/rounds", rounds),
        Route("/rounds/{r:int}", round_page),
        Route("/members", members),
        Route("/members/{address}", member_page),
        Route("/proposals", proposals),
        Route("/proposals/new", new_proposal, methods=["POST"]),
        Route("/proposals/{pid}", proposal_page),
        Route("/proposals/{pid:int}/vote", vote, methods=["POST"]),
        Route("/proposals/{pid:int}/queue", lifecycle, methods=["POST"]),
        Route("/proposals/{pid:int}/execute", lifecycle, methods=["POST"]),
        Route("/models", models),
        Route("/audit", audit),
        Route("/audit", run_audit, methods=["POST"]),
        Route("/audit/{job}.json", audit_status),
        Route("/node", node),
        Route("/cid/{cid}", cid_page),
        Route("/unlock", unlock, methods=["POST"]),
        Route("/wallet/sent", wallet_sent, methods=["POST"]),
        Route("/events", events),
        Route("/vendor/chart.umd.js", vendor_chart),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    hosts = allowed_hosts or ["127.0.0.1", "localhost"]
    app = Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])
    app.state.dashboard = db
    return app


class _Forbidden(Exception):
    pass


@dataclass(frozen=True)
class _Tx:
    """A transaction a form asks for: the bound contract function, what it does in words, and what to
    say (and where to go) once it is mined: ``finish(result, back) -> (message, page)``."""

    fn: Any
    what: str
    finish: Callable[[Any, str], tuple[str, str]]


def _says(message: str) -> Callable[[Any, str], tuple[str, str]]:
    return lambda result, back: (message, back)


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


def _same_site(request: Request) -> bool:
    referer = request.headers.get("referer", "")
    return referer.startswith(f"{request.url.scheme}://{request.url.netloc}/")
