"""What a simulation measured, as plain data, JSON and markdown."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["OrgReport", "RoundReport", "SimReport"]


@dataclass
class OrgReport:
    """One simulated organisation: its account and its private data."""

    name: str
    address: str
    projects: list[str]
    train_files: int
    validation_files: int
    train_tokens: int
    validation_tokens: int
    test_files: int = 0  # the organisation's test split: no node trains, judges or selects with it
    test_tokens: int = 0


@dataclass
class RoundReport:
    """One round: the chain's decisions, the global model's quality, and each organisation's costs and rewards."""

    round: int
    phases: list[str] = field(default_factory=list)
    submitted: int = 0
    skipped: int = 0
    accepted: int = 0
    rejected: int = 0
    outcome: str = ""
    global_cid: str | None = None
    global_loss: float = math.nan  # on the organisations' test splits
    validation_loss: float = math.nan  # on the validation splits the nodes judged and selected with
    baseline_loss: dict[str, float] = field(default_factory=dict)  # org -> loss of its single-client model
    gas: dict[str, int] = field(default_factory=dict)
    minted: dict[str, float] = field(default_factory=dict)  # tokens (not wei)
    fetched_bytes: dict[str, int] = field(default_factory=dict)  # org -> bytes it fetched from peers in this round
    wall_s: float = 0.0
    protocol_s: float = 0.0  # the round itself, without the simulation's own evaluations and baselines

    @property
    def global_ppl(self) -> float:
        return math.exp(self.global_loss)


@dataclass
class SimReport:
    """A whole simulation: settings, organisations, the loss before any round, and every round."""

    settings: dict[str, Any]
    orgs: list[OrgReport]
    initial_loss: float  # on the test splits, like every round's global_loss
    rounds: list[RoundReport] = field(default_factory=list)
    initial_validation_loss: float = math.nan
    wall_s: float = 0.0
    setup_s: float = 0.0
    network: dict[str, dict[str, Any]] = field(default_factory=dict)  # org -> its fetch counters (FetchCounters.to_json)

    @property
    def final_loss(self) -> float:
        return self.rounds[-1].global_loss if self.rounds else self.initial_loss

    @property
    def improved(self) -> bool:
        """Whether the federation's global test loss ended lower than where it started."""
        return self.final_loss < self.initial_loss

    def to_json(self) -> dict[str, Any]:
        rounds = []
        for r in self.rounds:
            d = asdict(r)
            d["global_ppl"] = r.global_ppl
            rounds.append(d)
        return {
            "format": "codecoop-sim-report/2",
            "settings": self.settings,
            "orgs": [asdict(o) for o in self.orgs],
            "initial_loss": self.initial_loss,
            "initial_ppl": math.exp(self.initial_loss),
            "initial_validation_loss": self.initial_validation_loss,
            "final_loss": self.final_loss,
            "final_ppl": math.exp(self.final_loss),
            "improved": self.improved,
            "rounds": rounds,
            "network": self.network,
            "wall_s": round(self.wall_s, 2),
            "setup_s": round(self.setup_s, 2),
        }

    def to_markdown(self) -> str:
        s = self.settings
        lines = [
            "# codecoop simulation",
            "",
            f"{len(self.orgs)} organisations, {len(self.rounds)} rounds, strategy `{s['strategy']}`, model `{s['model']}`, "
            f"partition `{s['partition']}`, {s['steps']} local steps a round; wall time {self.wall_s:.0f} s "
            f"(setup {self.setup_s:.0f} s).",
            "",
            "Global test loss: every organisation's test files, token-weighted; no node trains on them, judges with them "
            "or decides to submit by them. Validation loss: the organisations' validation files, which the nodes judged "
            "and selected with (a model chosen on them looks better there than on the test files). Baseline: the "
            "organisation trains alone for the same number of steps, measured on the same test files.",
            "",
            "## Organisations",
            "",
            "| org | address | projects | train files | train tokens | validation files | validation tokens | test files | test tokens |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for o in self.orgs:
            lines.append(
                f"| {o.name} | `{o.address}` | {', '.join(o.projects)} | {o.train_files} | {o.train_tokens:,} | "
                f"{o.validation_files} | {o.validation_tokens:,} | {o.test_files} | {o.test_tokens:,} |"
            )
        names = [o.name for o in self.orgs]
        lines += [
            "",
            "## Rounds",
            "",
            "| round | outcome | submitted | accepted | rejected | validation loss | test loss | test ppl | "
            + " | ".join(f"{n} alone (test loss)" for n in names)
            + " | gas | "
            + " | ".join(f"{n} minted" for n in names)
            + " |",
            "|---:|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(names) + "---:|" + "---:|" * len(names),
            f"| 0 | version 0 | | | | {self.initial_validation_loss:.4f} | {self.initial_loss:.4f} | {math.exp(self.initial_loss):.2f} | "
            + " | ".join("" for _ in names)
            + " | | "
            + " | ".join("" for _ in names)
            + " |",
        ]
        for r in self.rounds:
            base = " | ".join(f"{r.baseline_loss[n]:.4f}" if n in r.baseline_loss else "-" for n in names)
            minted = " | ".join(f"{r.minted.get(n, 0.0):,.1f}" for n in names)
            lines.append(
                f"| {r.round} | {r.outcome} | {r.submitted} | {r.accepted} | {r.rejected} | {r.validation_loss:.4f} | {r.global_loss:.4f} | "
                f"{r.global_ppl:.2f} | {base} | {sum(r.gas.values()):,} | {minted} |"
            )
        verdict = "lower" if self.improved else "not lower"
        if self.network:
            lines += [
                "",
                "## Network",
                "",
                "What each organisation fetched from the others (every object verified against its CID) and served them.",
                "",
                "| org | objects fetched | bytes fetched | paths | failed attempts | fetches after a retry | objects served | bytes served |",
                "|---|---:|---:|---|---:|---:|---:|---:|",
            ]
            for name, c in self.network.items():
                paths = ", ".join(f"{p} {row['objects']}" for p, row in sorted(c.get("by_path", {}).items()))
                served = c.get("served", {}).values()
                lines.append(
                    f"| {name} | {c.get('objects', 0)} | {c.get('bytes', 0):,} | {paths or '-'} | {c.get('failures', 0)} | "
                    f"{c.get('retries', 0)} | {sum(r['objects'] for r in served)} | {sum(r['bytes'] for r in served):,} |"
                )
        lines += [
            "",
            f"Global test loss {self.initial_loss:.4f} -> {self.final_loss:.4f} "
            f"(perplexity {math.exp(self.initial_loss):.2f} -> {math.exp(self.final_loss):.2f}): {verdict} than version 0.",
            "",
        ]
        return "\n".join(lines)

    def write(self, folder: Path) -> tuple[Path, Path]:
        """Write ``report.json`` and ``report.md`` into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        j = folder / "report.json"
        m = folder / "report.md"
        j.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        m.write_text(self.to_markdown())
        return j, m
