"""Token units: the contracts count in wei-like base units (18 decimals); people read whole tokens.

Every conversion between the two goes through here, so no other module writes ``10**18``.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["TOKEN_DECIMALS", "TOKEN_UNIT", "to_tokens", "to_wei", "format_tokens"]

#: Decimals of the ContributionToken (OpenZeppelin's ERC20 default).
TOKEN_DECIMALS = 18
#: Base units in one token.
TOKEN_UNIT = 10**TOKEN_DECIMALS


def to_tokens(amount: int) -> float:
    """Base units as whole tokens, for display and plots (exact amounts stay ints in base units)."""
    return amount / TOKEN_UNIT


def to_wei(tokens: float | str | Decimal) -> int:
    """Whole tokens (``12.5``, ``"12.5"``) as base units, rounded down to a whole base unit."""
    return int(Decimal(str(tokens)) * TOKEN_UNIT)


def format_tokens(amount: int, symbol: str = "") -> str:
    """Base units as ``1,234.50`` tokens, followed by ``symbol`` when given."""
    text = f"{to_tokens(amount):,.2f}"
    return f"{text} {symbol}" if symbol else text
