"""``codecoop model``: released versions, and pulling one as a merged Hugging Face model folder."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from codecoop.cli import console
from codecoop.cli._context import Federation, federation_command
from codecoop.cli._output import print_table

app = typer.Typer(help="Released model versions: list, pull.", no_args_is_help=True)


@app.command("list")
@federation_command()
def list_(fed: Federation) -> None:
    """List released versions with their parents and CIDs."""

    d = fed.deployment
    versions = d.models.versions()
    tags = {v.id: v.tag for v in versions}
    table = Table(title="released versions")
    for col in ("id", "tag", "parent", "base model", "cid"):
        table.add_column(col)
    for v in versions:
        table.add_row(str(v.id), v.tag, tags.get(v.parent, "-"), v.base_model_id, v.cid)
    print_table(table, figures=("id",))
    console.print(f"{len(versions)} version(s); release rule: at least {d.models.min_improvement_bps() / 100:.2f}% perplexity improvement")


@app.command()
@federation_command(store=True)
def pull(
    fed: Federation,
    tag: str = typer.Argument(..., help="Version tag, e.g. v1."),
    out: Path = typer.Option(..., "--out", help="Folder for the merged Hugging Face model (created)."),
) -> None:
    """Fetch a release, verify it (CID, base weights hash, adapter layout), merge it into the base model,
    and write a Hugging Face folder with a model card crediting the contributors since the parent version."""
    from codecoop.errors import ConfigError
    from codecoop.governance import contributions, load_adapter, model_card
    from codecoop.token.ledger import Ledger
    from codecoop.training import load_base

    d = fed.deployment
    content = fed.store
    version = d.models.version_by_tag(tag)
    parent = d.models.version(version.parent) if version.parent else None
    charter = d.models.charter()
    with console.status(f"loading base model {version.base_model_id} ..."):
        base = load_base(version.base_model_id)
    if charter.base_weights_hash.removeprefix("0x") not in ("00" * 32, base.weights_hash):
        raise ConfigError(
            f"base model {version.base_model_id} has weights sha256 {base.weights_hash}, the charter requires "
            f"{charter.base_weights_hash}; load the base model the federation agreed on"
        )
    ledger = Ledger.from_deployment(d)
    adapter = load_adapter(content, ledger, version.cid, base)
    merged = adapter.merge(base)
    out.mkdir(parents=True, exist_ok=True)
    merged.model.save_pretrained(out)
    base.tokenizer.save_pretrained(out)
    metrics = json.loads(content.get(version.metrics_cid)) if version.metrics_cid else None
    shares = contributions(ledger, version.cid, parent.cid if parent else None)
    (out / "README.md").write_text(
        model_card(tag, version.cid, version.base_model_id, parent.tag if parent else None, shares, d.params.token_symbol,
                   metrics.get("metrics") if metrics else None)
    )  # fmt: skip
    (out / "codecoop-release.json").write_text(
        json.dumps({"tag": tag, "cid": version.cid, "parent": parent.tag if parent else None, "metrics_cid": version.metrics_cid,
                    "base_model_id": version.base_model_id, "merged_weights_sha256": merged.weights_hash}, indent=1)
    )  # fmt: skip
    console.print(f"{tag} ({version.cid}) verified and merged into {version.base_model_id}: {out}")
    console.print(f"model card credits {len(shares)} member(s) since {parent.tag if parent else 'the base model'}")
