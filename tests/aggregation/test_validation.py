"""Updates are refused before any arithmetic, with an error that names them."""

from __future__ import annotations

import pytest
import torch

from codecoop.aggregation import STRATEGIES, Update, get_strategy, to_safetensors, validate_updates
from codecoop.errors import AggregationError, InvalidUpdate

from .data import make_updates


def poisoned(value: float) -> list[Update]:
    ups = make_updates(5, seed=70)
    bad = ups[3]
    tensors = {k: v.clone() for k, v in bad.tensors.items()}
    tensors["layers.1.v_proj.lora_B.weight"][7, 2] = value
    ups[3] = Update(bad.cid, tensors, bad.num_samples)
    return ups


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_non_finite_update_is_refused_by_every_strategy_naming_it(name: str, value: float) -> None:
    ups = poisoned(value)
    base = {k: torch.zeros_like(v) for k, v in ups[0].tensors.items()}
    with pytest.raises(InvalidUpdate, match="NaN or Inf") as info:
        get_strategy(name, f=1).aggregate(ups, base=base) if "krum" in name else get_strategy(name).aggregate(ups, base=base)
    assert info.value.update == ups[3].cid
    assert ups[3].cid in str(info.value)


def test_finite_check_does_not_mistake_an_overflowing_sum_for_inf() -> None:
    big = torch.full((4, 40), 3e38)
    ups = [Update(f"c{i}", {"w": big.clone()}, 1) for i in range(3)]
    assert validate_updates(ups)[0].cid == "c0"


def test_missing_tensor_is_refused_naming_the_update() -> None:
    ups = make_updates(4, seed=71)
    odd = ups[2]
    tensors = dict(odd.tensors)
    del tensors["layers.0.q_proj.lora_A.weight"]
    ups[2] = Update(odd.cid, tensors, odd.num_samples)
    with pytest.raises(InvalidUpdate, match="different tensor names") as info:
        validate_updates(ups, base=ups[0].tensors if ups[0].cid != odd.cid else ups[1].tensors)
    assert info.value.update == odd.cid


def test_wrong_shape_is_refused_naming_the_update() -> None:
    ups = make_updates(4, seed=72)
    odd = ups[1]
    tensors = dict(odd.tensors) | {"layers.0.q_proj.lora_A.weight": torch.zeros(8, 40)}
    ups[1] = Update(odd.cid, tensors, odd.num_samples)
    base = make_updates(1, seed=0)[0].tensors
    with pytest.raises(InvalidUpdate, match="shape") as info:
        validate_updates(ups, base=base)
    assert info.value.update == odd.cid


def test_wrong_dtype_is_refused_naming_the_update() -> None:
    ups = make_updates(4, seed=73)
    odd = ups[0]
    tensors = {k: v.double() for k, v in odd.tensors.items()}
    ups[0] = Update(odd.cid, tensors, odd.num_samples)
    base = make_updates(1, seed=0)[0].tensors
    with pytest.raises(InvalidUpdate, match="dtype") as info:
        validate_updates(ups, base=base)
    assert info.value.update == odd.cid


def test_integer_tensors_are_refused() -> None:
    with pytest.raises(InvalidUpdate, match="floating point"):
        validate_updates([Update("c", {"w": torch.ones(3, dtype=torch.int64)}, 1)])


def test_duplicate_cid_is_refused() -> None:
    u = make_updates(1)[0]
    with pytest.raises(InvalidUpdate, match="twice"):
        validate_updates([u, u])


@pytest.mark.parametrize("samples", [0, -3, True, 2.5])
def test_sample_count_must_be_a_positive_integer(samples: object) -> None:
    u = make_updates(1)[0]
    with pytest.raises(InvalidUpdate, match="num_samples"):
        validate_updates([Update(u.cid, u.tensors, samples)])  # type: ignore[arg-type]


def test_no_updates_is_an_aggregation_error() -> None:
    with pytest.raises(AggregationError, match="at least one"):
        get_strategy("fedavg").aggregate([])


def test_updates_are_returned_in_cid_order() -> None:
    ups = make_updates(6, seed=74)
    assert [u.cid for u in validate_updates(ups)] == sorted(u.cid for u in ups)


def test_update_from_bytes_round_trips_and_names_bad_bytes() -> None:
    u = make_updates(1, seed=75)[0]
    back = Update.from_bytes(u.cid, to_safetensors(u.tensors), u.num_samples)
    assert all(torch.equal(back.tensors[k], u.tensors[k]) for k in u.tensors)
    with pytest.raises(InvalidUpdate, match="bafyjunk") as info:
        Update.from_bytes("bafyjunk", b"\x00" * 7, 1)
    assert info.value.update == "bafyjunk"
