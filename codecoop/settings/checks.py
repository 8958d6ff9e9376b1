"""Validators: each takes a value and returns what is wrong with it (``None``: nothing).

A validator returns a phrase that reads after the setting's name ("training.steps must be an
integer of at least 1"), so the config loader, ``codecoop.chain.connect`` and
``codecoop.storage.open_store`` can each wrap it in their own error without restating the rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], "str | None"]

#: The value of ``chain.url`` and ``store.api`` that selects the in-process backend.
EMBEDDED = "embedded"

__all__ = [
    "EMBEDDED",
    "Check",
    "boolean",
    "chain_url",
    "cosine",
    "device",
    "integer",
    "module_names",
    "multiaddr",
    "multiaddrs",
    "number",
    "optional_path",
    "store_api",
    "string",
    "strings",
    "strings_or_empty",
]


def string(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else "must be a non-empty string"


def optional_path(v: Any) -> str | None:
    return None if v is None else string(v)


def chain_url(v: Any) -> str | None:
    """What :func:`codecoop.chain.connect` accepts: the embedded chain or a JSON-RPC URL over HTTP."""
    if not isinstance(v, str) or not (v == EMBEDDED or v.startswith(("http://", "https://"))):
        return "must be 'embedded' or an http(s) JSON-RPC URL such as http://127.0.0.1:8545 (websocket URLs are not supported)"
    return None


def store_api(v: Any) -> str | None:
    """What :func:`codecoop.storage.open_store` accepts: the embedded store or an IPFS HTTP API address."""
    if not isinstance(v, str) or not (v == EMBEDDED or v.startswith(("/ip4/", "/ip6/", "/dns", "http://", "https://"))):
        return "must be 'embedded' or an IPFS API address such as /ip4/127.0.0.1/tcp/5001/http"
    return None


def multiaddr(v: Any) -> str | None:
    return (
        None if isinstance(v, str) and v.startswith(("/ip4/", "/ip6/", "/dns")) else "must be a multiaddr such as /ip4/127.0.0.1/tcp/4001"
    )


def multiaddrs(v: Any) -> str | None:
    if not isinstance(v, list) or any(multiaddr(x) for x in v):
        return "must be a list of multiaddrs such as ['/ip4/10.0.0.2/tcp/4001/p2p/12D3Koo...']"
    return None


def strings(v: Any) -> str | None:
    return None if isinstance(v, list) and all(isinstance(x, str) and x for x in v) else "must be a list of strings"


def strings_or_empty(v: Any) -> str | None:
    return None if v == [] or strings(v) is None else "must be a list of strings"


def module_names(v: Any) -> str | None:
    return None if v == [] or strings(v) is None else "must be a list of module names (empty: the model's default)"


def integer(lo: int | None = None) -> Check:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo):
            return "must be an integer" + (f" of at least {lo}" if lo is not None else "")
        return None

    return check


def number(positive: bool = True, allow_zero: bool = False) -> Check:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return "must be a number"
        if not math.isfinite(v):  # TOML reads nan and inf as floats; no setting takes them
            return "must be a number, not nan or inf"
        if positive and (v < 0 or (v == 0 and not allow_zero)):
            return "must be positive" if not allow_zero else "must not be negative"
        return None

    return check


def cosine(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not -1 <= v <= 1:
        return "must be a number between -1 and 1 (a cosine similarity)"
    return None


def open_fraction(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
        return "must be a number between 0 and 1, both excluded (a share)"
    return None


def boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def one_of(*choices: str) -> Check:
    """A string that is one of ``choices``."""

    def check(v: Any) -> str | None:
        return None if v in choices else "must be one of " + ", ".join(choices)

    return check


def device(v: Any) -> str | None:
    return (
        None if isinstance(v, str) and (v in ("auto", "cpu", "mps") or v.startswith("cuda")) else "must be auto, cpu, cuda, cuda:N or mps"
    )
