"""``codecoop audit``: check the federation's ledger from the chain (and the store) alone; audit a model
for memorized private code; compare keyed clone fingerprints across organisations."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from codecoop.chain.units import to_tokens
from codecoop.cli import console
from codecoop.cli._context import Federation, federation_command
from codecoop.cli._output import print_table
from codecoop.errors import ConfigError

app = typer.Typer(
    help="Audit the ledger (every mint, cap, vote, aggregate and governance action), a model's memorization of your code, "
    "and code shared across organisations.",
    no_args_is_help=True,
)


@app.command()
@federation_command(store=True)
def ledger(
    fed: Federation,
    recompute: bool = typer.Option(True, "--recompute/--no-recompute", help="Re-run each round's aggregation (needs a store)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the full report as JSON."),
    html_out: Optional[Path] = typer.Option(None, "--html", help="Write a self-contained HTML report with plots."),
) -> None:
    """Rebuild the ledger from chain events and check it; exit status 1 when there are findings.

    Example: codecoop audit ledger --rpc http://127.0.0.1:8545 --deployment fed.json --store embedded --store-root ./store --html audit.html
    """
    from codecoop.audit.run import audit_deployment

    d = fed.deployment
    content = fed.store_or_none
    with console.status("rebuilding the ledger from chain events and checking it ..."):
        report = audit_deployment(d, store=content, recompute=recompute)
    table = Table(title=f"ledger audit at block {report.head}")
    for col in ("check", "status", "checked", "detail"):
        table.add_column(col)
    colour = {"pass": "green", "fail": "red", "skipped": "yellow"}
    for c in report.checks:
        table.add_row(c.name, f"[{colour[c.status]}]{c.status}[/]", str(c.checked), c.detail)
    print_table(table, figures=("status", "checked"))
    for f in report.findings:
        console.print(f"[red]{f.kind}[/] ({f.check}): {f.message}")
    for note in report.notes:
        console.print(f"[dim]note: {note}[/]")
    if json_out:
        json_out.write_text(json.dumps(report.to_json(), indent=1))
    if html_out:
        from codecoop.audit.report import render_html

        html_out.write_text(render_html(report))
    s = report.summary
    console.print(
        f"{s['members']} members, {s['rounds']} rounds, {s['updates']} updates ({s['accepted']} accepted), {s['votes']} votes, "
        f"{s['mints']} mints, {s['proposals']} proposals, {s['releases']} releases; supply {to_tokens(s['total_supply']):,.2f} "
        f"{report.token_symbol}; {len(report.findings)} finding(s) in {sum(report.timings.values()):.1f} s"
    )
    if report.findings:
        from codecoop.audit.ledger_audit import AuditFindings

        raise AuditFindings(f"the ledger audit found {len(report.findings)} problem(s): {', '.join(sorted(report.kinds()))}")


def _load_model(model: str, base_id: Optional[str], fed: Federation):
    """(base, adapter or None, description) for ``--model``: 'base', an adapter file, a folder holding
    one adapter or a merged Hugging Face model, or a released version tag read from the chain."""
    from codecoop.training import Adapter, load_base

    path = Path(model).expanduser()
    if model == "base":
        if base_id is None:
            raise ConfigError("--model base audits the bare base model: name it with --base (e.g. --base tiny)")
        return load_base(base_id), None, f"base model {base_id}"
    if path.is_dir() and (path / "config.json").is_file():
        return load_base(str(path)), None, f"model folder {path}"
    if path.is_dir():
        found = sorted(path.glob("*.safetensors"))
        if len(found) != 1:
            raise ConfigError(f"{path} holds {len(found)} .safetensors files; point --model at the adapter file itself")
        path = found[0]
    if path.is_file():
        meta = Adapter.from_bytes(path.read_bytes(), None)
        base = load_base(base_id or meta.base_model_id)
        return base, Adapter.load(path, base), f"adapter {path.name} on {base.model_id}"
    if not re.fullmatch(r"[\w.\-+]+", model) or not fed.has_store:
        raise ConfigError(
            f"--model {model!r} is neither 'base', an adapter file or folder, nor (with --store/--store-root and the "
            "chain options) a released version tag such as v2"
        )
    from codecoop.governance import load_adapter
    from codecoop.token.ledger import Ledger

    d = fed.deployment
    version = d.models.version_by_tag(model)
    base = load_base(base_id or version.base_model_id)
    content = fed.store
    return base, load_adapter(content, Ledger.from_deployment(d), version.cid, base), f"release {model} ({version.cid[:16]}...)"


def print_memorization(report, label: str, show_leaks: bool) -> None:
    """The audit's summary (and, on request, its leaked blocks) on the console."""
    if show_leaks:
        for leak in report.leaks:
            console.print(f"[yellow]leak[/] {len(leak.lines)} line(s) copying {leak.source}:{leak.source_line}")
            for line in leak.lines:
                console.print(f"  [dim]|[/] {escape(line)}")
    elif report.leaks:
        console.print(f"[dim]{len(report.leaks)} leaked block(s); --show-leaks prints them (on this machine only)[/]")
    verdict = "[green]pass[/]" if report.passed else "[red]FAIL[/]"
    console.print(
        f"{label}: memorization ratio {report.ratio:.2%} ({report.memorized_lines} of {report.generated_lines} generated lines "
        f"in exact clones of your code; {report.prompts} prompts, {report.samples} samples); threshold {report.threshold:.2%}: {verdict}"
    )


@app.command()
@federation_command(store=True)
def memorization(
    fed: Federation,
    model: str = typer.Option(
        ...,
        "--model",
        help="A released version tag (with --store and the chain options), an adapter "
        "file or folder, a merged model folder (`codecoop model pull`), or 'base' with --base.",
    ),
    data: list[Path] = typer.Option(..., "--data", help="Your private code (folder or file; repeat for several)."),
    base_id: Optional[str] = typer.Option(None, "--base", help="Base model id (default: the one the adapter or release names)."),
    threshold: float = typer.Option(0.05, "--threshold", help="Pass when the memorization ratio is at most this."),
    fraction: float = typer.Option(1.0, "--fraction", help="Share of your documented functions used as prompts (seeded sample)."),
    max_prompts: Optional[int] = typer.Option(None, "--max-prompts", help="At most this many prompts."),
    temperature: float = typer.Option(0.8, "--temperature", help="Sampling temperature (0: greedy)."),
    top_p: float = typer.Option(0.95, "--top-p", help="Nucleus sampling mass."),
    samples: int = typer.Option(1, "--samples", help="Completions per prompt."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens", help="Tokens generated per completion."),
    min_lines: int = typer.Option(6, "--min-lines", help="Shortest clone, in normalised lines."),
    seed: int = typer.Option(0, "--seed", help="Seed of the prompt sample and of sampling."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the report as JSON (leaks only with --show-leaks)."),
    show_leaks: bool = typer.Option(False, "--show-leaks", help="Print the generated blocks that copy your code (stays local)."),
) -> None:
    """Does a model reproduce your private code? Prompts it with your own functions (signature and
    docstring), looks for exact clones of at least 6 normalised lines of your code in what it writes,
    and reports the memorization ratio; exit status 1 when it is above the threshold.

    Examples:
      codecoop audit memorization --model adapter.safetensors --data ~/src/ourrepo
      codecoop audit memorization --model v2 --data ~/src/ourrepo --store-root ./store --rpc http://127.0.0.1:8545 --show-leaks
    """
    from codecoop.audit.memorization import MemorizationConfig, audit_memorization

    config = MemorizationConfig(
        prompt_fraction=fraction, max_prompts=max_prompts, temperature=temperature, top_p=top_p, samples_per_prompt=samples,
        max_new_tokens=max_new_tokens, min_lines=min_lines, threshold=threshold, seed=seed,
    )  # fmt: skip
    with console.status(f"loading {model} ..."):
        base, adapter, label = _load_model(model, base_id, fed)
    with console.status("generating from your functions ...") as status:
        report = audit_memorization(
            base, adapter, data, config, on_batch=lambda done, total: status.update(f"generating from your functions: {done}/{total} prompts")
        )  # fmt: skip
    print_memorization(report, label, show_leaks)
    if json_out:
        json_out.write_text(json.dumps({"model": model, **report.to_dict(include_leaks=show_leaks)}, indent=1))
    if not report.passed:
        raise typer.Exit(1)


@app.command()
def clones(
    files: Optional[list[Path]] = typer.Argument(
        None, help="Fingerprint files: the organisations' with --compare, the others' with --drop-into."
    ),
    compare: bool = typer.Option(False, "--compare", help="Report the overlap between published fingerprint files."),
    key_file: Optional[Path] = typer.Option(
        None, "--key-file", help="The federation's fingerprint key (agreed off-chain, never published)."
    ),
    new_key: bool = typer.Option(
        False, "--new-key", help="Write a fresh random key to --key-file and exit (hand it to the members off-chain)."
    ),
    data: Optional[list[Path]] = typer.Option(None, "--data", help="Your private code (folder or file; repeat for several)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Where to write your fingerprint file (publish it to the federation)."),
    org: Optional[str] = typer.Option(
        None, "--org", help="Your organisation's name in the file (default: the first --data folder's name)."
    ),
    drop_into: Optional[Path] = typer.Option(
        None, "--drop-into", help="Write your code to this folder with the clones shared with FILES removed."
    ),
    whole_files: bool = typer.Option(
        False, "--whole-files", help="With --drop-into: drop whole files that share a clone, not only its lines."
    ),
    min_lines: int = typer.Option(6, "--min-lines", help="Window size in normalised lines (the same for the whole federation)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="With --compare: write the overlap report as JSON."),
) -> None:
    """Code shared across organisations, found without sharing code: keyed hashes of 6-line windows.

    Examples:
      codecoop audit clones --new-key --key-file fed.key                      # one member, once; share it off-chain
      codecoop audit clones --key-file fed.key --data ~/src/ourrepo --out acme.json   # publish acme.json
      codecoop audit clones --compare acme.json globex.json initech.json      # overlap table
      codecoop audit clones --key-file fed.key --data ~/src/ourrepo --drop-into filtered/ globex.json initech.json
    """
    from codecoop.audit import fingerprints as fp

    if new_key:
        if key_file is None:
            raise ConfigError("--new-key writes the key to --key-file: give the path")
        key = fp.new_key_file(key_file)
        console.print(f"new federation key {key.key_id} written to {key_file} (readable by you only); hand it to the members off-chain")
        return
    if compare:
        sets = [fp.FingerprintSet.load(f) for f in files or []]
        report = fp.overlap(sets)
        table = Table(title=f"shared {sets[0].min_lines}-line windows (key {sets[0].key_id})")
        for col in ("organisation", "organisation", "shared windows", "jaccard", "share of first", "share of second"):
            table.add_column(col)
        for p in report.pairs:
            table.add_row(p.a, p.b, f"{p.shared:,}", f"{p.jaccard:.3f}", f"{p.share_of_a:.2%}", f"{p.share_of_b:.2%}")
        print_table(table, figures=("shared windows", "jaccard", "share of first", "share of second"))
        for name, share in report.shared_elsewhere.items():
            console.print(f"{name}: {report.sizes[name]:,} windows, {share:.2%} found at another organisation")
        if json_out:
            json_out.write_text(json.dumps(report.to_dict(), indent=1))
        return
    if key_file is None or not data:
        raise ConfigError(
            "give --key-file and --data (with --out to publish, or --drop-into and the others' files to filter), or --compare FILES"
        )
    from codecoop.audit.memorization import load_documents

    key = fp.load_key(key_file)
    documents = load_documents(data)
    if drop_into is not None:
        if not files:
            raise ConfigError("--drop-into removes the clones you share with others: name their fingerprint files after the options")
        result = fp.drop_shared_clones(documents, key, [fp.FingerprintSet.load(f) for f in files],
                                       mode="files" if whole_files else "lines", min_lines=min_lines)  # fmt: skip
        _write_filtered(result, data, drop_into)
        for block in result.dropped:
            console.print(f"dropped {block.path}:{block.first_line}-{block.last_line} (also at {', '.join(block.organisations)})")
        console.print(
            f"{len(result.dropped)} shared block(s) dropped, {len(result.dropped_files)} file(s) removed; "
            f"{result.lines_before:,} -> {result.lines_after:,} lines in {drop_into}"
        )
        return
    if out is None:
        raise ConfigError("give --out for your fingerprint file (or --drop-into and the others' files to filter your code)")
    name = org or Path(data[0]).expanduser().resolve().name
    s = fp.fingerprint_documents(documents, key, name, min_lines)
    s.save(out)
    console.print(f"{name}: {s.files} file(s), {s.windows:,} windows, {len(s):,} distinct fingerprints under key {s.key_id} -> {out}")


def _write_filtered(result, data: list[Path], folder: Path) -> None:
    """Write the kept documents under ``folder``, each at its path relative to the --data root it came from."""
    roots = [Path(d).expanduser().resolve() for d in data]
    folder.mkdir(parents=True, exist_ok=True)
    for doc in result.documents:
        path = Path(doc.path).resolve()
        root = next((r for r in roots if path.is_relative_to(r) and r != path), path.parent)
        target = folder / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(doc.text)


@app.command("dp")
def dp_(
    noise_multiplier: float = typer.Option(
        ..., "--noise-multiplier", "-z", help="Noise std over the clip norm (TrainConfig.dp_noise_multiplier)."
    ),
    rounds: int = typer.Option(10, "--rounds", help="Rounds a member takes part in; epsilon is shown at checkpoints up to it."),
    delta: float = typer.Option(1e-5, "--delta", help="The delta of (epsilon, delta)."),
    sample_rate: float = typer.Option(
        1.0, "--sample-rate", help="Chance a member takes part in a round (1: every round, no amplification)."
    ),
) -> None:
    """Privacy budget of client-level DP over rounds: (epsilon, delta) of the Gaussian mechanism composed
    with opacus' RDP accountant (docs/PRIVACY.md).

    Example: codecoop audit dp --noise-multiplier 1.0 --rounds 50 --delta 1e-5
    """
    from codecoop.training.dp import epsilon

    if rounds < 1:
        raise ConfigError(f"--rounds must be at least 1, got {rounds}")
    marks = sorted({t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if t < rounds} | {rounds})
    console.print(f"client-level DP: noise multiplier {noise_multiplier}, sample rate {sample_rate}, delta {delta:g}")
    table = Table()
    table.add_column("rounds", justify="right")
    table.add_column("epsilon", justify="right")
    for t in marks:
        table.add_row(str(t), f"{epsilon(noise_multiplier, t, delta, sample_rate):.3f}")
    print_table(table, figures=("rounds", "epsilon"))
