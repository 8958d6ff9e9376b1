"""`codecoop sim --processes` applies each option or refuses it with the reason; nothing is ignored silently."""

from __future__ import annotations

import pytest

from codecoop.cli import main
from codecoop.cli.sim import NODE_SETTINGS_WITH_PROCESSES, NOT_WITH_PROCESSES


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--partition", "uniform"], "--partition"),
        (["--data", "."], "--data"),
        (["--byzantine", "1:noise"], "--byzantine"),
        (["--baselines"], "--baselines"),
        (["--out", "elsewhere"], "--out"),
        (["--transport", "in-process"], "--transport"),
    ],
)
def test_an_option_the_devnet_cannot_honour_is_refused_before_anything_starts(argv, option, capsys, monkeypatch):
    import codecoop.sim.devnet as devnet

    monkeypatch.setattr(devnet, "run_devnet", lambda *a, **k: pytest.fail("the devnet must not start"))
    assert main(["sim", "--processes", *argv]) != 0
    err = capsys.readouterr().err
    assert "with --processes these options cannot apply" in err and option in err


def test_options_the_devnet_honours_reach_it_or_every_nodes_configuration(monkeypatch, capsys):
    import codecoop.sim.devnet as devnet

    seen = {}

    def fake_run(cfg, log):
        seen["cfg"] = cfg
        return devnet.DevnetResult(1, 0.0, "w", ("bafk",), {})

    monkeypatch.setattr(devnet, "run_devnet", fake_run)
    argv = ["sim", "--processes", "--orgs", "4", "--steps", "3", "--lr", "0.01", "--seed", "7", "--min-improvement", "5"]
    assert main([*argv, "--transport", "libp2p"]) == 0
    cfg = seen["cfg"]
    assert (cfg.orgs, cfg.steps) == (4, 3)
    assert set(cfg.node_overrides) == {"training.lr=0.01", "training.seed=7", "node.min_improvement=5"}


def test_every_sim_option_is_either_applied_or_refused_with_processes():
    import inspect

    from codecoop.cli.sim import sim

    devnet_fields = {"orgs", "rounds", "steps", "model", "strategy", "workdir"}
    handled = devnet_fields | set(NODE_SETTINGS_WITH_PROCESSES) | set(NOT_WITH_PROCESSES) | {"transport", "processes", "ctx"}
    assert set(inspect.signature(sim).parameters) == handled
