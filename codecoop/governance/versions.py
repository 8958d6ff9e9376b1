"""The version-control protocol: release criteria, contribution shares, model cards, and loading a
released model from the store.

- **Release criteria** are governance parameters: ``ModelRegistry.minImprovementBps`` (least relative
  perplexity improvement over the parent version) and, from the charter, that pass@1 on the HumanEval
  subset does not fall below the parent's. :func:`verify_release` re-evaluates both on the voter's own data.
- **Contribution shares** of a version are computed from the ledger: every accepted update of the
  rounds that built it since its parent version, weighted by its submitter reward before caps (its
  score), so the card credits exactly what the chain rewarded.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from codecoop.errors import CodecoopError, ConfigError, TensorFormatError
from codecoop.token.ledger import Ledger, RoundRecord
from codecoop.token.rewards import submitter_reward

if TYPE_CHECKING:
    from codecoop.storage import ContentStore
    from codecoop.training import Adapter, BaseModel

__all__ = [
    "CriteriaNotMet",
    "ReleaseCriteria",
    "Contribution",
    "contributions",
    "rounds_of_version",
    "metrics_document",
    "model_card",
    "load_adapter",
    "Verification",
    "verify_release",
]


class CriteriaNotMet(CodecoopError):
    """A proposed release does not meet the release criteria (``codecoop dao verify`` exits non-zero)."""


@dataclass(frozen=True)
class ReleaseCriteria:
    """What a release must show against its parent version."""

    min_improvement_bps: int
    max_pass_at_1_drop: float = 0.0

    def judge(self, parent_ppl: float, candidate_ppl: float, parent_pass: float, candidate_pass: float) -> tuple[bool, float]:
        """(meets the criteria, relative perplexity improvement)."""
        improvement = (parent_ppl - candidate_ppl) / parent_ppl
        ok = improvement * 10_000 >= self.min_improvement_bps and candidate_pass >= parent_pass - self.max_pass_at_1_drop
        return ok, improvement


@dataclass(frozen=True)
class Contribution:
    """One member's part in a version since its parent."""

    member: str
    accepted_updates: int
    samples: int
    reward_weight: int
    share: float


def rounds_of_version(ledger: Ledger, cid: str, parent_cid: str | None) -> list[RoundRecord]:
    """The rounds that built ``cid`` since ``parent_cid``: the chain of bases back to the parent (or the start)."""
    by_cid = {r.completed_cid: r for r in sorted(ledger.rounds.values(), key=lambda r: r.round) if r.accepted_mask and r.completed_cid}
    chain: list[RoundRecord] = []
    current = by_cid.get(cid)
    while current is not None and current.completed_cid != parent_cid:
        chain.append(current)
        current = by_cid.get(current.base_cid) if current.base_cid else None
    return list(reversed(chain))


def contributions(ledger: Ledger, cid: str, parent_cid: str | None = None) -> list[Contribution]:
    """Contribution shares of the members to version ``cid`` since ``parent_cid``, largest first."""
    count: dict[str, int] = defaultdict(int)
    samples: dict[str, int] = defaultdict(int)
    weight: dict[str, int] = defaultdict(int)
    for r in rounds_of_version(ledger, cid, parent_cid):
        scores = {d.update_id: d.score for d in r.decisions}
        for u in r.accepted:
            count[u.submitter] += 1
            samples[u.submitter] += u.n_samples
            weight[u.submitter] += submitter_reward(r.rules, scores.get(u.update_id, 0))
    total = sum(weight.values())
    out = [
        Contribution(m, count[m], samples[m], weight[m], weight[m] / total if total else count[m] / max(sum(count.values()), 1))
        for m in count
    ]
    return sorted(out, key=lambda c: (-c.share, c.member))


def metrics_document(
    tag: str, cid: str, parent: int, base_model_id: str, shares: list[Contribution], metrics: dict[str, Any] | None = None
) -> bytes:
    """The canonical JSON a release proposal carries as its metrics CID: metrics and contributions."""
    doc = {
        "format": "codecoop-release-metrics/1",
        "tag": tag,
        "cid": cid,
        "parent": parent,
        "base_model_id": base_model_id,
        "metrics": metrics or {},
        "contributions": [asdict(c) for c in shares],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def model_card(
    tag: str,
    cid: str,
    base_model_id: str,
    parent_tag: str | None,
    shares: list[Contribution],
    symbol: str,
    metrics: dict[str, Any] | None = None,
) -> str:
    """A Hugging Face README (model card) crediting the contributing members since the parent version."""
    lines = [
        "---",
        f"base_model: {base_model_id}",
        "library_name: transformers",
        "tags: [codecoop, federated-learning, lora]",
        "---",
        f"# codecoop release {tag}",
        "",
        f"LoRA adapter `{cid}` merged into `{base_model_id}`, released by the federation's DAO "
        f"on top of {'version ' + parent_tag if parent_tag else 'the base model'}.",
        "",
        "## Contributors since the parent version",
        "",
        "Computed from the chain alone: each accepted update weighted by the reward its score earned "
        f"({symbol} before the caps). This is the record for attribution and credit.",
        "",
        "| member | accepted updates | training samples | share |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| `{c.member}` | {c.accepted_updates} | {c.samples:,} | {c.share:.2%} |" for c in shares]
    if not shares:
        lines.append("| (no round of this federation produced this version) | | | |")
    if metrics:
        lines += ["", "## Metrics", "", "```json", json.dumps(metrics, indent=1, sort_keys=True), "```"]
    return "\n".join(lines) + "\n"


def load_adapter(store: ContentStore, ledger: Ledger | None, cid: str, base: BaseModel) -> Adapter:
    """The adapter stored under ``cid``, verified, checked against ``base``.

    A round's aggregate carries the strategy's metadata, not the LoRA configuration; that comes from
    the accepted updates it was made of (found through ``ledger``), which all share it.
    """
    from codecoop.tensors import from_safetensors
    from codecoop.training import Adapter

    data = store.get(cid)
    try:
        return Adapter.from_bytes(data, base)
    except TensorFormatError:
        pass
    round_ = ledger.round_of_cid(cid) if ledger is not None else None
    if round_ is None or not round_.accepted:
        raise ConfigError(f"{cid} is neither a codecoop adapter nor the aggregate of a round of this federation")
    spec = Adapter.from_bytes(store.get(round_.accepted[0].cid), None).lora
    tensors, _ = from_safetensors(data)
    adapter = Adapter({k: v.float() for k, v in tensors.items()}, base.model_id, base.weights_hash, spec, {})
    adapter.check_fits(base)
    return adapter


@dataclass(frozen=True)
class Verification:
    tag: str
    parent_perplexity: float
    candidate_perplexity: float
    improvement: float
    parent_pass_at_1: float
    candidate_pass_at_1: float
    problems: int
    min_improvement_bps: int
    meets: bool


def verify_release(
    base: BaseModel,
    candidate: Adapter,
    parent: Adapter | None,
    corpus: Any,
    criteria: ReleaseCriteria,
    *,
    tag: str,
    problems: int = 3,
    max_blocks: int | None = 16,
    max_new_tokens: int = 64,
) -> Verification:
    """Evaluate ``candidate`` and ``parent`` (None: the bare base) on ``corpus``'s held-out split and on
    ``problems`` HumanEval problems (greedy pass@1), and judge them against ``criteria``."""
    from codecoop.training import evaluate, pass_at_k

    parent_ppl = evaluate(base, parent, corpus, max_blocks=max_blocks).perplexity
    cand_ppl = evaluate(base, candidate, corpus, max_blocks=max_blocks).perplexity
    passes = [0.0, 0.0]
    if problems:
        for i, adapter in enumerate((parent, candidate)):
            result = pass_at_k(base, adapter, problems=problems, n=1, k=(1,), temperature=0.0, max_new_tokens=max_new_tokens, workers=1)
            passes[i] = result.scores[1]
    ok, improvement = criteria.judge(parent_ppl, cand_ppl, passes[0], passes[1])
    return Verification(tag, parent_ppl, cand_ppl, improvement, passes[0], passes[1], problems, criteria.min_improvement_bps, ok)
