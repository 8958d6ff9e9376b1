"""Every command's tables and help read whole at 80 columns and without a terminal: no figure is cut,
no sentence is broken where its docstring had a line break."""

from __future__ import annotations

import io
from types import SimpleNamespace as N

import click
import pytest
import typer
from rich.console import Console
from rich.table import Table

from codecoop.cli import _register, app
from codecoop.cli._output import print_table, reflow
from codecoop.cli.node import journal_rows
from codecoop.cli.sim import _summary

WIDTH = 80


def _console(buf: io.StringIO) -> Console:
    return Console(width=WIDTH, file=buf)


def _report(orgs: int):
    names = [f"organisation-{i}" for i in range(orgs)]
    rounds = [
        N(round=i, outcome="completed" if i < 3 else "failed", accepted=4, rejected=1, global_loss=2.45317 + i, global_ppl=11.63 + i, validation_loss=2.40118 + i,
          baseline_loss={n: 2.56789 + i for n in names}, minted={n: 1234.0 * i for n in names}, gas={"a": 1234567, "b": 2345678})
        for i in (1, 2, 3)
    ]  # fmt: skip
    return N(orgs=[N(name=n) for n in names], rounds=rounds, settings={"strategy": "fedtrimmedavg:beta=0.2", "model": "smollm2-135m"},
             initial_loss=2.61234, initial_validation_loss=2.59876, final_loss=2.45317, improved=True, wall_s=121.4)  # fmt: skip


@pytest.mark.parametrize("orgs", [3, 8])
def test_the_sim_summary_shows_every_figure_whole_at_80_columns_in_a_file(orgs):
    report = _report(orgs)
    buf = io.StringIO()
    _summary(report, _console(buf))
    text = buf.getvalue()
    assert "…" not in text
    words = set(text.split())
    figures = [f"{report.initial_loss:.4f}", f"{report.initial_validation_loss:.4f}"]
    for r in report.rounds:
        figures += [f"{r.global_loss:.4f}", f"{r.validation_loss:.4f}", f"{r.global_ppl:.0f}", f"{sum(r.gas.values()) / 1000:,.0f}"]
        figures += [f"{v:.3f}" for v in r.baseline_loss.values()] + [f"{v:.0f}" for v in r.minted.values()]
    assert [f for f in figures if f not in words] == []


def test_a_table_folds_long_text_and_keeps_figures_whole():
    table = Table(title="updates")
    for col in ("id", "submitter", "cid", "approvals", "rejections", "mean approved delta (nats)"):
        table.add_column(col)
    address, cid = "0x" + "ab" * 20, "bafkrei" + "q" * 52
    table.add_row("17", address, cid, "12", "3", "0.0123")
    buf = io.StringIO()
    print_table(table, figures=("id", "approvals", "rejections", "mean approved delta (nats)"), console=_console(buf))
    text = buf.getvalue()
    assert "…" not in text
    assert {"17", "12", "3", "0.0123"} <= set(text.replace("│", " ").split())
    assert sum(line.count("q") for line in text.splitlines()) == 52  # folded onto further lines, never cut
    assert all(len(line) <= WIDTH for line in text.splitlines())


def test_figures_that_cannot_fit_drop_the_listed_columns_and_say_so():
    table = Table()
    for col in ("a", "b", "c"):
        table.add_column(col)
    table.add_row("1" * 30, "2" * 30, "3" * 30)
    buf = io.StringIO()
    print_table(table, figures=("a", "b", "c"), drop=("c",), console=_console(buf))
    text = buf.getvalue()
    assert "1" * 30 in text and "2" * 30 in text and "3" * 30 not in text
    assert "not shown at 80 columns: c" in " ".join(text.split())


def test_node_status_journal_rows_print_whole():
    network = {"objects": 12, "bytes": 1_234_567, "by_path": {"libp2p": {"objects": 12, "bytes": 1_234_567, "failures": 0}},
               "by_peer": {"12D3KooWpeer": {"objects": 12, "bytes": 1_234_567, "failures": 0}}}  # fmt: skip
    journal = N(rounds={3: N(skipped=False, trained_cid="bafkrei" + "x" * 52, ballot=b"1", aggregate_cid=None, done=True)},
                privacy_spent=lambda delta: (1.2345, 2), network=network)  # fmt: skip
    table = Table(show_header=False)
    for row in journal_rows(journal, 1e-5):
        table.add_row(*row)
    buf = io.StringIO()
    print_table(table, console=_console(buf))
    assert "…" not in buf.getvalue() and "1.23" in buf.getvalue()
    assert dict(journal_rows(journal, 1e-5))["network"].startswith("fetched 12 object(s), 1.23 MB (12 over libp2p) from 1 peer(s)")


def test_reflow_joins_a_paragraph_and_keeps_example_lines():
    doc = """Summary line.

    A sentence broken
    over two lines.

    Examples:
      codecoop a
      codecoop b
    """
    assert reflow(doc) == "Summary line.\n\nA sentence broken over two lines.\n\nExamples:\n  codecoop a\n  codecoop b"


def _paths(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        path = (*prefix, name)
        if isinstance(command, click.Group):
            yield from _paths(command, path)
        else:
            yield path


_register()
COMMANDS = sorted(_paths(typer.main.get_command(app)))


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_wraps_paragraphs_at_80_columns_without_breaking_a_sentence(path, monkeypatch, capsys):
    from codecoop.cli import main

    monkeypatch.setenv("COLUMNS", str(WIDTH))
    monkeypatch.setenv("TERM", "dumb")
    assert main([*path, "--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    prose = [line.rstrip() for line in lines if not line.lstrip().startswith(("╭", "│", "╰", "Usage"))]
    assert not any("…" in line for line in prose)
    for a, b in zip(prose, prose[1:]):
        # a line of prose ends early only where its paragraph, a heading or an example ends
        example = b.split()[0:1] == ["codecoop"] if b.strip() else False
        if a.strip() and b.strip() and not example and not a.startswith("   ") and not b.startswith("   ") and not a.endswith(":"):
            assert len(a) + 1 + len(b.split()[0]) > WIDTH - 1, f"{a!r} broken before {b.split()[0]!r}"
