"""Content-addressed storage: adapters and models travel as objects named by their CID.

One protocol, :class:`ContentStore`, and one module per backend: :class:`LocalStore` (objects on
local disk, the embedded default) and :class:`IpfsStore` (an IPFS daemon's HTTP API). Both name
objects by the CID that ``ipfs add --cid-version=1 --raw-leaves`` gives them, and both verify every
read. :func:`open_store` picks the backend from a configuration value.

Importing this package is cheap: the HTTP client loads only when an ``IpfsStore`` is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from codecoop.errors import ConfigError
from codecoop.settings.checks import store_api
from codecoop.storage.base import ContentStore, VerifyingReader
from codecoop.storage.cid import CHUNK_SIZE, MAX_LINKS, CidBuilder, cid_of, cid_of_chunks, parse_cid
from codecoop.storage.local import LocalStore

if TYPE_CHECKING:
    from codecoop.storage.ipfs import IpfsStore

__all__ = [
    "CHUNK_SIZE",
    "MAX_LINKS",
    "CidBuilder",
    "ContentStore",
    "IpfsStore",
    "LocalStore",
    "VerifyingReader",
    "cid_of",
    "cid_of_chunks",
    "open_store",
    "parse_cid",
]


def open_store(spec: str, *, root: Path | str | None = None, timeout: float = 30.0) -> ContentStore:
    """Return the store a configuration value names.

    Parameters
    ----------
    spec
        ``"embedded"`` for a :class:`LocalStore` under ``root``, or an IPFS HTTP API multiaddr such
        as ``/ip4/127.0.0.1/tcp/5001/http`` (or ``http://host:port``) for an :class:`IpfsStore`.
    root
        Folder of the embedded store; required for ``"embedded"``.
    timeout
        Seconds an :class:`IpfsStore` waits for the daemon per request.
    """
    if (problem := store_api(spec)) is not None:
        raise ConfigError(f"store = {spec!r} {problem}")
    if spec == "embedded":
        if root is None:
            raise ConfigError("store = 'embedded' needs a root folder for its objects (data path)")
        return LocalStore(root)
    from codecoop.storage.ipfs import IpfsStore

    return IpfsStore(api=spec, timeout=timeout)


def __getattr__(name: str) -> Any:
    # IpfsStore pulls in requests and ipfshttpclient: load them only when someone asks for it.
    if name == "IpfsStore":
        from codecoop.storage.ipfs import IpfsStore

        return IpfsStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
