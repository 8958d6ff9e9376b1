"""What the dao, token, audit and model command groups share: attaching to a deployment, unlocking
a keystore and opening a content store, each from command-line options."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from codecoop.errors import ConfigError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from codecoop.chain import Deployment
    from codecoop.storage import ContentStore

CHAIN = typer.Option("http://127.0.0.1:8545", "--chain", "--rpc", help="JSON-RPC URL of the federation's chain.")
DEPLOYMENT = typer.Option(Path("deployment.json"), "--deployment", help="Deployment record written by `codecoop chain deploy`.")
KEYSTORE = typer.Option(None, "--keystore", help="Encrypted keystore of the account that signs.")
PASSWORD_ENV = typer.Option(None, "--password-env", help="Environment variable holding the keystore password.")
PASSWORD_FILE = typer.Option(None, "--password-file", help="File holding the keystore password.")
STORE = typer.Option(None, "--store", help="'embedded' (with --store-root) or an IPFS API address such as /ip4/127.0.0.1/tcp/5001/http.")
STORE_ROOT = typer.Option(None, "--store-root", help="Folder of the embedded content store.")


def open_deployment(chain_url: str, deployment_file: Path) -> Deployment:
    """Attach to the deployment recorded in ``deployment_file`` on the chain at ``chain_url``."""
    from codecoop.chain import Deployment, connect

    if chain_url == "embedded":
        raise ConfigError("an embedded chain lives only inside one process; give the JSON-RPC URL of a running chain")
    return Deployment.load(deployment_file, connect(chain_url))


def signer(keystore: Optional[Path], password_env: Optional[str], password_file: Optional[Path]) -> LocalAccount:
    """The account unlocked from ``keystore``."""
    from codecoop.keys import load_keystore, read_password

    if keystore is None:
        raise ConfigError("this command signs a transaction: give --keystore and --password-env or --password-file")
    return load_keystore(keystore, read_password(env=password_env, file=password_file))


def open_content_store(spec: Optional[str], root: Optional[Path], *, required: bool = False) -> ContentStore | None:
    """The content store named on the command line, or None when none was given and none is required."""
    from codecoop.storage import open_store

    if spec is None and root is not None:
        spec = "embedded"
    if spec is None:
        if required:
            raise ConfigError("this command reads models from the content store: give --store (and --store-root for 'embedded')")
        return None
    return open_store(spec, root=root)
