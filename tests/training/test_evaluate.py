"""Evaluation metrics and the generation helper."""

from __future__ import annotations

import math

import pytest

from codecoop.errors import TrainingError
from codecoop.training import BaseModel, CodeCorpus, TrainConfig, block_scorer, evaluate, generate, train_lora


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
