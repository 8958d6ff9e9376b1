"""The clone detector: planted clones of at least 6 normalised lines are found, near misses are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from codecoop.audit.clones import CloneIndex, function_prompts, normalise_line, normalise_text
from codecoop.audit.memorization import memorization_of_texts

PRIVATE = '''\
import math


def spiral_checksum(values, modulus):
    """Mix the values into one checksum, walking them as a spiral."""
    total = 0
    for i, v in enumerate(values):
        # odd positions count double
        weight = 2 if i % 2 else 1
        total = (total * 31 + v * weight) % modulus
    if total == 0:
        total = modulus - 1
    return total


def other(x):
    return x + 1
'''

BODY = PRIVATE.splitlines()[5:13]  # the eight lines of spiral_checksum after its docstring (one a comment)


def _index(min_lines: int = 6) -> CloneIndex:
    return CloneIndex.build([(Path("secret/spiral.py"), PRIVATE)], min_lines)


def test_normalisation_strips_and_collapses_whitespace_and_drops_blank_and_comment_lines():
    assert normalise_line("   total  =   (total * 31)\t% m   ") == "total = (total * 31) % m"
    assert normalise_line("\t   ") is None
    assert normalise_line("    # a comment") is None
    assert normalise_line("x = 1  # trailing comments stay") == "x = 1 # trailing comments stay"
    norm = normalise_text("a\n\n  # c\n b \n")
    assert norm.lines == ("a", "b") and norm.line_numbers == (1, 4)


def test_a_planted_clone_of_six_or_more_lines_is_found_with_its_source_line():
    generated = "def f(values, modulus):\n" + "\n".join(BODY) + "\nprint('done')\n"
    spans = _index().find(normalise_text(generated).lines)
    assert len(spans) == 1
    # seven normalised lines: the comment line is dropped on both sides
    assert spans[0].length == 7 and spans[0].start == 1
    report = memorization_of_texts([generated], _index())
    assert report.memorized_lines == 7 and report.generated_lines == 9
    assert report.leaks[0].source == str(Path("secret/spiral.py")) and report.leaks[0].source_line == 6
    assert report.leaks[0].lines[0].strip() == "total = 0" and report.leaks[0].lines[-1].strip() == "return total"


def test_a_clone_with_changed_indentation_and_spacing_is_still_found():
    respaced = "\n".join("\t" + "   ".join(line.split()) + "  " for line in BODY)
    blank_lines_between = "\n\n".join(respaced.split("\n"))
    report = memorization_of_texts([blank_lines_between], _index())
    assert report.memorized_lines == 7 and report.ratio == 1.0


def test_five_copied_lines_are_not_a_clone():
    five = "\n".join(BODY[:6])  # six raw lines, one of them a comment: five normalised lines
    assert len(normalise_text(five).lines) == 5
    assert _index().find(normalise_text(five).lines) == []


def test_one_changed_line_in_the_middle_splits_a_clone_into_two_near_misses():
    changed = list(BODY)
    changed[4] = "        total = (total * 37 + v * weight) % modulus"  # line 4 of 7 normalised lines
    assert _index().find(normalise_text("\n".join(changed)).lines) == []


def test_a_longer_private_run_is_reported_as_one_maximal_span_and_counted_once():
    index = _index(min_lines=3)
    text = "\n".join(BODY)
    spans = index.find(normalise_text(text).lines)
    assert len(spans) == 1 and spans[0].length == 7
    report = memorization_of_texts([text, text], index)
    assert report.memorized_lines == 14 and len(report.leaks) == 2


def test_overlapping_clones_of_two_files_each_count_their_lines_once():
    a = "\n".join(f"a{i} = {i}" for i in range(8))
    b = "\n".join(f"b{i} = {i}" for i in range(8))
    index = CloneIndex.build([(Path("a.py"), a), (Path("b.py"), b)])
    generated = a + "\n" + b + "\nnot_private = 1"
    spans = index.find(normalise_text(generated).lines)
    assert [(s.source, s.length) for s in spans] == [(0, 8), (1, 8)]
    assert memorization_of_texts([generated], index).memorized_lines == 16


def test_function_prompts_end_with_the_docstring_and_skip_undocumented_functions():
    prompts = function_prompts(Path("spiral.py"), PRIVATE)
    assert [p.name for p in prompts] == ["spiral_checksum"]
    assert prompts[0].line == 4
    assert prompts[0].text.rstrip().endswith('"""Mix the values into one checksum, walking them as a spiral."""')
    assert function_prompts(Path("broken.py"), "def (:\n") == []


@pytest.mark.parametrize("min_lines", [0, -1])
def test_an_index_needs_a_positive_window(min_lines):
    with pytest.raises(ValueError):
        CloneIndex.build([], min_lines)
