"""The federation a command talks to, declared once: which chain, which deployment, which content store
and which key, taken from command-line options (or from a node configuration) and handed to the command
as one :class:`Federation`.

A command asks for it with :func:`federation_command`; the decorator adds the connection options to
the command's signature, so each command's ``--help`` lists exactly the options it takes, and the
command body receives ``fed`` instead of seven loose values. It plays the part of ape's
``ConnectedProviderCommand``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, TypeVar

import typer

from codecoop.errors import ConfigError
from codecoop.settings import setting
from codecoop.settings.checks import EMBEDDED

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from codecoop.chain import Deployment
    from codecoop.node.config import NodeConfig
    from codecoop.storage import ContentStore

__all__ = ["DEFAULT_CHAIN", "DEFAULT_DEPLOYMENT", "TRY_OUT_CHAIN", "Federation", "federation_command"]

DEFAULT_CHAIN = "http://127.0.0.1:8545"
"""The ``--chain`` of every command that attaches to a federation: a local dev node (hardhat, anvil)."""
TRY_OUT_CHAIN = EMBEDDED
"""What ``codecoop chain deploy`` deploys on without ``--chain``: an in-process chain, to try the contracts out.
It is no default for the other commands: an embedded chain ends with the command that made it."""
DEFAULT_DEPLOYMENT = Path(setting("chain.deployment").default)
"""Where ``codecoop chain deploy`` writes its record, and where the other commands look for it."""

CHAIN = typer.Option(DEFAULT_CHAIN, "--chain", "--rpc", help="JSON-RPC URL of the federation's chain.")
DEPLOYMENT = typer.Option(DEFAULT_DEPLOYMENT, "--deployment", help="Deployment record written by `codecoop chain deploy`.")
KEYSTORE = typer.Option(None, "--keystore", help="Encrypted keystore of the account that signs.")
PASSWORD_ENV = typer.Option(None, "--password-env", help="Environment variable holding the keystore password.")
PASSWORD_FILE = typer.Option(None, "--password-file", help="File holding the keystore password.")
STORE = typer.Option(None, "--store", help="'embedded' (with --store-root) or an IPFS API address such as /ip4/127.0.0.1/tcp/5001/http.")
STORE_ROOT = typer.Option(None, "--store-root", help="Folder of the embedded content store.")
CONFIG = typer.Option(Path("node.toml"), "--config", "-c", help="The node's TOML configuration (see `codecoop init`).")
SET = typer.Option([], "--set", help="Override a configuration value: section.key=value (repeatable).")


@dataclass(frozen=True)
class Federation:
    """Where a command finds the federation; each part is opened when the command first uses it."""

    chain_url: str = DEFAULT_CHAIN
    deployment_file: Path = DEFAULT_DEPLOYMENT
    store_spec: Optional[str] = None
    store_root: Optional[Path] = None
    keystore: Optional[Path] = None
    password_env: Optional[str] = None
    password_file: Optional[Path] = None
    config: Optional[NodeConfig] = field(default=None, repr=False)
    """The node configuration the values came from, if any."""

    @classmethod
    def from_config(cls, cfg: NodeConfig) -> Federation:
        """The federation a node configuration names: its chain, deployment, store and keystore."""
        file = cfg["keystore.password_file"]
        return cls(
            chain_url=cfg["chain.url"], deployment_file=cfg.path("chain.deployment"), store_spec=cfg["store.api"],
            store_root=cfg.folder / "store", keystore=cfg.path("keystore.path"), password_env=cfg["keystore.password_env"],
            password_file=cfg.path("keystore.password_file") if file else None, config=cfg,
        )  # fmt: skip

    @cached_property
    def deployment(self) -> Deployment:
        """The deployment on the chain, attached on first use."""
        from codecoop.node.runtime import open_deployment

        setting = f"{self.config.source}: chain.url" if self.config is not None else "--chain"
        return open_deployment(self.chain_url, self.deployment_file, setting=setting)

    @cached_property
    def signer(self) -> LocalAccount:
        """The account unlocked from the keystore."""
        from codecoop.keys import load_keystore, read_password

        if self.keystore is None:
            raise ConfigError("this command signs a transaction: give --keystore and --password-env or --password-file")
        return load_keystore(self.keystore, read_password(env=self.password_env, file=self.password_file))

    @property
    def has_store(self) -> bool:
        """Whether a content store was named."""
        return self.store_spec is not None or self.store_root is not None

    @cached_property
    def store(self) -> ContentStore:
        """The content store named; an error that says what to give when none was."""
        from codecoop.storage import open_store

        if not self.has_store:
            raise ConfigError("this command reads models from the content store: give --store (and --store-root for 'embedded')")
        return open_store(self.store_spec or "embedded", root=self.store_root)

    @property
    def store_or_none(self) -> ContentStore | None:
        """The content store if one was named, else None (for commands where a store is optional)."""
        return self.store if self.has_store else None


_F = TypeVar("_F", bound=Callable[..., Any])


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def federation_command(*, signs: bool = False, store: bool = False, config: bool = False) -> Callable[[_F], _F]:
    """Give a typer command the federation it talks to, as its ``fed`` argument.

    The command declares ``fed: Federation`` in place of the connection options; the decorator adds
    ``--chain/--rpc`` and ``--deployment`` to its signature, ``--store`` and ``--store-root`` with
    ``store``, ``--keystore``, ``--password-env`` and ``--password-file`` with ``signs``. With
    ``config`` it adds ``--config/-c`` and ``--set`` instead, and the node configuration names all of it.
    """

    def decorate(fn: _F) -> _F:
        own = inspect.signature(fn, eval_str=True)
        if "fed" not in own.parameters:
            raise TypeError(f"{fn.__name__} must take a `fed: Federation` argument")
        added: list[inspect.Parameter]
        if config:
            added = [_option("_config", Path, CONFIG), _option("_overrides", list[str], SET)]
        else:
            added = [_option("_chain_url", str, CHAIN), _option("_deployment_file", Path, DEPLOYMENT)]
            if store:
                added += [_option("_store", Optional[str], STORE), _option("_store_root", Optional[Path], STORE_ROOT)]
            if signs:
                added += [
                    _option("_keystore", Optional[Path], KEYSTORE), _option("_password_env", Optional[str], PASSWORD_ENV),
                    _option("_password_file", Optional[Path], PASSWORD_FILE),
                ]  # fmt: skip
        names = {p.name for p in added}

        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in names if name in kwargs}
            if config:
                from codecoop.node.config import load_config

                fed = Federation.from_config(load_config(given["_config"], given["_overrides"]))
            else:
                fed = Federation(
                    chain_url=given["_chain_url"], deployment_file=given["_deployment_file"],
                    store_spec=given.get("_store"), store_root=given.get("_store_root"), keystore=given.get("_keystore"),
                    password_env=given.get("_password_env"), password_file=given.get("_password_file"),
                )  # fmt: skip
            return fn(*args, fed=fed, **kwargs)

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own.parameters.values() if p.name != "fed"]
        signature = own.replace(parameters=params + added)
        command.__signature__ = signature  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
        return command  # type: ignore[return-value]

    return decorate
