"""``codecoop init``: write a commented node configuration and create an encrypted keystore."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from codecoop.cli import console
from codecoop.cli._context import CHAIN, DEPLOYMENT, PASSWORD_ENV, PASSWORD_FILE
from codecoop.errors import ConfigError
from codecoop.settings import option, setting


def init(
    folder: Path = typer.Argument(Path("."), help="Folder for the configuration, keystore and node data."),
    config_name: str = typer.Option("node.toml", "--config-name", help="File name of the configuration."),
    chain: str = CHAIN,
    deployment: Path = DEPLOYMENT,
    store: str = option("store.api"),
    listen: str = option("p2p.listen"),
    model: str = option("model.id", "--model"),
    code: list[str] = option("data.code"),
    password_env: Optional[str] = PASSWORD_ENV,
    password_file: Optional[Path] = PASSWORD_FILE,
    force: bool = typer.Option(False, "--force", help="Overwrite an existing configuration (never a keystore)."),
) -> None:
    """Write a commented node configuration and create an encrypted keystore for the node's key.

    The password comes from an environment variable or a file, never from the command line.

    Examples:

      CODECOOP_PASSWORD=... codecoop init mynode --password-env CODECOOP_PASSWORD --code ~/src/our-repo

      codecoop init . --password-file pw.txt --chain http://10.0.0.5:8545 --store /ip4/127.0.0.1/tcp/5001/http
    """
    from codecoop.keys import create_keystore, read_password
    from codecoop.node.config import load_config, render_template
    from codecoop.settings.render import toml_value

    if not password_env and not password_file:
        raise ConfigError("give --password-env VAR or --password-file FILE: the keystore is encrypted with that password")
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / config_name
    if config_path.exists() and not force:
        raise ConfigError(f"{config_path} exists already; pass --force to overwrite it")
    password = read_password(env=password_env, file=password_file)
    keystore = folder / setting("keystore.path").default
    if keystore.exists():
        from codecoop.keys import load_keystore

        account = load_keystore(keystore, password)
        note = "kept the existing keystore"
    else:
        account = create_keystore(keystore, password)
        note = "created an encrypted keystore"
    if password_env:
        password_line = f'password_env = "{password_env}"'
    else:
        assert password_file is not None
        password_line = f'password_file = "{Path(password_file).expanduser().resolve()}"'
    text = render_template(
        config_name=config_name,
        chain=chain,
        deployment=str(deployment),
        store=store,
        listen=listen,
        password_line=password_line,
        code=", ".join(toml_value(c) for c in code),
        model=model,
    )
    config_path.write_text(text)
    load_config(config_path)  # the template must always pass its own validation
    console.print(f"wrote {config_path}; {note} at {keystore} for account [bold]{account.address}[/]")
    console.print(f"next: fund the account on the chain, then `codecoop node run --config {config_path}`")
