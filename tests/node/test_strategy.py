"""The chain's aggregation strategy string, as the node reads it: one parser, so every node builds the same strategy."""

from __future__ import annotations

import pytest

from codecoop.aggregation.spec import parse_strategy
from codecoop.errors import ConfigError


def test_a_bare_name_has_no_parameters():
    assert parse_strategy("FedAvg").name == "fedavg"
    assert parse_strategy("fedavg").params == ()


def test_parameters_are_typed_and_sorted():
    spec = parse_strategy("fedadam: eta=0.05, clip_norm=2, beta_1=0.9")
    assert spec.params == (("beta_1", 0.9), ("clip_norm", 2), ("eta", 0.05))
    assert str(spec) == "fedadam:beta_1=0.9,clip_norm=2,eta=0.05"


def test_the_spec_builds_the_named_strategy():
    strategy = parse_strategy("fedtrimmedavg:beta=0.2").build()
    assert strategy.name == "fedtrimmedavg"


@pytest.mark.parametrize("text", ["", ":beta=1", "fedavg:beta", "fedavg:a=1,a=2"])
def test_malformed_strings_are_refused(text):
    with pytest.raises(ConfigError):
        parse_strategy(text)


def test_an_unknown_parameter_is_refused_when_built():
    with pytest.raises(ConfigError, match="no parameter"):
        parse_strategy("fedavg:beta=0.2").build()
