"""What is rendered from the settings: the commented TOML template and the docs table."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from codecoop.settings import ABSENT, NODE_SECTIONS, SECTIONS, Setting

__all__ = ["markdown", "template", "toml_value"]

_WIDTH = 100


def toml_value(v: Any) -> str:
    """``v`` as a TOML value (strings as basic strings, escaped as TOML requires)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        out = []
        for ch in v:
            if ch in '"\\':
                out.append("\\" + ch)
            elif ch != "\t" and (ord(ch) < 0x20 or ord(ch) == 0x7F):
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {v!r}")


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, _WIDTH - 2, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False)


def template(header: str, lines: Mapping[str, str]) -> str:
    """The node's TOML configuration with every setting commented.

    ``lines`` gives the whole line of a setting (``name`` -> ``key = value``) where it is not the
    default; a setting without a default (``ABSENT``) is written only when ``lines`` has it.
    """
    out = [*_comment_lines(header), ""]
    for section in NODE_SECTIONS:
        out.append(f"[{section.name}]")
        out.extend(_comment(section.help))
        for s in section.settings:
            line = lines.get(s.name)
            if line is None and s.default is ABSENT:
                out.extend(_comment(f"{s.key}: {s.describe()}"))
                continue
            out.extend(_comment(s.describe()))
            out.append(line if line is not None else f"{s.key} = {toml_value(s.default)}")
        out.append("")
    return "\n".join(out)


def _comment_lines(text: str) -> list[str]:
    return ["# " + line if line else "#" for line in text.splitlines()]


def _type_name(t: Any) -> str:
    return {int: "integer", float: "number", str: "string", bool: "boolean"}.get(t, "list of strings")


def _default(s: Setting) -> str:
    if s.default is ABSENT:
        return "(none)"
    if s.default is None:
        return "(none)"
    return f"`{toml_value(s.default)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    """docs/SETTINGS.md: one table per section, rendered from the definitions."""
    out = [
        "# Settings",
        "",
        "Rendered from `codecoop/settings/__init__.py` by `python -m codecoop.settings --markdown > docs/SETTINGS.md`;",
        "a test fails when this file and the definitions differ. Sections `chain` to `audit` are a node's TOML",
        "configuration (`codecoop init` writes them commented; `--set section.key=value` overrides any of them);",
        "`sim` holds what only `codecoop sim` takes. Flags are the options of `codecoop sim` (and `codecoop init`).",
        "",
    ]
    for section in SECTIONS:
        out += [f"## [{section.name}]", "", _cell(section.help), ""]
        out += ["| setting | type | default | unit | flag | meaning |", "|---|---|---|---|---|---|"]
        for s in section.settings:
            flag = " ".join(f"`{f}`" for f in s.flags)
            out.append(f"| `{s.name}` | {_type_name(s.type)} | {_cell(_default(s))} | {s.unit} | {flag} | {_cell(s.help)} |")
        out.append("")
    return "\n".join(out)
