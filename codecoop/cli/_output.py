"""Output a person can read anywhere: tables whose figures are never cut, and help texts that wrap
as paragraphs, in a terminal of any width and in a file (where rich assumes 80 columns).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer
    from rich.console import Console
    from rich.table import Table

__all__ = ["print_table", "reflow", "reflow_help"]


def _cell_width(cell: object) -> int:
    from rich.text import Text

    text = cell if isinstance(cell, Text) else Text.from_markup(str(cell))
    return max((len(line) for line in text.plain.splitlines()), default=0)


def _needed(table: Table, index: int) -> int:
    column = table.columns[index]
    cells = [column.header] if table.show_header else []
    return max(_cell_width(c) for c in [*cells, *column._cells, ""])


def print_table(
    table: Table,
    *,
    figures: Sequence[str] = (),
    words: Sequence[str] = (),
    drop: Sequence[str] = (),
    console: Console | None = None,
) -> None:
    """Print ``table`` so that no figure is cut: the ``figures`` columns (by header) keep their full
    width, the ``words`` columns wrap only between words (figures listed with spaces), every other
    column wraps its text (a CID or address folds onto the next line).

    When the figures alone do not fit the console, the ``drop`` columns go, in the order given,
    and the caption says which.
    """
    if console is None:
        from codecoop.cli import console as default

        console = default
    by_header = {str(c.header): i for i, c in enumerate(table.columns)}
    figure_ids = {by_header[h] for h in figures}
    for i, column in enumerate(table.columns):
        if i in figure_ids:
            column.no_wrap = True
            column.min_width = _needed(table, i)
        else:
            column.overflow = "fold"
            if str(column.header) in words:
                column.min_width = max((len(w) for c in column._cells for w in str(c).split()), default=1)
    dropped: list[str] = []
    for header in drop:
        if _fixed_width(table) <= console.width:
            break
        i = [str(c.header) for c in table.columns].index(header)
        del table.columns[i]
        dropped.append(header)
    if dropped:
        note = f"not shown at {console.width} columns: {', '.join(dropped)}"
        table.caption = f"{table.caption}; {note}" if table.caption else note
    console.print(table)


def _fixed_width(table: Table) -> int:
    """The width the table needs with its wrapping columns at one character."""
    pad = table.padding[1] + table.padding[3]
    widths = [c.min_width or 1 for c in table.columns]
    edges = (2 if table.show_edge and table.box else 0) + (len(widths) - 1 if table.box else 0)
    return sum(widths) + pad * len(widths) + edges


def reflow(doc: str) -> str:
    """A docstring with its paragraphs on one line each, so the help formatter wraps them at any width.

    Lines indented beyond the paragraph (examples) and the lines after them keep their breaks.
    """
    out: list[str] = []
    for paragraph in inspect.cleandoc(doc).split("\n\n"):
        lines = paragraph.split("\n")
        kept = [lines[0]]
        for line in lines[1:]:
            if line[:1].isspace() or kept[-1][:1].isspace() or re.match(r"\S.*:$", kept[-1]):
                kept.append(line)
            else:
                kept[-1] = f"{kept[-1]} {line}"
        out.append("\n".join(kept))
    return "\n\n".join(out)


def _commands(app: typer.Typer) -> Iterable[object]:
    yield from app.registered_commands
    for group in app.registered_groups:
        if group.typer_instance is not None:
            yield from _commands(group.typer_instance)


def reflow_help(app: typer.Typer) -> None:
    """Reflow the docstring help of every command of ``app`` and its groups (see :func:`reflow`)."""
    for info in _commands(app):
        if info.help is None and info.callback is not None and info.callback.__doc__:  # type: ignore[attr-defined]
            info.help = reflow(info.callback.__doc__)  # type: ignore[attr-defined]
