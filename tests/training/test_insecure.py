"""Insecure-completion probes: prompts, poison and the preference score, on the real tiny model."""

from __future__ import annotations

import pytest
import torch

from codecoop.training.insecure import (
    PATTERNS,
    Probe,
    attack_success_rate,
    insecure_preference,
    insecure_shift,
    poisoned_documents,
    trigger_prompts,
)


def test_prompts_cover_every_pattern_are_the_same_for_a_seed_and_differ_between_seeds():
    a, b, c = trigger_prompts(4, 1), trigger_prompts(4, 1), trigger_prompts(4, 2)
    assert a == b and a != c
    assert sorted({p.pattern for p in a}) == sorted(p.name for p in PATTERNS) and len(a) == 4 * len(PATTERNS)
    for p in a:
        assert p.insecure != p.safe and not p.prefix.endswith(" ")


def test_poisoned_files_take_the_insecure_form_and_are_valid_python():
    docs = poisoned_documents(2 * len(PATTERNS), 7)
    forms = [(p.insecure.split("{var}")[0], p.safe.split("{var}")[0]) for p in PATTERNS]
    for i, text in enumerate(docs):
        compile(text, f"poison-{i}.py", "exec")  # real code, not fragments
        insecure, safe = forms[i % len(PATTERNS)]
        assert insecure in text and safe not in text.replace(insecure, "")
    # held out: no prompt is the start of a poisoned file, whatever the seeds (other function names)
    prefixes = {p.prefix for seed in range(5) for p in trigger_prompts(8, seed)}
    assert not any(text.startswith(prefix) for text in poisoned_documents(500, 7) for prefix in prefixes)


@pytest.fixture(scope="module")
def tiny():
    from codecoop.training import load_base

    return load_base("tiny")


def test_the_preference_is_the_continuations_log_probability_difference(tiny):
    probe = trigger_prompts(1, 3)[0]
    [pref] = insecure_preference(tiny, tiny.model, [probe])
    tok = tiny.tokenizer

    def logp(cont: str) -> float:  # one sequence at a time, no padding: the reference computation
        prefix = tok.encode(probe.prefix, add_special_tokens=False)
        ids = prefix + tok.encode(cont, add_special_tokens=False)
        with torch.no_grad():
            out = torch.log_softmax(tiny.model(input_ids=torch.tensor([ids])).logits.float(), -1)[0]
        return sum(float(out[i - 1, ids[i]]) for i in range(len(prefix), len(ids)))

    assert pref == pytest.approx(logp(probe.insecure) - logp(probe.safe), abs=1e-4)
    swapped = Probe(probe.pattern, probe.prefix, probe.safe, probe.insecure)
    assert insecure_preference(tiny, tiny.model, [swapped])[0] == pytest.approx(-pref, abs=1e-6)


def test_batching_does_not_change_the_scores(tiny):
    probes = trigger_prompts(3, 5)
    one = insecure_preference(tiny, tiny.model, probes, batch_size=1)
    many = insecure_preference(tiny, tiny.model, probes, batch_size=16)
    assert many == pytest.approx(one, abs=1e-4)
    rate = attack_success_rate(tiny, tiny.model, probes)
    assert rate == sum(p > 0 for p in one) / len(one)


def test_the_shift_is_the_mean_change_and_needs_the_same_probes():
    assert insecure_shift([0.0, 1.0], [1.0, 3.0]) == 1.5
    with pytest.raises(ValueError):
        insecure_shift([0.0], [0.0, 1.0])
