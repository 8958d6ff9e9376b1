"""Exact-clone detection between generated code and private code, through a line-window hash index.

A **clone** is a run of at least ``min_lines`` (6 by default) consecutive *normalised* lines that
occurs, in the same order, both in a generated text and in one private file. Lines are normalised
by :func:`normalise_line`:

* leading and trailing whitespace is stripped and every inner run of whitespace becomes one space
  (so re-indentation and re-spacing do not hide a copy);
* blank lines are dropped;
* comment-only lines (first non-blank character ``#``) are dropped; comments after code stay, because
  without a parser a ``#`` may sit inside a string.

Dropped lines take no part in a window: a clone may span them on either side, and they never count
as generated lines.

The private side is indexed once (:class:`CloneIndex`): the hash of every window of ``min_lines``
consecutive normalised lines maps to where it starts. A generated text is then scanned window by
window; each hit is extended line by line along the private file it came from, which yields the
maximal clone spans without ever comparing texts pairwise. Hits are confirmed by comparing the
lines themselves, so a hash collision cannot produce a false clone.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "MIN_LINES",
    "NormalisedText",
    "normalise_line",
    "normalise_text",
    "window_key",
    "Source",
    "CloneSpan",
    "CloneIndex",
    "covered_lines",
    "FunctionPrompt",
    "function_prompts",
]

#: Shortest clone, in normalised lines (the threshold of the memorization studies).
MIN_LINES = 6

_SPACE = re.compile(r"\s+")
# Windows seen more often than this in the private data (boilerplate) are followed to at most this
# many places when a clone is extended; it bounds the work per hit without missing the clone itself.
_MAX_LOCATIONS = 64


def normalise_line(line: str) -> str | None:
    """A line as clones compare it, or None when it is blank or a comment-only line.

    >>> normalise_line("    return  a +  b   # sum")
    'return a + b # sum'
    >>> normalise_line("   # just a comment") is None
    True
    """
    text = _SPACE.sub(" ", line.strip())
    if not text or text.startswith("#"):
        return None
    return text


@dataclass(frozen=True)
class NormalisedText:
    """The kept lines of a text and where each came from.

    Attributes
    ----------
    lines:
        The normalised lines, blank and comment-only lines removed.
    line_numbers:
        For each kept line, its 1-based line number in the original text.
    raw:
        The original lines (all of them, ``\\n``-split after unifying newlines).
    """

    lines: tuple[str, ...]
    line_numbers: tuple[int, ...]
    raw: tuple[str, ...]


def normalise_text(text: str) -> NormalisedText:
    """Normalise every line of ``text`` (see :func:`normalise_line`), keeping original line numbers."""
    raw = tuple(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    lines: list[str] = []
    numbers: list[int] = []
    for i, line in enumerate(raw, start=1):
        norm = normalise_line(line)
        if norm is not None:
            lines.append(norm)
            numbers.append(i)
    return NormalisedText(tuple(lines), tuple(numbers), raw)


def window_key(lines: Sequence[str]) -> bytes:
    """The unkeyed index key of a window of normalised lines: 16 bytes of BLAKE2b over the joined lines."""
    return hashlib.blake2b("\n".join(lines).encode(), digest_size=16).digest()


@dataclass(frozen=True)
class Source:
    """One indexed private file."""

    path: Path
    text: NormalisedText


@dataclass(frozen=True)
class CloneSpan:
    """A maximal run of generated lines that copies a private file.

    ``start``/``stop`` index the generated text's normalised lines (``stop`` exclusive);
    ``source`` indexes :attr:`CloneIndex.sources`, ``source_start`` that file's normalised lines.
    """

    start: int
    stop: int
    source: int
    source_start: int

    @property
    def length(self) -> int:
        """Normalised lines in the span."""
        return self.stop - self.start


@dataclass
class CloneIndex:
    """Hash index of every ``min_lines``-line window of a set of private files.

    Build it with :meth:`build`; query a generated text with :meth:`find`.
    """

    min_lines: int = MIN_LINES
    sources: list[Source] = field(default_factory=list)
    windows: dict[bytes, list[tuple[int, int]]] = field(default_factory=dict)

    @classmethod
    def build(cls, files: Iterable[tuple[Path, str]], min_lines: int = MIN_LINES) -> CloneIndex:
        """Index ``(path, text)`` pairs.

        Raises
        ------
        ValueError
            ``min_lines`` is below 1.
        """
        if min_lines < 1:
            raise ValueError(f"min_lines must be at least 1, got {min_lines}")
        index = cls(min_lines)
        for path, text in files:
            index.add(Path(path), text)
        return index

    def add(self, path: Path, text: str) -> None:
        """Index one more file."""
        norm = normalise_text(text)
        sid = len(self.sources)
        self.sources.append(Source(path, norm))
        k = self.min_lines
        for j in range(len(norm.lines) - k + 1):
            self.windows.setdefault(window_key(norm.lines[j : j + k]), []).append((sid, j))

    def __len__(self) -> int:
        """Distinct windows indexed."""
        return len(self.windows)

    def find(self, lines: Sequence[str]) -> list[CloneSpan]:
        """Maximal clone spans in a sequence of normalised generated lines, in order of their start.

        Each hit window is extended along the private file it came from (the longest extension
        over its first locations wins); the scan then resumes at the first window that reaches past
        the span, so overlapping clones of different files are all found and none is reported twice.
        """
        k = self.min_lines
        spans: list[CloneSpan] = []
        i = 0
        n = len(lines)
        while i + k <= n:
            best: CloneSpan | None = None
            for sid, j in self.windows.get(window_key(lines[i : i + k]), ())[:_MAX_LOCATIONS]:
                src = self.sources[sid].text.lines
                if tuple(lines[i : i + k]) != src[j : j + k]:
                    continue  # a hash collision, not a clone
                length = k
                while i + length < n and j + length < len(src) and lines[i + length] == src[j + length]:
                    length += 1
                if best is None or length > best.length:
                    best = CloneSpan(i, i + length, sid, j)
            if best is None:
                i += 1
                continue
            spans.append(best)
            i = best.stop - k + 1
        return spans


def covered_lines(spans: Iterable[CloneSpan]) -> int:
    """Normalised lines inside at least one span (overlaps counted once)."""
    covered: set[int] = set()
    for s in spans:
        covered.update(range(s.start, s.stop))
    return len(covered)


@dataclass(frozen=True)
class FunctionPrompt:
    """The start of one private function: its source up to the end of its docstring."""

    path: Path
    name: str
    line: int  # 1-based line of the ``def``
    text: str


def function_prompts(path: Path, text: str) -> list[FunctionPrompt]:
    """Every function (and method) in a Python file that has a docstring, as a generation prompt.

    The prompt is the source from the ``def`` line (decorators left out, indentation kept) to the
    end of the docstring's line, without the newline: the model writes the line break and the
    body's indentation itself. (A prompt ending in a bare newline ends on a token that BPE
    tokenizers see between functions, not before a body, and models then start a new function.)
    Files that do not parse give no prompts.
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[FunctionPrompt] = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or not node.body:
            continue
        first = node.body[0]
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)):
            continue
        end = first.end_lineno or first.lineno
        prompt = "\n".join(lines[node.lineno - 1 : end])
        out.append(FunctionPrompt(Path(path), node.name, node.lineno, prompt))
    return sorted(out, key=lambda p: p.line)
