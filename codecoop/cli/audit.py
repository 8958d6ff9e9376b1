"""``codecoop audit``: check the federation's ledger from the chain (and the store) alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from codecoop.cli import console
from codecoop.cli._context import CHAIN, DEPLOYMENT, STORE, STORE_ROOT

app = typer.Typer(help="Audit the ledger: every mint, cap, vote, aggregate and governance action.", no_args_is_help=True)


@app.command()
def ledger(
    chain_url: str = CHAIN,
    deployment_file: Path = DEPLOYMENT,
    store: Optional[str] = STORE,
    store_root: Optional[Path] = STORE_ROOT,
    recompute: bool = typer.Option(True, "--recompute/--no-recompute", help="Re-run each round's aggregation (needs a store)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the full report as JSON."),
    html_out: Optional[Path] = typer.Option(None, "--html", help="Write a self-contained HTML report with plots."),
) -> None:
    """Rebuild the ledger from chain events and check it; exit status 1 when there are findings.

    Example: codecoop audit ledger --rpc http://127.0.0.1:8545 --deployment fed.json --store embedded --store-root ./store --html audit.html
    """
    from codecoop.audit.run import audit_deployment
    from codecoop.cli._context import open_content_store, open_deployment

    d = open_deployment(chain_url, deployment_file)
    content = open_content_store(store, store_root)
    with console.status("rebuilding the ledger from chain events and checking it ..."):
        report = audit_deployment(d, store=content, recompute=recompute)
    table = Table(title=f"ledger audit at block {report.head}")
    for col in ("check", "status", "checked", "detail"):
        table.add_column(col)
    colour = {"pass": "green", "fail": "red", "skipped": "yellow"}
    for c in report.checks:
        table.add_row(c.name, f"[{colour[c.status]}]{c.status}[/]", str(c.checked), c.detail)
    console.print(table)
    for f in report.findings:
        console.print(f"[red]{f.kind}[/] ({f.check}): {f.message}")
    for note in report.notes:
        console.print(f"[dim]note: {note}[/]")
    if json_out:
        json_out.write_text(json.dumps(report.to_json(), indent=1))
    if html_out:
        from codecoop.audit.report import render_html

        html_out.write_text(render_html(report))
    s = report.summary
    console.print(
        f"{s['members']} members, {s['rounds']} rounds, {s['updates']} updates ({s['accepted']} accepted), {s['votes']} votes, "
        f"{s['mints']} mints, {s['proposals']} proposals, {s['releases']} releases; supply {s['total_supply'] / 1e18:,.2f} "
        f"{report.token_symbol}; {len(report.findings)} finding(s) in {sum(report.timings.values()):.1f} s"
    )
    if report.findings:
        from codecoop.audit.ledger import AuditFindings

        raise AuditFindings(f"the ledger audit found {len(report.findings)} problem(s): {', '.join(sorted(report.kinds()))}")
