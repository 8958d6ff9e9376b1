"""Evaluation metrics and the generation helper."""

from __future__ import annotations

import math

import pytest

from codecoop.errors import AdapterMismatch, TrainingError
from codecoop.training import (
    Adapter,
    BaseModel,
    CodeCorpus,
    TrainConfig,
    adapter_scorers,
    block_scorer,
    evaluate,
    generate,
    train_lora,
)


def test_metrics_are_consistent(tiny: BaseModel, corpus: CodeCorpus) -> None:
    m = evaluate(tiny, None, corpus, block_size=32, max_blocks=10, batch_size=4)
    assert m.n_tokens == 10 * 31
    assert m.perplexity == pytest.approx(math.exp(m.loss))
    assert 0.0 < m.token_accuracy < 1.0
    assert m.perplexity < len(tiny.tokenizer), "pre-trained tiny beats a uniform guess"


def test_block_scores_average_to_the_evaluated_loss(tiny: BaseModel, corpus: CodeCorpus) -> None:
    full = evaluate(tiny, None, corpus, block_size=32, max_blocks=10, batch_size=4)
    with block_scorer(tiny, None, corpus, block_size=32, max_blocks=10, batch_size=3) as score:
        assert score.n_blocks == 10
        losses = score(range(10))
        reversed_order = score([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    assert losses.mean() == pytest.approx(full.loss, rel=1e-5)
    assert reversed_order[::-1] == pytest.approx(losses, rel=1e-5), "a block's score does not depend on its batch"


def test_one_attachment_scores_each_loaded_adapter_as_its_own_attachment_would(tiny: BaseModel, corpus: CodeCorpus) -> None:
    small = dict(steps=3, batch_size=2, seq_len=32, progress=False)
    a = train_lora(tiny, corpus, TrainConfig(lr=5e-2, seed=1, **small))
    b = train_lora(tiny, corpus, TrainConfig(lr=5e-2, seed=2, **small))
    other_rank = train_lora(tiny, corpus, TrainConfig(lr=5e-2, seed=3, r=4, **small))
    kw = dict(block_size=32, max_blocks=6, batch_size=4)
    alone = {}
    for name, adapter in (("a", a), ("b", b)):
        with block_scorer(tiny, adapter, corpus, **kw) as score:
            alone[name] = score(range(6))
    assert abs(alone["a"] - alone["b"]).max() > 1e-4, "the two adapters must differ for this test to mean anything"
    base_before = evaluate(tiny, None, corpus, block_size=32, max_blocks=6).loss

    with adapter_scorers(tiny, a.lora, corpus, **kw) as scorer_for:
        assert scorer_for(a)(range(6)) == pytest.approx(alone["a"], rel=1e-6)
        # adapters still decode and fit-check against the base while its LoRA layers are attached
        b = Adapter.from_bytes(b.to_bytes(), tiny)
        assert scorer_for(b)(range(6)) == pytest.approx(alone["b"], rel=1e-6)
        with pytest.raises(AdapterMismatch, match="layout"):
            scorer_for(other_rank)
        assert scorer_for(a)(range(6)) == pytest.approx(alone["a"], rel=1e-6), "a refused adapter leaves the slot usable"

    assert not any("lora" in name for name, _ in tiny.model.named_modules()), "the LoRA layers are removed on exit"
    assert evaluate(tiny, None, corpus, block_size=32, max_blocks=6).loss == pytest.approx(base_before, rel=1e-7)


def test_fresh_adapter_changes_nothing(tiny: BaseModel, corpus: CodeCorpus) -> None:
    # lr so small that the B matrices (initialised to zero) stay ~0: output equals the base's.
    adapter = train_lora(tiny, corpus, TrainConfig(steps=1, batch_size=1, seq_len=32, lr=1e-12, progress=False))
    plain = evaluate(tiny, None, corpus, block_size=32, max_blocks=4)
    with_adapter = evaluate(tiny, adapter, corpus, block_size=32, max_blocks=4)
    assert with_adapter.loss == pytest.approx(plain.loss, abs=1e-5)


def test_greedy_generation_is_deterministic_and_stops(tiny: BaseModel) -> None:
    prompt = "def add(a, b):\n    "
    first = generate(tiny, prompt, max_new_tokens=24)
    assert first == generate(tiny, prompt, max_new_tokens=24)
    assert len(first) == 1 and first[0]
    stopped = generate(tiny, prompt, max_new_tokens=24, stop=["\n"])[0]
    assert "\n" not in stopped and first[0].startswith(stopped)


def test_sampling_gives_several_seeded_completions(tiny: BaseModel) -> None:
    a = generate(tiny, "import ", max_new_tokens=8, temperature=1.0, top_p=0.9, num_samples=3, seed=7)
    assert len(a) == 3
    assert a == generate(tiny, "import ", max_new_tokens=8, temperature=1.0, top_p=0.9, num_samples=3, seed=7)


def test_greedy_sampling_of_many_is_refused(tiny: BaseModel) -> None:
    with pytest.raises(TrainingError, match="temperature > 0"):
        generate(tiny, "x", num_samples=2)
