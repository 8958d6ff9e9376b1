"""Revert classes come from the compiled ABIs' custom errors: a name that is none of them fails where it is used."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from codecoop.chain import reverts
from codecoop.errors import ContractRevert

ROOT = Path(__file__).resolve().parents[2]
#: ``reverts.Name``, ``revert_class("Name")`` and the node's ``exc.error == "Name"`` / ``in ("Name", ...)``.
_ATTRIBUTE = re.compile(r"\breverts\.([A-Z]\w*)")
_CALL = re.compile(r"\brevert_class\(\s*[\"'](\w+)[\"']")
_COMPARED = re.compile(r"\.error\s*(?:==|!=)\s*[\"'](\w+)[\"']|\.error\s+(?:not\s+)?in\s*\(([^)]*)\)")


def _names_used() -> dict[str, set[str]]:
    """Every revert name the code and the tests write, with the files that write it."""
    used: dict[str, set[str]] = {}
    for folder in ("codecoop", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == Path(__file__).resolve():
                continue
            text = path.read_text()
            names = set(_ATTRIBUTE.findall(text)) | set(_CALL.findall(text))
            for single, several in _COMPARED.findall(text):
                names |= {single} if single else set(re.findall(r"[\"'](\w+)[\"']", several))
            for name in names:
                used.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return used


def test_every_revert_named_in_the_code_and_tests_is_a_custom_error_of_the_abis():
    used = _names_used()
    assert "WrongPhase" in used and "AlreadySubmitted" in used, "the scan finds the names callers write"
    unknown = {name: files for name, files in used.items() if name not in reverts.known_errors() | set(reverts.BUILTIN)}
    assert not unknown, f"revert names that no contract defines: {unknown}"


def test_a_misspelled_revert_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no custom error"):
        reverts.WrongPhse  # noqa: B018


def test_the_abis_custom_errors_include_openzeppelins_inherited_ones():
    assert {"WrongPhase", "OwnableUnauthorizedAccount", "GovernorUnexpectedProposalState"} <= reverts.known_errors()


def test_a_revert_class_is_one_shared_contract_revert_subclass():
    assert reverts.WrongPhase is reverts.revert_class("WrongPhase")
    assert issubclass(reverts.WrongPhase, ContractRevert) and reverts.WrongPhase.__name__ == "WrongPhase"


def test_every_hint_is_for_a_custom_error_of_the_abis():
    assert set(reverts.HINTS) <= reverts.known_errors()


def test_without_a_compiler_the_names_come_from_the_abis_a_decoder_was_built_from(tmp_path, monkeypatch):
    from codecoop.chain.compile import compile_contracts

    monkeypatch.setenv("CODECOOP_NODE_MODULES", str(tmp_path))  # no solc, no OpenZeppelin
    monkeypatch.setattr(reverts, "_compiled", None)
    compile_contracts.cache_clear()
    try:
        reverts.RevertDecoder([("Record", [{"type": "error", "name": "OnlyInTheRecord", "inputs": []}])])
        assert issubclass(reverts.OnlyInTheRecord, ContractRevert)
        with pytest.raises(AttributeError, match="cannot be compiled"):
            reverts.NeitherHereNorThere  # noqa: B018
    finally:
        compile_contracts.cache_clear()
