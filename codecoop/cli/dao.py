"""``codecoop dao``: propose, vote on, queue and execute governance proposals; verify a release first."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from codecoop.chain.units import to_tokens
from codecoop.cli import console
from codecoop.cli._context import Federation, federation_command
from codecoop.cli._output import print_table
from codecoop.errors import ConfigError

app = typer.Typer(help="Govern the federation: releases, parameters, members.", no_args_is_help=True)
propose_app = typer.Typer(help="Make a proposal (needs voting power above the proposal threshold).", no_args_is_help=True)
app.add_typer(propose_app, name="propose")

SUPPORT = {"against": 0, "for": 1, "abstain": 2}
DESCRIPTION = typer.Option(None, "--description", help="Proposal text (a default one describes the calls).")


def _submit(fed: Federation, build) -> None:
    d = fed.deployment
    account = fed.signer
    proposal = build(d)
    pid = d.governor.propose(account, list(proposal.calls), proposal.description)
    console.print(f"proposal [bold]{pid}[/] created: {proposal.description}")
    console.print(f"voting opens after block {d.governor.snapshot(pid)} and closes at block {d.governor.deadline(pid)}")


@propose_app.command("release")
@federation_command(signs=True, store=True)
def propose_release(
    fed: Federation,
    tag: str = typer.Argument(..., help="The new version's tag, e.g. v2."),
    cid: Optional[str] = typer.Option(None, "--cid", help="Adapter CID to release (default: the current global model)."),
    parent: Optional[str] = typer.Option(None, "--parent", help="Parent version tag (default: the latest release; 'none' for the base)."),
    metrics_cid: Optional[str] = typer.Option(None, "--metrics-cid", help="CID of a metrics document already in the store."),
    metrics_file: Optional[Path] = typer.Option(None, "--metrics", help="JSON file of metrics to publish with the contributions."),
    description: Optional[str] = DESCRIPTION,
) -> None:
    """Propose releasing a model version (ModelRegistry.release).

    With a store, the proposal carries a metrics document (your metrics plus the members' contribution
    shares since the parent, computed from the ledger) as its metrics CID.

    Example: codecoop dao propose release v2 --store embedded --store-root ./store --keystore me.json --password-env PW
    """
    import json

    from codecoop.governance import contributions, metrics_document, release
    from codecoop.token.ledger import Ledger

    def build(d):
        target = cid or d.rounds.current_base()
        if target is None:
            raise ConfigError("no global model exists yet (no round completed); give --cid")
        versions = d.models.versions()
        if parent is None:
            parent_id = versions[-1].id if versions else 0
        elif parent == "none":
            parent_id = 0
        else:
            parent_id = d.models.version_by_tag(parent).id
        parent_cid = d.models.version(parent_id).cid if parent_id else None
        m_cid = metrics_cid
        content = fed.store_or_none
        if m_cid is None and content is not None:
            metrics = json.loads(metrics_file.read_text()) if metrics_file else None
            shares = contributions(Ledger.from_deployment(d), target, parent_cid)
            doc = metrics_document(tag, target, parent_id, d.models.charter().base_model_id, shares, metrics)
            m_cid = content.put(doc)
            content.pin(m_cid)
        return release(d, tag, target, parent=parent_id, metrics_cid=m_cid, description=description)

    _submit(fed, build)


@propose_app.command("param")
@federation_command(signs=True)
def propose_param(
    fed: Federation,
    changes: list[str] = typer.Argument(..., help="NAME=VALUE pairs, e.g. quorum=7500 aggregation-strategy=fedmedian."),
    description: Optional[str] = DESCRIPTION,
) -> None:
    """Propose changing parameters. Names: submit-window, commit-window, reveal-window, confirm-window,
    quorum, confirmations, max-updates, aggregation-strategy, submit-reward, voter-reward, reward-bound,
    epoch-length, epoch-cap, member-epoch-cap, welcome-grant, transfers, admission, min-improvement.
    Token amounts are in tokens (e.g. 2.5) or in wei with a 'wei' suffix.
    """
    from codecoop.governance import set_parameter

    pairs = []
    for change in changes:
        name, sep, value = change.partition("=")
        if not sep:
            raise ConfigError(f"{change!r} is not NAME=VALUE")
        pairs.append((name.strip(), value.strip()))
    _submit(fed, lambda d: set_parameter(d, pairs, description))


def _member_command(action: str, summary: str) -> None:
    def command(
        fed: Federation,
        member: str = typer.Argument(..., help="The member's address."),
        description: Optional[str] = DESCRIPTION,
    ) -> None:
        from codecoop.governance import member_action

        _submit(fed, lambda d: member_action(d, action, member, description))

    command.__doc__ = summary
    propose_app.command(action)(federation_command(signs=True)(command))


_member_command("admit", "Propose admitting a pending member (admission by approval).")
_member_command("suspend", "Propose suspending an active member.")
_member_command("reinstate", "Propose lifting a member's suspension.")
_member_command("remove", "Propose removing a member for good.")


def _proposal(d, proposal_id: int):
    from codecoop.token.ledger import Ledger

    found = Ledger.from_deployment(d).proposals.get(proposal_id)
    if found is None:
        raise ConfigError(f"no proposal {proposal_id} on this deployment; `codecoop dao list` shows them")
    return found


def _calls(p) -> list[tuple[str, bytes]]:
    return list(zip(p.targets, p.calldatas))


@app.command()
@federation_command(signs=True, store=True)
def vote(
    fed: Federation,
    proposal_id: int = typer.Argument(..., help="Proposal id."),
    support: str = typer.Argument(
        ..., help="for, against or abstain; or auto (with --config): for a release unless it fails your memorization audit."
    ),
    reason: str = typer.Option("", "--reason", help="Reason recorded on-chain with the vote."),
    config: Optional[Path] = typer.Option(
        None,
        "--config",
        help="Your node configuration: with [audit] vote_against_failing_releases = true, a release is first "
        "audited for memorized copies of your data.code, and a failing one gets no vote for it.",
    ),  # fmt: skip
) -> None:
    """Vote on a proposal with your delegated voting power at its snapshot.

    Example: codecoop dao vote 1234 auto --config node.toml --store-root ./store --keystore me.json --password-env PW
    """

    if support not in SUPPORT and support != "auto":
        raise ConfigError(f"support is one of {', '.join(SUPPORT)} or auto, not {support!r}")
    d = fed.deployment
    account = fed.signer
    if config is not None:
        support, reason = _memorization_gate(d, proposal_id, support, reason, config, fed)
    elif support == "auto":
        raise ConfigError("auto decides by your memorization audit: give --config with your node configuration")
    d.governor.cast_vote(account, proposal_id, SUPPORT[support], reason)
    against, for_, abstain = d.governor.votes(proposal_id)
    console.print(
        f"voted {support} on {proposal_id}; tally: for {to_tokens(for_):,.2f}, against {to_tokens(against):,.2f}, abstain {to_tokens(abstain):,.2f}"
    )


def _memorization_gate(d, proposal_id: int, support: str, reason: str, config: Path, fed: Federation) -> tuple[str, str]:
    """The vote after the node configuration's memorization gate (see ``codecoop.audit.release_gate``)."""
    from codecoop.audit.release_gate import audit_release_proposal, decide_vote
    from codecoop.node.config import load_config

    cfg = load_config(config)
    if not cfg["audit.vote_against_failing_releases"]:
        if support == "auto":
            raise ConfigError(f"{config}: [audit] vote_against_failing_releases is off, so auto has nothing to decide by")
        return support, reason
    content = fed.store_or_none or Federation.from_config(cfg).store
    with console.status("auditing the proposed release for memorized copies of your code ..."):
        audited = audit_release_proposal(d, proposal_id, content, cfg.code_paths(), cfg.memorization_config())
    report = audited[1] if audited else None
    if report is not None:
        from codecoop.cli.audit import print_memorization

        print_memorization(report, f"release {audited[0].tag}", show_leaks=False)
    decided, why = decide_vote(support, report, proposal=str(proposal_id))
    return decided, "; ".join(r for r in (reason, why) if r)


@app.command()
@federation_command(signs=True)
def queue(
    fed: Federation,
    proposal_id: int = typer.Argument(..., help="Proposal id."),
) -> None:
    """Queue a succeeded proposal in the timelock."""

    d = fed.deployment
    p = _proposal(d, proposal_id)
    d.governor.queue(fed.signer, _calls(p), p.description)
    console.print(f"proposal {proposal_id} queued; executable after {d.governor.eta(proposal_id)} (unix time)")


@app.command()
@federation_command(signs=True)
def execute(
    fed: Federation,
    proposal_id: int = typer.Argument(..., help="Proposal id."),
) -> None:
    """Execute a queued proposal once the timelock delay has passed."""

    d = fed.deployment
    p = _proposal(d, proposal_id)
    d.governor.execute(fed.signer, _calls(p), p.description)
    console.print(f"proposal {proposal_id} executed: {p.description}")


@app.command("list")
@federation_command()
def list_(fed: Federation) -> None:
    """List every proposal with its state and tally."""
    from codecoop.token.ledger import Ledger

    d = fed.deployment
    table = Table(title="proposals")
    for col in ("id", "state", "for", "against", "abstain", "closes", "description"):
        table.add_column(col)
    proposals = Ledger.from_deployment(d).proposals
    for pid, p in proposals.items():
        against, for_, abstain = d.governor.votes(pid)
        table.add_row(
            str(pid)[:12] + "...", d.governor.state(pid).name.lower(), f"{to_tokens(for_):,.1f}", f"{to_tokens(against):,.1f}",
            f"{to_tokens(abstain):,.1f}", str(d.governor.deadline(pid)), p.description,
        )  # fmt: skip
    print_table(table, figures=("id", "state", "for", "against", "abstain", "closes"))
    console.print(f"{len(proposals)} proposal(s); full ids with `codecoop dao show`")


@app.command()
@federation_command()
def show(fed: Federation, proposal_id: int = typer.Argument(..., help="Proposal id.")) -> None:
    """Show a proposal: its decoded calls, state, votes and timeline."""
    from codecoop.governance import describe_call

    d = fed.deployment
    p = _proposal(d, proposal_id)
    against, for_, abstain = d.governor.votes(proposal_id)
    console.print(f"[bold]proposal {proposal_id}[/]: {p.description}")
    console.print(
        f"state {d.governor.state(proposal_id).name.lower()}, proposed by {p.proposer} in block {p.block}, "
        f"voting blocks {p.vote_start}..{d.governor.deadline(proposal_id)}"
    )
    for target, data in _calls(p):
        contract, fn, args = describe_call(d, target, data)
        shown = ", ".join(f"{k}={'0x' + v.hex() if isinstance(v, bytes) else v}" for k, v in args.items())
        console.print(f"  call {contract}.{fn}({shown})")
    console.print(
        f"votes: for {to_tokens(for_):,.2f}, against {to_tokens(against):,.2f}, abstain {to_tokens(abstain):,.2f} ({len(p.votes)} voter(s))"
    )


@app.command()
@federation_command(signs=True)
def delegate(
    fed: Federation,
    to: Optional[str] = typer.Argument(None, help="Address to delegate to (default: yourself)."),
) -> None:
    """Delegate your voting power (to yourself to vote directly); always allowed, even when transfers are off."""

    d = fed.deployment
    account = fed.signer
    d.token.delegate(account, to)
    target = to or account.address
    console.print(f"{account.address} delegates to {target}, whose voting power is now {to_tokens(d.token.votes(target)):,.2f}")


@app.command()
@federation_command(store=True)
def verify(
    fed: Federation,
    proposal_id: int = typer.Argument(..., help="Id of a release proposal."),
    data: Path = typer.Option(..., "--data", help="Your own held-out code (a folder or git work tree)."),
    problems: int = typer.Option(3, "--humaneval", help="HumanEval problems for pass@1 (greedy); 0 skips it."),
    max_blocks: int = typer.Option(16, "--max-blocks", help="Held-out blocks evaluated (a fixed prefix)."),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", help="Tokens generated per HumanEval problem."),
) -> None:
    """Re-evaluate a proposed release against its parent on your own data and HumanEval, and say whether
    it meets the release criteria (exit status 1 if it does not). Run it before you vote."""
    from codecoop.chain.cid import cid_from_bytes
    from codecoop.governance import ReleaseCriteria, describe_call, load_adapter, verify_release
    from codecoop.token.ledger import Ledger
    from codecoop.training import CodeCorpus, load_base

    d = fed.deployment
    p = _proposal(d, proposal_id)
    content = fed.store
    releases = [args for t, c in _calls(p) for contract, fn, args in [describe_call(d, t, c)] if fn == "release"]
    if not releases:
        raise ConfigError(f"proposal {proposal_id} releases no model; `codecoop dao show {proposal_id}` says what it does")
    args = releases[0]
    ledger = Ledger.from_deployment(d)
    with console.status(f"loading base model {args['baseModelId']} ..."):
        base = load_base(args["baseModelId"])
    candidate = load_adapter(content, ledger, cid_from_bytes(args["cid"]), base)
    parent = load_adapter(content, ledger, d.models.version(args["parent"]).cid, base) if args["parent"] else None
    corpus = CodeCorpus.from_path(data, base.tokenizer)
    criteria = ReleaseCriteria(d.models.min_improvement_bps())
    with console.status("evaluating parent and candidate ..."):
        v = verify_release(
            base, candidate, parent, corpus, criteria, tag=args["tag"], problems=problems, max_blocks=max_blocks, max_new_tokens=max_new_tokens
        )  # fmt: skip
    table = Table(title=f"release {v.tag} (proposal {proposal_id})")
    for col in ("", "parent" if parent else "base", "candidate"):
        table.add_column(col)
    table.add_row("held-out perplexity", f"{v.parent_perplexity:.3f}", f"{v.candidate_perplexity:.3f}")
    table.add_row(f"HumanEval pass@1 ({v.problems} problems)", f"{v.parent_pass_at_1:.3f}", f"{v.candidate_pass_at_1:.3f}")
    print_table(table, figures=(str(table.columns[1].header), "candidate"))
    verdict = "[green]meets[/]" if v.meets else "[red]does not meet[/]"
    console.print(
        f"improvement {v.improvement:+.2%} (criterion: at least {v.min_improvement_bps / 100:.2f}%, pass@1 not below the parent's): "
        f"{verdict} the release criteria"
    )
    if not v.meets:
        from codecoop.governance import CriteriaNotMet

        raise CriteriaNotMet(f"release {v.tag} does not meet the release criteria; consider voting against proposal {proposal_id}")
