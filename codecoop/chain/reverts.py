"""Reverts as typed exceptions.

Every custom error of the suite's compiled ABIs (our contracts and the OpenZeppelin ones they
inherit) is a subclass of :class:`codecoop.errors.ContractRevert` with the error's name, so callers
write ``except reverts.AlreadySubmitted`` or ``pytest.raises(reverts.WrongPhase)``. A name that is no
custom error of those ABIs raises ``AttributeError``: a misspelled revert fails where it is used, it
does not silently never match. The message names the contract, the error and its arguments, and
adds what to do where that is known.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector

from codecoop.errors import ContractRevert, ToolchainError

__all__ = ["RevertDecoder", "revert_class", "known_errors", "HINTS"]

_classes: dict[str, type[ContractRevert]] = {}

#: What a user should do about the reverts they can cause.
HINTS: dict[str, str] = {
    "NotActiveMember": "join the federation first (codecoop node run joins), or ask governance to approve or reinstate you",
    "AlreadyMember": "this account already joined; use updateEndpoint to change its peer id or addresses",
    "WrongPhase": "the round is not in the phase this action needs; check `codecoop round status` and wait for the right window",
    "PreviousRoundNotDone": "the previous round is still running; finalize it or wait for its confirm window to end",
    "AlreadySubmitted": "a member submits one update per round",
    "NoCommitment": "commit first: an update is committed in the submit window, votes in the commit window",
    "NotDisclosed": "that update was committed but never disclosed: it has no CID to vote on; leave it out of the ballot",
    "AlreadyCommitted": "a member commits one vote hash per round",
    "AlreadyRevealed": "a member reveals once per round",
    "RevealMismatch": "what was revealed or disclosed differs from what was committed; reveal exactly the committed ballot or update and salt",
    "SelfVote": "a member never votes on its own update; leave it out of the ballot",
    "DuplicateVote": "each update appears at most once in a ballot",
    "AggregateMismatch": "another CID was already confirmed by the quorum; recompute the aggregate from the accepted updates",
    "NothingToClaim": "this member earned nothing in that round (no accepted update and no vote matching the outcome)",
    "OwnableUnauthorizedAccount": "only the timelock may do this: make a governance proposal (codecoop dao propose)",
    "UnauthorizedMinter": "only the RoundManager and the MemberRegistry may mint",
    "TransfersDisabled": "contribution tokens are not transferable unless governance enables transfers; delegation is always allowed",
    "InvalidCid": "the contracts take binary CIDv1 with sha2-256 (codec raw or dag-pb)",
}

_STANDARD = {
    "0x08c379a0": ("Error", ["string"], ["message"]),
    "0x4e487b71": ("Panic", ["uint256"], ["code"]),
}


#: Reverts that are no custom error: Solidity's require/assert and data no ABI knows.
BUILTIN = ("Error", "Panic", "UnknownRevert")
#: Custom errors of every ABI a :class:`RevertDecoder` was built from (deployment records, test contracts).
_registered: set[str] = set()
_compiled: frozenset[str] | None = None


def revert_class(name: str) -> type[ContractRevert]:
    """The exception class for the revert ``name`` (created once, shared by every caller).

    This makes a class for any name; code that names a revert uses ``reverts.<Name>``, which
    checks the name against the ABIs.
    """
    cls = _classes.get(name)
    if cls is None:
        cls = type(name, (ContractRevert,), {"__module__": __name__, "__doc__": f"The contract reverted with {name}."})
        _classes[name] = cls
    return cls


def known_errors() -> frozenset[str]:
    """Every custom error name of the compiled suite (compiling it on first use, then cached)."""
    global _compiled
    if _compiled is None:
        from codecoop.chain.compile import compile_contracts

        _compiled = frozenset(_error_names(a.abi for a in compile_contracts().values()))
    return _compiled


def __getattr__(name: str) -> type[ContractRevert]:
    if name in _classes or name in BUILTIN or name in _registered:
        return revert_class(name)
    if name[:1].isupper():
        try:
            known = known_errors()
        except ToolchainError as exc:
            # a node attached to a deployment record may have no compiler: its record's ABIs registered the names
            raise AttributeError(
                f"{name} is no custom error of the loaded deployment's ABIs, and the contracts cannot be compiled to look further ({exc})"
            ) from None
        if name in known:
            return revert_class(name)
        raise AttributeError(f"{name} is no custom error of the contract suite's ABIs (misspelled? see contracts/)")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _error_names(abis: Iterable[list]) -> set[str]:
    return {item["name"] for abi in abis for item in abi if item.get("type") == "error"}


def _abi_type(inp: dict) -> str:
    if inp["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in inp["components"]) + ")" + inp["type"][5:]
    return inp["type"]


class RevertDecoder:
    """Maps 4-byte selectors of the suite's custom errors to names and argument types."""

    def __init__(self, abis: Iterable[tuple[str, list]]):
        self._errors: dict[str, tuple[str, str, list[str], list[str]]] = {}
        abis = list(abis)
        _registered.update(_error_names(abi for _, abi in abis))
        for contract, abi in abis:
            for item in abi:
                if item.get("type") != "error":
                    continue
                types = [_abi_type(i) for i in item["inputs"]]
                selector = "0x" + function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})").hex()
                self._errors.setdefault(selector, (contract, item["name"], types, [i["name"] for i in item["inputs"]]))

    def decode(self, data: str | bytes | dict | None, *, fallback: str = "") -> ContractRevert:
        """Turn revert data into the typed exception (an ``Unknown`` one when nothing matches)."""
        data = _normalise(data)
        selector = data[:10]
        contract = None
        if selector in _STANDARD:
            name, types, names = _STANDARD[selector]
        elif selector in self._errors:
            contract, name, types, names = self._errors[selector]
        else:
            return revert_class("UnknownRevert")(
                f"the transaction reverted without a known error ({fallback or data or 'no data'})", error="UnknownRevert"
            )
        try:
            args = abi_decode(types, bytes.fromhex(data[10:]))
        except Exception:
            args = ()
        shown = ", ".join(f"{n}={_show(v)}" for n, v in zip(names, args))
        where = f"{contract}." if contract else ""
        message = f"{where}{name}({shown})"
        if name in HINTS:
            message += f": {HINTS[name]}"
        return revert_class(name)(message, error=name, args=args, contract=contract)


_HEX = re.compile(r"0x[0-9a-fA-F]{8,}")


def _normalise(data: object) -> str:
    """Revert data as lower-case hex, whatever shape the backend gave it in.

    eth-tester gives bytes, geth a hex string, hardhat a dict whose ``data`` holds the hex or whose
    ``message`` quotes it ("reverted with an unrecognized custom error (return data: 0x...)").
    """
    if isinstance(data, dict):
        inner = data.get("data")
        if isinstance(inner, dict):
            inner = inner.get("data")
        if not inner and isinstance(data.get("message"), str):
            found = _HEX.search(data["message"])
            inner = found.group(0) if found else None
        data = inner
    if isinstance(data, (bytes, bytearray)):
        return "0x" + bytes(data).hex()
    return data.lower() if isinstance(data, str) else ""


def _show(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return repr(value) if isinstance(value, str) else str(value)
