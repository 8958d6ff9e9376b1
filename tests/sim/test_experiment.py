"""``codecoop experiment`` in small: every setting on tiny, a few steps, with its tables and files."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from codecoop.cli import main
from codecoop.errors import ConfigError
from codecoop.sim.experiment import ExperimentConfig, parse_strategies, run_experiment

ORGS = 3
ROUNDS, STEPS = 1, 2
ORDERS = 2

#: Every setting, two strategies and two orders, without the memorization audit (a few seconds).
CONFIG = ExperimentConfig(
    orgs=ORGS,
    rounds=ROUNDS,
    steps=STEPS,
    partitions=("uniform",),
    strategies=parse_strategies("fedavg,fedprox"),
    orders=ORDERS,
    memorization_prompts=0,
    files=9,
    shared_files=3,
    batch_size=2,
    seq_len=32,
    eval_blocks=2,
)
#: The same with the memorization audit of every model (about 40 s here: 33 audits).
AUDITED = replace(CONFIG, memorization_prompts=2, memorization_tokens=24)

EVERY_ROW = [
    ("base", ""),
    ("centralized", ""),
    ("single", "org-0"),
    ("single", "org-1"),
    ("single", "org-2"),
    ("federated", "fedavg"),
    ("federated", "fedprox"),
    ("incremental", "org-0>org-1>org-2"),
    ("incremental", "org-1>org-2>org-0"),
]


def _run(config, out):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the machine is shared: oversubscribed threads are several times slower
    try:
        return run_experiment(config, out, command="codecoop experiment (test)")
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiment")
    return _run(CONFIG, out), out


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    out = tmp_path_factory.mktemp("audited")
    return _run(AUDITED, out), out


def test_every_setting_strategy_and_order_has_a_row(experiment):
    result, _ = experiment
    assert [(r.setting, r.variant) for r in result.runs] == EVERY_ROW


def test_metrics_are_finite_on_the_union_and_per_organisation(experiment):
    result, _ = experiment
    for r in result.runs:
        assert math.isfinite(r.validation.loss) and r.validation.perplexity > 1 and 0 <= r.validation.token_accuracy <= 1
        assert set(r.per_org) == {"org-0", "org-1", "org-2"}
        assert r.validation.n_tokens == sum(q.n_tokens for q in r.per_org.values())
        assert not r.memorization and r.duplicated is None  # audit switched off


@pytest.mark.slow
def test_every_model_is_audited_against_each_organisations_own_files(audited):
    result, _ = audited
    assert [(r.setting, r.variant) for r in result.runs] == EVERY_ROW
    for r in result.runs:
        expected = {r.variant} if r.setting == "single" else {"org-0", "org-1", "org-2"}
        assert set(r.memorization) == expected
        assert all(0.0 <= m.ratio <= 1.0 and m.generated_lines > 0 and m.from_shared <= m.memorized_lines for m in r.memorization.values())
        has_dup = r.setting in ("base", "centralized", "federated", "incremental")
        assert (r.duplicated is not None and r.unique is not None) == has_dup


@pytest.mark.slow
def test_the_audited_report_states_every_finding_and_draws_the_memorization_plots(audited):
    result, out = audited
    for name in ("memorization.png", "incremental_positions.png", "duplicated_vs_unique.png"):
        assert (out / name).stat().st_size > 0, name
    data = json.loads((out / "results.json").read_text())
    findings = data["findings"]
    assert all(isinstance(findings[k]["reproduced"], bool) for k in "abcd")
    assert findings["d"]["audited"] == ORDERS and len(findings["d"]["by_position"]) == ORGS
    assert findings["c"]["audited"] == 1 + 2 + ORDERS  # centralized, 2 strategies, the orders
    readme = (out / "README.md").read_text()
    assert readme.count("| uniform | incremental |") == ORDERS  # the memorization-per-organisation table
    assert "- (d) in incremental training" in readme


def test_compute_is_matched_as_the_report_states(experiment):
    result, _ = experiment
    budget = ROUNDS * ORGS * STEPS
    tokens = CONFIG.batch_size * CONFIG.seq_len
    for r in result.runs:
        expected = {"base": 0, "single": ROUNDS * STEPS}.get(r.setting, budget)
        assert r.steps == expected, r.label
        assert r.tokens == expected * tokens
    singles = [r for r in result.runs if r.setting == "single"]
    assert sum(r.steps for r in singles) == budget


def test_training_changes_the_model_and_settings_differ(experiment):
    result, _ = experiment
    base = result.run("uniform", "base").validation.loss
    trained = [r.validation.loss for r in result.runs if r.setting != "base"]
    assert all(loss != base for loss in trained)
    assert result.run("uniform", "federated", "fedavg").validation.loss != result.run("uniform", "centralized").validation.loss
    # fedprox differs from fedavg only by the proximal term, which must have changed something
    assert result.run("uniform", "federated", "fedprox").validation.loss != result.run("uniform", "federated", "fedavg").validation.loss


def test_planted_files_are_in_exactly_the_stated_number_of_organisations(experiment):
    result, _ = experiment
    orgs = result.data["uniform"]
    assert sum(o.shared_files for o in orgs) == CONFIG.shared_files * CONFIG.shared_copies
    assert all(0 < o.shared_lines < o.train_lines for o in orgs)


def test_the_output_files_hold_every_run_and_the_command(experiment):
    result, out = experiment
    for name in ("README.md", "results.json", "quality.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    data = json.loads((out / "results.json").read_text())
    assert len(data["runs"]) == len(result.runs)
    assert data["compute"]["budget_steps"] == ROUNDS * ORGS * STEPS
    assert isinstance(data["findings"]["a"]["reproduced"], bool)
    readme = (out / "README.md").read_text()
    assert "codecoop experiment (test)" in readme
    assert readme.count("| incremental |") == ORDERS


def test_a_rerun_reuses_the_cache_and_gives_the_same_numbers(experiment):
    result, out = experiment
    again = run_experiment(CONFIG, out, plots=False)
    assert [r.to_json() for r in again.runs] == [r.to_json() for r in result.runs]
    assert result.invocations[0]["computed"] > 0
    assert [i["computed"] for i in again.invocations] == [result.invocations[0]["computed"], 0]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"partitions": ("label-imbalanced",)}, "unknown partition"),
        ({"settings": ("decentralized",)}, "unknown setting"),
        ({"humaneval": 5}, "tiny"),
        ({"orgs": 1}, "at least 2"),
        ({"orders": 7}, "between 1 and 6"),
        ({"shared_copies": 4}, "--shared-copies"),
    ],
)
def test_bad_configurations_are_refused_with_a_clear_message(changes, message):
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig(**changes)


@pytest.mark.parametrize("text", ["fedbest", "fedprox:mu=0", "fedavg,fedavg", "fedtrimmedavg:gamma=1"])
def test_bad_strategies_are_refused(text):
    with pytest.raises(ConfigError):
        parse_strategies(text)


def test_n_incremental_orders_put_every_organisation_once_in_every_position():
    orders = replace(CONFIG, orders=3).incremental_orders()
    assert orders == [(0, 1, 2), (1, 2, 0), (2, 0, 1)]
    assert all(sorted(o[k] for o in orders) == [0, 1, 2] for k in range(3))
    assert len(replace(CONFIG, orders=None).incremental_orders()) == 6
    assert len(set(replace(CONFIG, orders=6).incremental_orders())) == 6


def test_strategy_parameters_may_contain_commas():
    choices = parse_strategies("fedavg,fedyogi:eta=0.05,tau=0.01,fedprox:mu=0.5")
    assert [c.label for c in choices] == ["fedavg", "fedyogi:eta=0.05,tau=0.01", "fedprox:mu=0.5"]
    assert [c.mu for c in choices] == [0.0, 0.0, 0.5] and choices[2].spec == "fedavg"


def test_the_cli_runs_and_writes_the_report(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(
        [
            "experiment",
            "--quick",
            "--threads",
            "1",
            "--settings",
            "centralized,federated",
            "--strategies",
            "fedavg",
            "--files",
            "6",
            "--shared-files",
            "0",
            "--memorization-prompts",
            "1",
            "--memorization-tokens",
            "16",
            "--steps",
            "1",
            "--seq-len",
            "32",
            "--batch-size",
            "2",
            "--eval-blocks",
            "1",
            "--no-plots",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    readme = (out / "README.md").read_text()
    assert "codecoop experiment --model tiny" in readme and "--out " + str(out) in readme
    assert len(json.loads((out / "results.json").read_text())["runs"]) == 3  # base, centralized, fedavg
    assert "runs in" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--partitions", "everything"], "unknown partition"),
        (["--strategies", "fedbest"], "unknown aggregation strategy"),
        (["--model", "tiny", "--humaneval", "3"], "smollm2-135m"),
        (["--rounds", "0"], "--rounds must be at least 1"),
    ],
)
def test_the_cli_refuses_bad_options_without_a_traceback(args, message, tmp_path, capsys):
    code = main(["experiment", "--quick", "--out", str(tmp_path / "x"), *args])
    captured = capsys.readouterr()
    assert code == 1
    assert message in captured.err and "Traceback" not in captured.err
    assert not (tmp_path / "x").exists()


def test_the_cli_rejects_a_non_number_as_a_usage_error(tmp_path, capsys):
    code = main(["experiment", "--rounds", "many", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "many" in capsys.readouterr().err


def test_finding_a_is_not_readable_when_every_trained_model_is_worse_than_the_base(experiment):
    from codecoop.sim.experiment_report import _findings_text, findings

    result, _ = experiment
    base = result.run("uniform", "base").validation.perplexity

    def worse(r):
        return r if r.setting == "base" else replace(r, validation=replace(r.validation, perplexity=2 * base))

    a = findings(replace(result, runs=[worse(r) for r in result.runs]))["a"]
    assert a["unreadable_partitions"] == ["uniform"] and a["reproduced"] is False
    text = "\n".join(_findings_text({"a": a, "b": {}, "c": {}, "d": {}}, ORGS))
    assert "**not readable** (every trained model is worse than the base in: uniform)" in text
