"""One exception hierarchy for the whole project.

Every error a user can cause or meet carries a message that says what happened and what to do.
The CLI prints ``CodecoopError`` messages without a traceback and exits non-zero.
"""

from __future__ import annotations


class CodecoopError(Exception):
    """Base class of every error codecoop raises on purpose."""


class ConfigError(CodecoopError):
    """A configuration value is missing or invalid; the message names the key."""


class ToolchainError(CodecoopError):
    """An external tool (node, npm packages, solc) is missing or broken; the message names the fix."""


# --- chain -----------------------------------------------------------------------------------------
class ChainError(CodecoopError):
    """The chain could not be reached or answered something unexpected."""


class ContractMissing(ChainError):
    """No contract answers at a deployment's address: the chain was reset or is another chain (not retried)."""


class ContractRevert(ChainError):
    """A transaction or call reverted. ``error`` is the custom error's name (or ``Error``/``Panic``)."""

    def __init__(self, message: str, *, error: str, args: tuple = (), contract: str | None = None):
        super().__init__(message)
        self.error = error
        self.error_args = tuple(args)
        self.contract = contract


# --- content store ---------------------------------------------------------------------------------
class StorageError(CodecoopError):
    """The content store failed."""


class IntegrityError(StorageError):
    """Bytes read do not match the CID they were asked for; nothing unverified is handed on."""


class ObjectNotFound(StorageError):
    """No object with this CID is in the store."""


class InvalidCID(StorageError):
    """A string is not a valid CID."""


class StoreUnavailable(StorageError):
    """The store's daemon is down or does not answer in time."""


# --- peer to peer ----------------------------------------------------------------------------------
class P2PError(CodecoopError):
    """A libp2p operation failed or timed out."""


class PeerBusy(P2PError):
    """A peer refused a direct fetch because it serves as many as it will at once; ask again shortly."""


# --- tensors, training, aggregation ----------------------------------------------------------------
class TensorFormatError(CodecoopError):
    """Bytes are not a well-formed, acceptable safetensors file (never unpickled)."""


class TrainingError(CodecoopError):
    """Local training or evaluation failed."""


class ModelNotFound(TrainingError):
    """A base model id could not be resolved; the message says what to install."""


class AdapterMismatch(TrainingError):
    """An adapter does not fit the base model (names, shapes, dtypes, base model hash)."""


class AggregationError(CodecoopError):
    """Aggregation could not run."""


class InvalidUpdate(AggregationError):
    """An update was refused before any arithmetic; the message names the update."""

    def __init__(self, message: str, *, update: str | None = None):
        super().__init__(message)
        self.update = update


# --- content store (continued) ---------------------------------------------------------------------
class ObjectTooLarge(StorageError):
    """An object passes the size a reader accepts; reading stopped before it was buffered."""


# --- participant node ------------------------------------------------------------------------------
class NodeError(CodecoopError):
    """The participant node cannot go on; the message says why and what to do."""


class MembershipEnded(NodeError):
    """This node's account left the federation or was removed from it: it has no duties any more."""


class CharterMismatch(NodeError):
    """The node's base model is not the one the federation's charter names."""
