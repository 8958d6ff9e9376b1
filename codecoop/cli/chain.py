"""``codecoop chain``: deploy the contract suite and inspect a deployment."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from codecoop.chain.units import format_tokens
from codecoop.cli import console
from codecoop.cli._context import DEFAULT_DEPLOYMENT, KEYSTORE, PASSWORD_ENV, PASSWORD_FILE, TRY_OUT_CHAIN, Federation, federation_command
from codecoop.cli._output import print_table
from codecoop.errors import ConfigError

app = typer.Typer(help="Deploy the contracts and inspect a deployment.", no_args_is_help=True)

CHAIN_HELP = (
    "JSON-RPC URL of the chain to deploy on, such as http://127.0.0.1:8545; the default, 'embedded', "
    "is an in-process eth-tester chain that ends with the command, to try the contracts out."
)


def _params(path: Optional[Path], overrides: dict):
    from codecoop.chain.params import FederationParams

    data: dict = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"parameter file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"parameter file {path} is not valid TOML: {exc}") from None
        data = data.get("federation", data)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return FederationParams.from_dict(data)


@app.command()
def deploy(
    chain_url: str = typer.Option(TRY_OUT_CHAIN, "--chain", "--rpc", help=CHAIN_HELP),
    out: Path = typer.Option(DEFAULT_DEPLOYMENT, "--out", help="Where to write the deployment record (JSON)."),
    params_file: Optional[Path] = typer.Option(None, "--params", help="TOML file of federation parameters (a \\[federation] table)."),
    model_id: Optional[str] = typer.Option(None, "--model-id", help="Base model id written into the charter."),
    weights_hash: Optional[str] = typer.Option(None, "--weights-hash", help="sha256 of the base model's weights (hex)."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="Aggregation strategy every node runs, e.g. fedavg."),
    keystore: Optional[Path] = KEYSTORE,
    password_env: Optional[str] = PASSWORD_ENV,
    password_file: Optional[Path] = PASSWORD_FILE,
) -> None:
    """Deploy and wire the whole suite, hand it to the timelock, and print the addresses.

    Examples:

      codecoop chain deploy                      # embedded chain (lives only as long as the command)

      codecoop chain deploy --chain http://127.0.0.1:8545 --out fed.json --model-id smollm2-135m
    """
    from codecoop.chain import connect
    from codecoop.chain import deploy as deploy_suite

    params = _params(params_file, {"base_model_id": model_id, "base_weights_hash": weights_hash, "aggregation_strategy": strategy})
    chain = connect(chain_url)
    started = time.perf_counter()
    with console.status(f"compiling and deploying on {chain_url} ..."):
        # without a keystore, dev chains deploy from a fresh funded account
        deployer = Federation(keystore=keystore, password_env=password_env, password_file=password_file).signer if keystore else None
        deployment = deploy_suite(chain, params, deployer)
    path = deployment.save(out)
    table = Table(title=f"codecoop deployed on chain {deployment.record.chain_id} ({chain_url})")
    table.add_column("contract")
    table.add_column("address")
    table.add_column("deploy gas", justify="right")
    for name, address in deployment.addresses.items():
        table.add_row(name, address, f"{deployment.record.gas_used.get(name, 0):,}")
    print_table(table, figures=("address", "deploy gas"))
    total = sum(deployment.record.gas_used.values())
    console.print(
        f"total gas {total:,} (wiring included) in {time.perf_counter() - started:.1f} s; "
        f"owner of every parameter: CoopTimelock; record written to {path}"
    )
    if chain.embedded:
        console.print("[dim]the embedded chain ends with this command; `codecoop sim` runs whole federations on it[/]")


@app.command()
@federation_command()
def info(fed: Federation) -> None:
    """Show a deployment's parameters and state: rounds, members, supply, epochs, charter, releases.

    Example:

      codecoop chain info --chain http://127.0.0.1:8545 --deployment fed.json
    """
    d = fed.deployment
    r = d.rounds.current_round()
    charter = d.models.charter()
    rows = [
        ("chain id", str(d.record.chain_id)),
        ("current round", f"{r} ({d.rounds.phase(r).name.lower()})" if r else "none yet"),
        ("current base", d.rounds.current_base() or "bare base model"),
        ("active members", str(d.members.active_count())),
        ("total supply", format_tokens(d.token.total_supply(), d.params.token_symbol)),
        ("epoch", f"{d.token.current_epoch()} (from block {d.token.current_epoch_start()})"),
        ("aggregation", d.rounds.aggregation_strategy()),
        ("charter", f"{charter.cid} ({charter.base_model_id}, weights {charter.base_weights_hash[:18]}...)"),
        ("released versions", str(d.models.version_count())),
    ]
    table = Table(title=f"deployment {fed.deployment_file}", show_header=False)
    for k, v in rows:
        table.add_row(k, v)
    print_table(table)
