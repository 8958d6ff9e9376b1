"""The experiment's outputs: results.json, a README.md of tables with the command, PNG plots, findings.

``findings`` turns the runs into the numbers behind the four claims the experiment tests:
(a) federated close to centralized and better than every organisation alone, (b) verbatim
memorization of private code, (c) duplicated code memorized more, (d) in incremental training the
last organisation memorized most. The verdicts are computed, never written by hand, so a rerun
with other settings states its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codecoop.sim.experiment import ExperimentResult, Leakage, RunResult

__all__ = ["CLOSE", "findings", "result_json", "write_json", "write_report", "markdown"]

#: Federated counts as "close to centralized" within this relative perplexity gap.
CLOSE = 0.05

_ORDER = {"base": 0, "centralized": 1, "single": 2, "federated": 3, "incremental": 4}


def _pooled(leaks: Sequence[Leakage | None]) -> Leakage | None:
    present = [x for x in leaks if x is not None]
    return type(present[0]).combine(present) if present else None


def _leak_json(leak: Leakage | None) -> dict[str, Any] | None:
    if leak is None:
        return None
    return {
        "ratio": leak.ratio,
        "memorized_lines": leak.memorized_lines,
        "generated_lines": leak.generated_lines,
        "from_shared": leak.from_shared,
    }


def _finding_a(result: ExperimentResult) -> dict[str, Any]:
    per: dict[str, Any] = {}
    close = beats = total = 0
    for p in result.config.partitions:
        central = result.run(p, "centralized")
        singles = {r.variant: r.validation.perplexity for r in result.runs if r.partition == p and r.setting == "single"}
        feds = {r.variant: r.validation.perplexity for r in result.runs if r.partition == p and r.setting == "federated"}
        if not feds:
            continue
        rows = {}
        for label, ppl in feds.items():
            gap = ppl / central.validation.perplexity - 1.0 if central else None
            better = ppl < min(singles.values()) if singles else None
            rows[label] = {"perplexity": ppl, "gap_vs_centralized": gap, "better_than_every_single": better}
            total += 1
            close += int(gap is not None and gap <= CLOSE)
            beats += int(bool(better))
        base = result.run(p, "base")
        trained = [r.validation.perplexity for r in result.runs if r.partition == p and r.setting != "base"]
        per[p] = {
            "base": base.validation.perplexity if base else None,
            # Fine-tuning that makes every model worse than the untrained one (forgetting) says little about (a).
            "every_trained_model_worse_than_base": bool(base and trained and min(trained) > base.validation.perplexity),
            "centralized": central.validation.perplexity if central else None,
            "single": singles,
            "best_single": min(singles.values()) if singles else None,
            "federated": rows,
        }
    # a partition where training made every model worse than the base cannot show (a) either way
    unreadable = sorted(p for p, d in per.items() if d["every_trained_model_worse_than_base"])
    return {
        "close_threshold": CLOSE,
        "partitions": per,
        "federated_runs": total,
        "close_to_centralized": close,
        "better_than_every_single": beats,
        "unreadable_partitions": unreadable,
        "reproduced": bool(total) and close == total and beats == total and not unreadable,
    }


def _trained(result: ExperimentResult) -> list[RunResult]:
    return [r for r in result.runs if r.setting != "base"]


def _finding_b(result: ExperimentResult) -> dict[str, Any]:
    audited = [r for r in _trained(result) if r.memorization]
    if not audited:
        return {"audited": 0}
    pooled = _pooled([r.leakage for r in audited])
    base = _pooled([r.leakage for r in result.runs if r.setting == "base"])
    top = max(audited, key=lambda r: r.leakage.ratio)  # type: ignore[union-attr]
    by_setting = {
        s: _leak_json(_pooled([r.leakage for r in audited if r.setting == s]))
        for s in ("centralized", "single", "federated", "incremental")
        if any(r.setting == s for r in audited)
    }
    return {
        "audited": len(audited),
        "with_memorized_lines": sum(1 for r in audited if r.leakage and r.leakage.memorized_lines > 0),
        "pooled": _leak_json(pooled),
        "base_model": _leak_json(base),
        "by_setting": by_setting,
        "highest": {"run": f"{top.partition}: {top.label}", **(_leak_json(top.leakage) or {})},
        "reproduced": bool(pooled and pooled.memorized_lines > 0 and pooled.ratio > (base.ratio if base else 0.0)),
    }


def _finding_c(result: ExperimentResult) -> dict[str, Any]:
    # The per-organisation audits say where each leaked block comes from: compare the planted
    # files' share of the leaked lines with their share of the audited training lines.
    leaked = from_shared = data_lines = data_shared = 0
    for r in _trained(result):
        orgs = {o.name: o for o in result.data.get(r.partition, [])}
        for name, leak in r.memorization.items():
            leaked += leak.memorized_lines
            from_shared += leak.from_shared
            if name in orgs:
                data_lines += orgs[name].train_lines
                data_shared += orgs[name].shared_lines
    if not any(r.memorization for r in _trained(result)):
        return {"audited": 0}
    share_leaks = from_shared / leaked if leaked else None
    share_data = data_shared / data_lines if data_lines else None
    out: dict[str, Any] = {
        "leaked_lines": leaked,
        "leaked_lines_from_planted": from_shared,
        "planted_share_of_leaks": share_leaks,
        "planted_share_of_data": share_data,
    }
    runs = [r for r in _trained(result) if r.duplicated is not None and r.unique is not None]
    out["audited"] = len(runs)
    if not runs:
        out["reproduced"] = bool(share_leaks is not None and share_data is not None and share_leaks > share_data)
        return out
    dup = _pooled([r.duplicated for r in runs])
    uni = _pooled([r.unique for r in runs])
    base = [r for r in result.runs if r.setting == "base" and r.duplicated is not None]
    by_setting = {}
    for s in ("centralized", "federated", "incremental"):
        chosen = [r for r in runs if r.setting == s]
        if chosen:
            by_setting[s] = {
                "duplicated": _leak_json(_pooled([r.duplicated for r in chosen])),
                "unique": _leak_json(_pooled([r.unique for r in chosen])),
            }
    out.update(
        {
            "duplicated": _leak_json(dup),
            "unique": _leak_json(uni),
            "base_duplicated": _leak_json(_pooled([r.duplicated for r in base])),
            "base_unique": _leak_json(_pooled([r.unique for r in base])),
            "by_setting": by_setting,
            "runs_duplicated_higher": sum(1 for r in runs if r.duplicated.ratio > r.unique.ratio),  # type: ignore[union-attr,misc]
            "runs_unique_higher": sum(1 for r in runs if r.unique.ratio > r.duplicated.ratio),  # type: ignore[union-attr,misc]
            "reproduced": bool(dup and uni and dup.memorized_lines > 0 and dup.ratio > uni.ratio),
        }
    )
    return out


def _positions(runs: Sequence[RunResult], n: int) -> list[Leakage | None]:
    return [_pooled([r.memorization.get(r.order[k]) for r in runs if len(r.order) == n]) for k in range(n)]


def _finding_d(result: ExperimentResult) -> dict[str, Any]:
    runs = [r for r in result.runs if r.setting == "incremental" and r.memorization]
    if not runs:
        return {"audited": 0}
    n = result.config.orgs
    overall = _positions(runs, n)
    per = {
        p: [_leak_json(x) for x in _positions([r for r in runs if r.partition == p], n)]
        for p in result.config.partitions
        if any(r.partition == p for r in runs)
    }
    ratios = [x.ratio if x else 0.0 for x in overall]
    last_max = ratios[-1] > max(ratios[:-1]) if n > 1 else False
    orders_last_highest = 0
    for r in runs:
        vals = [r.memorization[o].ratio if o in r.memorization else 0.0 for o in r.order]
        orders_last_highest += int(vals[-1] > max(vals[:-1]))
    return {
        "audited": len(runs),
        "by_position": [_leak_json(x) for x in overall],
        "by_partition": per,
        "orders_where_last_is_highest": orders_last_highest,
        "reproduced": bool(last_max and overall[-1] and overall[-1].memorized_lines > 0),
    }


def findings(result: ExperimentResult) -> dict[str, Any]:
    """The numbers behind findings (a)-(d), each with a computed ``reproduced`` verdict."""
    return {"a": _finding_a(result), "b": _finding_b(result), "c": _finding_c(result), "d": _finding_d(result)}


# --------------------------------------------------------------------------------------- writing
def result_json(result: ExperimentResult) -> dict[str, Any]:
    """results.json's content: the result's plain data with its findings after the runs."""
    out: dict[str, Any] = {}
    for key, value in result.to_json().items():
        out[key] = value
        if key == "runs":
            out["findings"] = findings(result)
    return out


def write_json(result: ExperimentResult, out: Path) -> Path:
    """Write ``out/results.json`` atomically (the harness calls this after every run)."""
    from codecoop.training.cache import atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    atomic_write_bytes(path, (json.dumps(result_json(result), indent=1, sort_keys=False) + "\n").encode())
    return path


def write_report(result: ExperimentResult, out: Path, *, plots: bool = True) -> list[Path]:
    """Write results.json, README.md and (with ``plots``) the PNG figures into ``out``; return the paths."""
    paths = [write_json(result, out)]
    figures = _plots(result, out) if plots else []
    readme = out / "README.md"
    readme.write_text(markdown(result, [f.name for f in figures]))
    return paths + [readme] + figures


def _f(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def _ratio(leak: Leakage | None) -> str:
    if leak is None:
        return "-"
    return f"{leak.ratio:.3f} ({leak.memorized_lines}/{leak.generated_lines})"


def _sorted_runs(result: ExperimentResult, partition: str) -> list[RunResult]:
    runs = [r for r in result.runs if r.partition == partition]
    return sorted(runs, key=lambda r: (_ORDER[r.setting], runs.index(r)))


def markdown(result: ExperimentResult, figures: Sequence[str] = ()) -> str:
    """The README.md of one experiment: command, setup, one table per partition, memorization, findings."""
    cfg = result.config
    data = result_json(result)
    names = [f"org-{i}" for i in range(cfg.orgs)]
    lines = [
        f"# Experiment: {cfg.model}, {cfg.orgs} organisations, {cfg.rounds} rounds x {cfg.steps} steps",
        "",
        "Produced by:",
        "",
        "```",
        result.command or "(run through the Python API)",
        "```",
        "",
        f"Wall time {result.compute_wall_s / 60:.1f} min on {result.device} ({_invocations(result)}). All numbers are in "
        "`results.json` beside this file; the figures are PNGs beside it too.",
        "",
        "## Setup",
        "",
        f"- Base model `{cfg.model}` ({result.base_model.get('parameters', 0):,} parameters); LoRA r={cfg.r}, alpha={2 * cfg.r} on "
        f"{', '.join(result.base_model.get('lora_targets', []))} ({result.base_model.get('lora_parameters', 0):,} trainable parameters), "
        f"lr {cfg.lr:g}, batch {cfg.batch_size} x {cfg.seq_len} tokens, seed {cfg.seed}.",
        f"- Data: a seeded pool of {cfg.files} Python files (with documented functions, at most {cfg.max_file_bytes:,} bytes) from "
        f"{'the installed projects (site-packages)' if not cfg.data else ', '.join(cfg.data)}, split among {cfg.orgs} organisations "
        f"by each partition (the same pool for every partition); {round(cfg.validation_fraction * 100)}% of each organisation's "
        f"files held out for validation. {cfg.shared_files} more files are planted in the training data of "
        f"{cfg.shared_copies} organisations each (rotating), never in validation: {', '.join(f'`{s}`' for s in result.shared) or 'none'}.",
        f"- **Compute is matched by optimizer steps of one batch size, hence by training tokens**: centralized, every federated "
        f"strategy and every incremental order train for {cfg.rounds} rounds x {cfg.orgs} organisations x {cfg.steps} steps = "
        f"{cfg.budget_steps} steps of {cfg.tokens_per_step:,} tokens ({cfg.budget_steps * cfg.tokens_per_step:,} tokens). Each "
        f"single-client model trains its organisation's share, {cfg.rounds} x {cfg.steps} = {cfg.rounds * cfg.steps} steps, "
        "what the organisation spends in the federation; the single-client models together cost the same budget.",
        f"- Federated: {cfg.rounds} round(s); each organisation trains {cfg.steps} steps from the global adapter, then the real "
        "`codecoop.aggregation` strategy merges the updates (FedAvg weights: training blocks). It runs in-process through the "
        "training and aggregation APIs, not the on-chain node (every update accepted; `codecoop sim` runs the protocol)."
        + _strategy_notes(cfg),
        f"- Incremental: the organisations one after another, each {cfg.rounds * cfg.steps} steps from its predecessor's adapter; "
        f"{len(cfg.incremental_orders())} order(s).",
        f"- Metrics: perplexity and next-token accuracy on the union of the organisations' validation splits (at most "
        f"{cfg.eval_blocks} blocks of {cfg.seq_len} tokens each; per organisation beside it); memorization ratio of "
        "`codecoop.audit.memorization` (generated lines inside exact clones of at least 6 normalised lines of the audited "
        f"files, over all generated lines; {cfg.memorization_prompts} prompts of {cfg.memorization_tokens} new tokens per audit), "
        "audited against each organisation's own training files (single-client models: their own organisation only)"
        + (
            f"; greedy pass@1 on the first {cfg.humaneval} HumanEval problems"
            if cfg.humaneval
            else "; no HumanEval (" + ("tiny solves none of it" if cfg.model == "tiny" else "--humaneval 0") + ")"
        )
        + ". `base` is the untrained model, for reference.",
        "",
        "## Data per partition",
        "",
        "| partition | organisation | train files (planted) | train tokens | validation files | validation tokens | own repositories |",
        "|---|---|---|---|---|---|---|",
    ]
    for p, orgs in result.data.items():
        for o in orgs:
            repos = ", ".join(o.repositories)
            lines.append(
                f"| {p} | {o.name} | {o.train_files} ({o.shared_files}) | {o.train_tokens:,} | {o.validation_files} | "
                f"{o.validation_tokens:,} | {repos if len(repos) < 90 else repos[:87] + '...'} |"
            )
    for p in cfg.partitions:
        runs = _sorted_runs(result, p)
        if not runs:
            continue
        lines += [
            "",
            f"## Results: {p}",
            "",
            "| setting | variant | steps | tokens | val ppl | val acc | "
            + " | ".join(f"ppl {n}" for n in names)
            + " | memorization (lines) | duplicated | unique | pass@1 |",
            "|---|---|---|---|---|---|" + "---|" * len(names) + "---|---|---|---|",
        ]
        for r in runs:
            per = " | ".join(_f(r.per_org[n].perplexity) if n in r.per_org else "-" for n in names)
            lines.append(
                f"| {r.setting} | {r.variant} | {r.steps} | {r.tokens:,} | {_f(r.validation.perplexity)} | "
                f"{_f(r.validation.token_accuracy, 3)} | {per} | {_ratio(r.leakage)} | {_ratio(r.duplicated)} | "
                f"{_ratio(r.unique)} | {_f(r.pass_at_1)} |"
            )
    if any(r.memorization for r in result.runs):
        lines += [
            "",
            "## Memorization per organisation",
            "",
            "Ratio (memorized / generated lines) of each model against each organisation's own training files.",
            "",
            "| partition | setting | variant | " + " | ".join(names) + " |",
            "|---|---|---|" + "---|" * len(names),
        ]
        for p in cfg.partitions:
            for r in _sorted_runs(result, p):
                if r.memorization:
                    lines.append(f"| {p} | {r.setting} | {r.variant} | " + " | ".join(_ratio(r.memorization.get(n)) for n in names) + " |")
    f = data["findings"]
    lines += ["", "## Findings", ""]
    lines += _findings_text(f, cfg.orgs)
    for name in figures:
        lines += ["", f"![{name}]({name})"]
    return "\n".join(lines) + "\n"


def _invocations(result: ExperimentResult) -> str:
    computing = [i for i in result.invocations if i["computed"]]
    rereads = len(result.invocations) - len(computing)
    text = f"{len(computing)} invocation(s) that computed results"
    return text + (f", {rereads} that re-read the cache to redraw" if rereads else "")


def _strategy_notes(cfg: Any) -> str:
    from codecoop.aggregation.spec import parse_strategy

    notes = []
    for c in cfg.strategies:
        if c.mu:
            notes.append(f"`{c.label}` is FedAvg aggregation with the client-side proximal term mu/2 ||w - w_global||^2, mu {c.mu:g}.")
        spec = parse_strategy(c.spec)
        if spec.name == "fedtrimmedavg":
            beta = float(spec.kwargs.get("beta", 0.2))
            if int(beta * cfg.orgs) == 0:
                notes.append(f"With {cfg.orgs} organisations `{c.label}` (beta {beta:g}) trims nothing: it is the unweighted mean.")
    return "".join(" " + n for n in notes)


def _leak_text(d: dict[str, Any] | None) -> str:
    if not d:
        return "-"
    return f"{d['ratio']:.4f} ({d['memorized_lines']}/{d['generated_lines']} lines)"


def _yes(flag: bool) -> str:
    return "**reproduced**" if flag else "**not reproduced**"


def _findings_text(f: dict[str, Any], n: int) -> list[str]:
    out = []
    a = f["a"]
    if a.get("federated_runs"):
        unreadable = a.get("unreadable_partitions", [])
        verdict = (
            f"**not readable** (every trained model is worse than the base in: {', '.join(unreadable)})"
            if unreadable
            else _yes(a["reproduced"])
        )
        out.append(
            f"- (a) federated close to centralized (perplexity within {a['close_threshold']:.0%}) and better than each "
            f"organisation alone: {verdict}. {a['close_to_centralized']}/{a['federated_runs']} federated runs "
            f"are close to centralized; {a['better_than_every_single']}/{a['federated_runs']} beat every single-client model."
        )
        for p, d in a["partitions"].items():
            feds = ", ".join(
                f"{k} {v['perplexity']:.2f}" + (f" ({v['gap_vs_centralized']:+.1%})" if v["gap_vs_centralized"] is not None else "")
                for k, v in d["federated"].items()
            )
            singles = ", ".join(f"{k} {v:.2f}" for k, v in d["single"].items()) or "-"
            out.append(f"  - {p}: base {_f(d['base'])}; centralized {_f(d['centralized'])}; federated {feds}; single {singles}.")
            if d["every_trained_model_worse_than_base"]:
                out.append(
                    f"  - caveat ({p}): every trained model is worse on validation than the untrained base model "
                    "(forgetting on small data), so this partition says little about (a)."
                )
    b = f["b"]
    if b.get("audited"):
        out.append(
            f"- (b) trained models reproduce private code verbatim: {_yes(b['reproduced'])}. Pooled memorization ratio "
            f"{_leak_text(b['pooled'])} over {b['audited']} trained models ({b['with_memorized_lines']} with any memorized line); "
            f"base model {_leak_text(b['base_model'])}; highest {b['highest']['run']}: {b['highest']['ratio']:.4f}."
        )
        out.append("  - by setting: " + "; ".join(f"{k} {_leak_text(v)}" for k, v in b["by_setting"].items()) + ".")
    else:
        out.append("- (b)-(d): no memorization audit in this run (--memorization-prompts 0).")
    c = f["c"]
    if "leaked_lines" in c:
        out.append(f"- (c) code planted in several organisations is memorized more than unique code: {_yes(c['reproduced'])}.")
        if c.get("audited"):
            out.append(
                f"  - audited separately: duplicated {_leak_text(c['duplicated'])} vs unique {_leak_text(c['unique'])} pooled over "
                f"{c['audited']} models (duplicated higher in {c['runs_duplicated_higher']}, unique higher in "
                f"{c['runs_unique_higher']}); base model duplicated {_leak_text(c['base_duplicated'])}, unique "
                f"{_leak_text(c['base_unique'])}."
            )
        if c["planted_share_of_data"] is not None:
            share = "-" if c["planted_share_of_leaks"] is None else f"{c['planted_share_of_leaks']:.1%}"
            out.append(
                f"  - planted files are {c['planted_share_of_data']:.1%} of the audited training lines and {share} of the "
                f"{c['leaked_lines']} leaked lines found by the per-organisation audits."
            )
    d = f["d"]
    if d.get("audited"):
        pos = "; ".join(f"position {k + 1} {_leak_text(x)}" for k, x in enumerate(d["by_position"]))
        out.append(
            f"- (d) in incremental training the last organisation is memorized most: {_yes(d['reproduced'])}. "
            f"Pooled over {d['audited']} orders: {pos}. The last organisation has the highest ratio in "
            f"{d['orders_where_last_is_highest']}/{d['audited']} orders."
        )
    return out


# --------------------------------------------------------------------------------------- plots
def _bars(result: ExperimentResult, partition: str) -> list[tuple[str, RunResult | list[RunResult]]]:
    """Bars of one partition: base, centralized, each single, each strategy, incremental (all orders in one bar)."""
    runs = _sorted_runs(result, partition)
    out: list[tuple[str, Any]] = []
    for r in runs:
        if r.setting == "incremental":
            continue
        label = {"base": "base", "centralized": "central"}.get(r.setting, r.variant if r.setting == "federated" else f"alone {r.variant}")
        out.append((label, r))
    inc = [r for r in runs if r.setting == "incremental"]
    if inc:
        out.append(("incremental", inc))
    return out


_COLOURS = {"base": "#999999", "centralized": "#1f77b4", "single": "#ff7f0e", "federated": "#2ca02c", "incremental": "#9467bd"}


def _plots(result: ExperimentResult, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: list[Path] = []
    parts = [p for p in result.config.partitions if any(r.partition == p for r in result.runs)]
    if not parts:
        return paths

    def value_bars(ax: Any, partition: str, get: Any, title: str, *, zoom: bool = False) -> None:
        """One bar per run (incremental: the mean over orders, with its min-max range)."""
        xs, heights, colours, labels = [], [], [], []
        lows, highs = [], []
        for i, (label, item) in enumerate(_bars(result, partition)):
            group = item if isinstance(item, list) else [item]
            vals = [v for v in (get(r) for r in group) if v is not None]
            if not vals:
                continue
            mean = sum(vals) / len(vals)
            xs.append(i)
            heights.append(mean)
            colours.append(_COLOURS[group[0].setting])
            labels.append(label)
            lows.append(min(vals))
            highs.append(max(vals))
            if len(vals) > 1:
                ax.errorbar([i], [mean], yerr=[[mean - min(vals)], [max(vals) - mean]], color="black", capsize=3, lw=1)
        if not xs:
            return
        ax.bar(xs, heights, color=colours)
        if zoom:
            # Perplexities of one partition differ by a few percent: start the axis near them.
            lo, hi = min(lows), max(highs)
            pad = max((hi - lo) * 0.15, hi * 0.005)
            ax.set_ylim(max(0.0, lo - pad), hi + pad)
        else:
            ax.set_ylim(0.0, max(max(highs) * 1.15, 1e-3))
        ax.set_xticks(xs, labels, rotation=60, ha="right", fontsize=7)
        ax.set_title(f"{partition}: {title}", fontsize=9)
        ax.tick_params(axis="y", labelsize=7)

    fig, axes = plt.subplots(2, len(parts), figsize=(4.2 * len(parts), 6.5), squeeze=False)
    for j, p in enumerate(parts):
        value_bars(axes[0][j], p, lambda r: r.validation.perplexity, "validation perplexity", zoom=True)
        value_bars(axes[1][j], p, lambda r: r.validation.token_accuracy, "next-token accuracy", zoom=True)
    fig.suptitle(f"{result.config.model}: union of the validation splits\n(incremental: mean over orders, min-max bar)", fontsize=9)
    fig.tight_layout()
    paths.append(_save(fig, out / "quality.png"))

    if any(r.memorization for r in result.runs):
        fig, axes = plt.subplots(1, len(parts), figsize=(4.2 * len(parts), 3.6), squeeze=False)
        for j, p in enumerate(parts):
            value_bars(axes[0][j], p, lambda r: r.leakage.ratio if r.leakage else None, "memorization ratio")
        fig.suptitle("memorization ratio against the organisations' own training files\n(pooled over organisations)", fontsize=9)
        fig.tight_layout()
        paths.append(_save(fig, out / "memorization.png"))

        f = findings(result)
        if f["d"].get("audited"):
            fig, ax = plt.subplots(figsize=(5.5, 3.4))
            n = result.config.orgs
            groups = list(f["d"]["by_partition"].items())
            width = 0.8 / n
            for k in range(n):
                vals = [(x[k]["ratio"] if x[k] else 0.0) for _, x in groups]
                ax.bar(
                    [i + k * width for i in range(len(groups))], vals, width, label=f"position {k + 1}" + (" (last)" if k == n - 1 else "")
                )
            ax.set_xticks([i + width * (n - 1) / 2 for i in range(len(groups))], [g for g, _ in groups], fontsize=8)
            ax.set_ylabel("memorization ratio", fontsize=8)
            ax.set_ylim(0.0, max([x["ratio"] for _, xs in groups for x in xs if x] + [0.0]) * 1.2 or 0.01)
            ax.set_title("incremental: memorization of each organisation\nby its position in the order", fontsize=9)
            ax.legend(fontsize=7)
            fig.tight_layout()
            paths.append(_save(fig, out / "incremental_positions.png"))
        if f["c"].get("by_setting"):
            fig, ax = plt.subplots(figsize=(5.5, 3.4))
            settings = list(f["c"]["by_setting"].items())
            for k, kind in enumerate(("duplicated", "unique")):
                ax.bar(
                    [i + k * 0.4 for i in range(len(settings))],
                    [d[kind]["ratio"] if d[kind] else 0.0 for _, d in settings],
                    0.4,
                    label=kind,
                )
            ax.set_xticks([i + 0.2 for i in range(len(settings))], [s for s, _ in settings], fontsize=8)
            ax.set_ylabel("memorization ratio", fontsize=8)
            ax.set_ylim(0.0, max([d[k]["ratio"] for _, d in settings for k in ("duplicated", "unique") if d[k]] + [0.0]) * 1.2 or 0.01)
            ax.set_title("files planted in several organisations vs unique files (pooled)", fontsize=9)
            ax.legend(fontsize=7)
            fig.tight_layout()
            paths.append(_save(fig, out / "duplicated_vs_unique.png"))

    if any(r.pass_at_1 is not None for r in result.runs):
        fig, axes = plt.subplots(1, len(parts), figsize=(4.2 * len(parts), 3.4), squeeze=False)
        for j, p in enumerate(parts):
            value_bars(axes[0][j], p, lambda r: r.pass_at_1, f"HumanEval pass@1 ({result.config.humaneval} problems)")
        fig.tight_layout()
        paths.append(_save(fig, out / "humaneval.png"))
    return paths


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    # A fixed Software tag and no timestamp keep re-renders of the same numbers byte-stable.
    fig.savefig(path, dpi=110, metadata={"Software": "codecoop experiment"})
    plt.close(fig)
    return path
