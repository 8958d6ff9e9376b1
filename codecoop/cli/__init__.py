"""The ``codecoop`` command. One module per command group; each registers a typer sub-app here.

Errors that codecoop raises on purpose (``CodecoopError``) are printed without a traceback and the
command exits with status 1; Ctrl-C exits with 130.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from codecoop import __version__
from codecoop.errors import CodecoopError

console = Console()
err = Console(stderr=True)

app = typer.Typer(
    name="codecoop",
    help="Federated fine-tuning of a shared code model: LoRA adapters on IPFS, rounds and rewards on an Ethereum chain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"codecoop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """codecoop: organisations train one code model together without sharing their code."""


_registered = False


def _register() -> None:
    """Attach every command group once (modules import their heavy dependencies inside commands)."""
    global _registered
    if _registered:
        return
    from codecoop.cli import audit, chain, dao, experiment, init, model, node, round, sim, token, ui
    from codecoop.cli._output import reflow_help

    app.command("init")(init.init)
    app.add_typer(chain.app, name="chain")
    app.add_typer(node.app, name="node")
    app.add_typer(round.app, name="round")
    app.command("sim")(sim.sim)
    app.command("experiment")(experiment.experiment)
    app.add_typer(model.app, name="model")
    app.add_typer(dao.app, name="dao")
    app.add_typer(token.app, name="token")
    app.add_typer(audit.app, name="audit")
    app.command("ui")(ui.ui)
    reflow_help(app)
    _registered = True


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    _register()
    try:
        # without standalone mode, click returns a typer.Exit's code instead of raising it
        result = app(args=argv, standalone_mode=False)
    except CodecoopError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        return 1
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # click's usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            return 1
        raise
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
