"""``codecoop ui``: serve the federation's web dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from codecoop.cli import console
from codecoop.cli._context import (
    CHAIN,
    DEFAULT_CHAIN,
    DEFAULT_DEPLOYMENT,
    DEPLOYMENT,
    KEYSTORE,
    PASSWORD_ENV,
    PASSWORD_FILE,
    STORE,
    STORE_ROOT,
)
from codecoop.errors import ConfigError


def ui(
    chain_url: str = CHAIN,
    deployment_file: Path = DEPLOYMENT,
    store: Optional[str] = STORE,
    store_root: Optional[Path] = STORE_ROOT,
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="A node's configuration: its chain, deployment, store and keystore, and its journal on 'My node'."
    ),
    keystore: Optional[Path] = KEYSTORE,
    password_env: Optional[str] = PASSWORD_ENV,
    password_file: Optional[Path] = PASSWORD_FILE,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (127.0.0.1: this machine only)."),
    port: int = typer.Option(8080, "--port", help="Port to listen on."),
    demo: bool = typer.Option(
        False, "--demo", help="Deploy on the embedded chain, run a short federation of tiny in the background, serve it."
    ),
    poll: float = typer.Option(1.0, "--poll", help="Seconds between looks at the chain."),
) -> None:
    """Serve the federation's dashboard: rounds, members, proposals (propose, vote, queue, execute), models, audit, live.

    Actions sign with the keystore (--keystore, or the node configuration's): with a password
    source given, it is unlocked at start; otherwise the page asks for the password once per server
    session, and never sends it back to the browser. Without a keystore, a visitor can connect a
    browser wallet (EIP-1193, window.ethereum) and sign there; without either the dashboard is
    read-only, and its pages say so.

    Examples:

      codecoop ui --demo

      codecoop ui --chain http://10.0.0.5:8545 --deployment fed.json --store /ip4/127.0.0.1/tcp/5001/http

      codecoop ui --config mynode/node.toml
    """
    import uvicorn

    from codecoop.ui.app import create_app

    demo_fed = None
    if demo:
        from codecoop.ui.demo import DemoFederation

        console.print("[dim]setting up the demo federation (tiny is built and cached on first use, 1-2 min)[/]")
        demo_fed = DemoFederation(log=lambda m: console.print(f"[dim]{m}[/]"))
        db = demo_fed.start()
    else:
        db = _dashboard(chain_url, deployment_file, store, store_root, config, keystore, password_env, password_file, poll)
    db.start()
    hosts = ["127.0.0.1", "localhost"] + ([host] if host not in ("127.0.0.1", "localhost", "0.0.0.0", "::") else [])
    if host in ("0.0.0.0", "::"):
        console.print("[yellow]listening on every interface: anyone who can reach this port sees the dashboard[/]")
        hosts = ["*"]
    app = create_app(db, allowed_hosts=hosts)
    where = (
        "read-only" if db.signer is None and not db.can_unlock else ("signing as " + db.signer.address if db.signer else "keystore locked")
    )
    console.print(f"dashboard on http://{host}:{port}/ ({where}); Ctrl-C to stop")
    try:
        uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)).run()
    finally:
        db.stop()
        if demo_fed is not None:
            demo_fed.stop()


def _dashboard(chain_url, deployment_file, store, store_root, config, keystore, password_env, password_file, poll):  # type: ignore[no-untyped-def]
    from codecoop.cli._context import Federation
    from codecoop.ui.dashboard import Dashboard

    if config is not None:
        from codecoop.node.config import load_config

        if chain_url != DEFAULT_CHAIN or deployment_file != DEFAULT_DEPLOYMENT:
            raise ConfigError("give either --config or --chain/--deployment: the configuration names the chain and deployment")
        fed = Federation.from_config(load_config(config))
    else:
        fed = Federation(
            chain_url=chain_url, deployment_file=deployment_file, store_spec=store, store_root=store_root, keystore=keystore,
            password_env=password_env, password_file=password_file,
        )  # fmt: skip
    signer = None
    if fed.keystore is not None and (fed.password_env or fed.password_file):
        signer = fed.signer
    return Dashboard(
        fed.deployment,
        store=fed.store_or_none,
        config=fed.config,
        signer=signer,
        keystore=fed.keystore if signer is None else None,
        poll=poll,
    )
