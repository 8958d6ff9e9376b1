"""The audit as one self-contained HTML page: summary, checks, findings and plots (PNG, base64-embedded).

Plots: tokens per member over epochs, issuance against the cap, accepted and rejected updates per
round, the reported loss improvement of each global version, and voting-power concentration over time.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from codecoop.audit.ledger_audit import AuditReport
from codecoop.chain.units import to_tokens

__all__ = ["render_html", "plots"]


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def plots(report: AuditReport) -> dict[str, str]:
    """Title to base64 PNG of each plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, str] = {}
    epochs = [e.epoch for e in report.epochs]
    holders = sorted({a for e in report.epochs for a in e.balances})

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for a in holders:
        ax.plot(epochs, [to_tokens(e.balances.get(a, 0)) for e in report.epochs], marker=".", label=a[:10])
    ax.set(xlabel="epoch", ylabel=f"{report.token_symbol} held at epoch end", title="Tokens per member")
    if 0 < len(holders) <= 12:
        ax.legend(fontsize=7, ncol=2)
    out["Tokens per member over epochs"] = _png(fig)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(epochs, [to_tokens(e.minted) for e in report.epochs], label="minted")
    ax.step(epochs, [to_tokens(e.epoch_cap) for e in report.epochs], where="mid", color="red", label="epoch cap")
    ax.set(xlabel="epoch", ylabel=report.token_symbol, title="Issuance against the cap")
    ax.legend(fontsize=8)
    out["Issuance against the cap"] = _png(fig)

    rounds = [r.round for r in report.rounds]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(rounds, [r.accepted for r in report.rounds], label="accepted", color="tab:green")
    ax.bar(rounds, [r.rejected for r in report.rounds], bottom=[r.accepted for r in report.rounds], label="rejected", color="tab:red")
    ax.set(xlabel="round", ylabel="updates", title="Accepted and rejected updates per round")
    ax.legend(fontsize=8)
    out["Accepted and rejected updates per round"] = _png(fig)

    versions = [r for r in report.rounds if r.completed and r.mean_score is not None]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot([r.round for r in versions], [r.mean_score / 1e6 for r in versions], marker="o")
    ax.set(xlabel="global version (round)", ylabel="nats", title="Loss improvement per version (mean score of accepted updates)")
    out["Loss per version"] = _png(fig)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(epochs, [e.power.gini for e in report.epochs], marker=".", label="Gini")
    ax.plot(epochs, [e.power.top1 for e in report.epochs], marker=".", label="top-1 share")
    ax.set(xlabel="epoch", ylim=(0, 1), title="Voting-power concentration")
    ax2 = ax.twinx()
    ax2.step(epochs, [e.power.nakamoto for e in report.epochs], where="mid", color="grey", label="Nakamoto coefficient")
    ax2.set_ylabel("Nakamoto coefficient")
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="upper right", fontsize=8)
    out["Concentration over time"] = _png(fig)
    return out


def render_html(report: AuditReport) -> str:
    """The report as a single HTML document with no external resources."""
    e = html.escape
    verdict = "clean" if report.clean else f"{len(report.findings)} finding(s)"
    rows = "".join(
        f"<tr class='{c.status}'><td>{e(c.name)}</td><td>{c.status}</td><td>{c.checked}</td><td>{e(c.detail)}</td></tr>"
        for c in report.checks
    )
    findings = (
        "".join(
            f"<tr><td>{e(f.kind)}</td><td>{e(f.check)}</td><td>{'' if f.round is None else f.round}</td><td>{e(f.message)}</td></tr>"
            for f in report.findings
        )
        or "<tr><td colspan='4'>none</td></tr>"
    )
    summary = "".join(f"<tr><th>{e(k)}</th><td>{v:,}</td></tr>" for k, v in report.summary.items())
    addresses = "".join(f"<tr><th>{e(k)}</th><td><code>{e(v)}</code></td></tr>" for k, v in report.addresses.items())
    figures = "".join(
        f"<figure><img alt='{e(title)}' src='data:image/png;base64,{png}'><figcaption>{e(title)}</figcaption></figure>"
        for title, png in plots(report).items()
    )
    notes = "".join(f"<li>{e(n)}</li>" for n in report.notes)
    timings = ", ".join(f"{k} {v:.2f} s" for k, v in report.timings.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>codecoop ledger audit</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; }}
tr.fail td {{ background: #fdd; }} tr.skipped td {{ background: #ffd; }} tr.pass td {{ background: #efe; }}
figure {{ display: inline-block; margin: 0.5em; }} img {{ max-width: 520px; }}
</style></head><body>
<h1>codecoop ledger audit: {e(verdict)}</h1>
<p>Rebuilt from chain events up to block {report.head}; {e(timings)}.</p>
<h2>Checks</h2><table><tr><th>check</th><th>status</th><th>checked</th><th>detail</th></tr>{rows}</table>
<h2>Findings</h2><table><tr><th>kind</th><th>check</th><th>round</th><th>message</th></tr>{findings}</table>
{"<h2>Notes</h2><ul>" + notes + "</ul>" if notes else ""}
<h2>Plots</h2>{figures}
<h2>Summary</h2><table>{summary}</table>
<h2>Contracts</h2><table>{addresses}</table>
</body></html>
"""
