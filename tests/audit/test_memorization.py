"""The memorization audit's parts that need no fine-tuning: prompt selection, the report, the vote
decision, and the base model's ratio (about 0) through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codecoop.audit.memorization import (
    Leak,
    MemorizationConfig,
    MemorizationReport,
    load_documents,
    memorization_of_texts,
    select_prompts,
)
from codecoop.audit.release_gate import MemorizationGateFailed, decide_vote
from codecoop.cli import main
from codecoop.errors import ConfigError

from .planted import PLANTED, write_planted


def _functions(n: int) -> str:
    return "\n\n".join(f'def f{i}(x):\n    """Doc {i}."""\n    return x + {i}\n' for i in range(n))


def test_prompts_are_a_seeded_sample_of_the_documented_functions_capped_after_sampling():
    files = [(Path("a.py"), _functions(20)), (Path("b.py"), "def g():\n    return 1\n")]
    every = select_prompts(files, MemorizationConfig())
    assert [p.name for p in every] == [f"f{i}" for i in range(20)]
    half = select_prompts(files, MemorizationConfig(prompt_fraction=0.5, seed=1))
    assert len(half) == 10 and half == select_prompts(files, MemorizationConfig(prompt_fraction=0.5, seed=1))
    assert half != select_prompts(files, MemorizationConfig(prompt_fraction=0.5, seed=2))
    capped = select_prompts(files, MemorizationConfig(prompt_fraction=0.5, max_prompts=3, seed=1))
    assert len(capped) == 3 and set(p.name for p in capped) <= set(p.name for p in half)


def test_data_without_documented_functions_is_refused_with_what_to_do():
    with pytest.raises(ConfigError, match="no function with a docstring"):
        select_prompts([(Path("a.py"), "x = 1\n")], MemorizationConfig())
    with pytest.raises(ConfigError, match="does not exist"):
        load_documents([Path("/nonexistent/code")])


@pytest.mark.parametrize(
    "kwargs", [{"prompt_fraction": 0.0}, {"threshold": 1.5}, {"temperature": 0.0, "samples_per_prompt": 2}, {"min_lines": 0}]
)
def test_invalid_configurations_are_refused(kwargs):
    with pytest.raises(ConfigError):
        MemorizationConfig(**kwargs)


def test_the_report_leaves_the_leaked_code_out_unless_asked():
    report = memorization_of_texts([PLANTED], _index_of_planted(), threshold=0.05)
    assert report.ratio == 1.0 and not report.passed and report.leaks
    public = report.to_dict()
    assert "leaks" not in public and public["leak_count"] == len(report.leaks) and public["passed"] is False
    private = report.to_dict(include_leaks=True)
    assert private["leaks"][0]["source"] == "secret.py" and isinstance(private["leaks"][0]["lines"], list)
    json.dumps(private)


def _index_of_planted():
    from codecoop.audit.clones import CloneIndex

    return CloneIndex.build([(Path("secret.py"), PLANTED)])


def _report(passed: bool) -> MemorizationReport:
    ratio = 0.0 if passed else 0.5
    return MemorizationReport(ratio, 100, int(ratio * 100), 4, 4, () if passed else (Leak("a.py", 1, ("x",)),), 0.05, passed)


def test_auto_votes_for_a_passing_and_against_a_failing_release():
    assert decide_vote("auto", _report(True))[0] == "for"
    support, reason = decide_vote("auto", _report(False))
    assert support == "against" and "50.00%" in reason and "failed" in reason


def test_a_vote_for_a_failing_release_is_refused_but_against_and_abstain_go_through():
    with pytest.raises(MemorizationGateFailed, match="vote against or abstain"):
        decide_vote("for", _report(False), proposal="7")
    assert decide_vote("abstain", _report(False))[0] == "abstain"
    assert decide_vote("for", _report(True))[0] == "for"


def test_a_proposal_that_releases_no_model_is_voted_as_asked_and_auto_needs_a_release():
    assert decide_vote("for", None) == ("for", "")
    with pytest.raises(ConfigError, match="releases no model"):
        decide_vote("auto", None)


def test_the_base_model_passes_the_audit_on_the_command_line(tmp_path, capsys):
    """tiny was never trained on the planted functions: it copies none of them."""
    data = write_planted(tmp_path / "mine")
    out = tmp_path / "report.json"
    code = main([
        "audit", "memorization", "--model", "base", "--base", "tiny", "--data", str(data), "--max-new-tokens", "48",
        "--temperature", "0", "--json", str(out),
    ])  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert report["ratio"] == 0.0 and report["passed"] and report["prompts"] == 3 and report["generated_lines"] > 0
    assert "pass" in capsys.readouterr().out


def test_a_model_that_is_neither_a_file_nor_a_release_is_refused(tmp_path, capsys):
    data = write_planted(tmp_path / "mine")
    assert main(["audit", "memorization", "--model", "v3", "--data", str(data)]) == 1
    assert "released version tag" in " ".join(capsys.readouterr().err.split())
