"""The adapter loader on hostile bytes: ``TensorFormatError`` or ``AdapterMismatch``, nothing else.

Adapters are checked against the real ``tiny`` base: wrong names, shapes and dtypes, NaN and inf,
garbage metadata, flipped and truncated bytes. A pickle posing as an adapter (``torch.save`` output
or a raw pickle whose ``__reduce__`` would create a file) is refused without being run. A save that
fails midway (the disk full) leaves no file behind and the previous one intact.
"""

from __future__ import annotations

import io
import json
import pathlib
import pickle

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from codecoop.errors import AdapterMismatch, TensorFormatError, TrainingError
from codecoop.storage import LocalStore
from codecoop.tensors import from_safetensors, to_safetensors
from codecoop.training import Adapter, BaseModel, LoraSpec
from codecoop.training.adapter import expected_lora_shapes

from .support import DEEP, LARGE, MEDIUM, SMALL, bounded, file_size_limit
from .test_safetensors import JSON

SPEC = LoraSpec(r=4, alpha=8, dropout=0.05, target_modules=("q_proj", "v_proj"))
REFUSALS = (TensorFormatError, AdapterMismatch)


@pytest.fixture(scope="module")
def valid(tiny: BaseModel) -> Adapter:
    """An adapter that fits ``tiny`` exactly (random small LoRA weights, no training needed)."""
    g = torch.Generator().manual_seed(0)
    tensors = {n: torch.randn(s, generator=g) * 0.01 for n, s in expected_lora_shapes(tiny, SPEC).items()}
    return Adapter(tensors, tiny.model_id, tiny.weights_hash, SPEC, {"samples": 12})


def load(data: bytes, base: BaseModel | None) -> Adapter | None:
    """``Adapter.from_bytes``; ``None`` when it refused the bytes with one of its two typed errors."""
    try:
        return Adapter.from_bytes(data, base)
    except REFUSALS:
        return None


def assert_fits(adapter: Adapter, tiny: BaseModel) -> None:
    """What a loaded adapter guarantees: exactly the base's LoRA layout, finite fp32 values."""
    expected = expected_lora_shapes(tiny, adapter.lora)
    assert {n: tuple(t.shape) for n, t in adapter.tensors.items()} == expected
    assert all(t.dtype == torch.float32 and bool(torch.isfinite(t).all()) for t in adapter.tensors.values())


@bounded(LARGE)
@given(st.binary(max_size=4096))
def test_random_bytes_are_refused_with_a_typed_error(tiny: BaseModel, data: bytes) -> None:
    assert load(data, tiny) is None
    assert load(data, None) is None


@bounded(MEDIUM)
@given(st.data())
def test_flipped_bytes_in_a_real_adapter_give_a_fitting_adapter_or_a_typed_refusal(tiny, valid, data) -> None:
    blob = bytearray(valid.to_bytes(torch.float16))
    header_end = 8 + int.from_bytes(blob[:8], "little")
    for _ in range(data.draw(st.integers(1, 6))):
        # Half the flips land in the header, where the structure is.
        end = data.draw(st.sampled_from([len(blob), header_end]))
        blob[data.draw(st.integers(0, end - 1))] = data.draw(st.integers(0, 255))
    loaded = load(bytes(blob), tiny)
    if loaded is not None:
        assert_fits(loaded, tiny)


@bounded(MEDIUM)
@given(st.data())
def test_a_truncated_adapter_is_refused(tiny, valid, data) -> None:
    blob = valid.to_bytes(torch.float16)
    with pytest.raises(TensorFormatError):
        Adapter.from_bytes(blob[: data.draw(st.integers(0, len(blob) - 1))], tiny)


@bounded(LARGE)
@given(
    st.dictionaries(
        st.sampled_from(["format", "format_version", "base_model_id", "base_weights_sha256", "lora", "training", "other"]),
        st.text(max_size=40) | JSON.map(json.dumps),
        max_size=4,
    ),
    st.sets(st.sampled_from(["format", "format_version", "lora"]), max_size=2),
)
def test_garbage_metadata_is_refused_with_a_typed_error(tiny, valid, changes: dict, dropped: set) -> None:
    meta = {**valid.metadata(), **changes}
    for key in dropped:
        meta.pop(key, None)
    loaded = load(to_safetensors(valid.tensors, meta), tiny)
    if loaded is not None:
        assert_fits(loaded, tiny)


@st.composite
def lora_tensors(draw: st.DrawFn, expected: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """The base's LoRA tensor set, bent: names dropped or invented, shapes and dtypes changed, NaN/inf."""
    names = [n for n in expected if draw(st.integers(0, 9)) > 0]
    names += draw(st.lists(st.text(min_size=1, max_size=12).filter(lambda n: n != "__metadata__"), max_size=2))
    out = {}
    for name in names:
        shape = expected.get(name, (2, 2))
        if draw(st.integers(0, 5)) == 0:
            shape = tuple(draw(st.lists(st.integers(0, 9), max_size=3)))
        dtype = draw(
            st.sampled_from([torch.float32] * 4 + [torch.float16, torch.bfloat16, torch.float64, torch.int32, torch.uint8, torch.bool])
        )
        t = torch.zeros(shape, dtype=dtype)
        if t.numel() and dtype.is_floating_point and draw(st.integers(0, 5)) == 0:
            t.view(-1)[draw(st.integers(0, t.numel() - 1))] = draw(st.sampled_from([float("nan"), float("inf"), float("-inf")]))
        out[name] = t
    return out


@bounded(MEDIUM)
@given(st.data())
def test_wrong_names_shapes_dtypes_and_non_finite_values_are_refused(tiny, valid, data) -> None:
    tensors = data.draw(lora_tensors(expected_lora_shapes(tiny, SPEC)))
    loaded = load(to_safetensors(tensors, valid.metadata()), tiny)
    if loaded is not None:
        assert_fits(loaded, tiny)


def test_a_single_nan_or_inf_is_refused_against_the_base(tiny, valid) -> None:
    for bad in (float("nan"), float("inf")):
        name = sorted(valid.tensors)[1]
        t = valid.tensors[name].clone()
        t[0, 0] = bad
        with pytest.raises(AdapterMismatch, match="NaN or infinite"):
            Adapter.from_bytes(to_safetensors({**valid.tensors, name: t}, valid.metadata()), tiny)


# ---------------------------------------------------------------------- regressions (bugs fuzzing found)


@pytest.mark.parametrize(
    "key, value",
    [
        ("lora", '{"alpha":8,"dropout":0.05,"r":1e400,"target_modules":["q_proj"]}'),  # OverflowError escaped
        ("training", "deep"),  # RecursionError escaped
        ("lora", '{"alpha":8,"dropout":NaN,"r":4,"target_modules":["q_proj","v_proj"]}'),  # peft would raise later
        ("lora", '{"alpha":8,"dropout":1.5,"r":4,"target_modules":["q_proj","v_proj"]}'),
    ],
    ids=["infinite-r", "deep-training-json", "nan-dropout", "dropout-over-one"],
)
def test_metadata_that_escaped_or_passed_before_is_refused_with_TensorFormatError(tiny, valid, key, value) -> None:
    if value == "deep":  # past the default recursion limit (1000); a list if a test raised the limit
        value = "[" * DEEP + "]" * DEEP
    with pytest.raises(TensorFormatError, match="metadata"):
        Adapter.from_bytes(to_safetensors(valid.tensors, {**valid.metadata(), key: value}), tiny)


# ---------------------------------------------------------------------- pickles posing as adapters


class _Touch:
    """Unpickling this creates ``path``: the payload a hostile peer would hide in a model file."""

    def __init__(self, path: pathlib.Path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def _payloads(marker: pathlib.Path) -> dict[str, bytes]:
    torch_file = io.BytesIO()
    torch.save({"base_model.model.x.lora_A.weight": torch.zeros(2, 2), "hook": _Touch(marker)}, torch_file)
    return {
        "torch.save": torch_file.getvalue(),
        "raw pickle": pickle.dumps(_Touch(marker), protocol=2),
        "raw pickle protocol 0": pickle.dumps(_Touch(marker), protocol=0),
    }


def test_the_pickle_payloads_are_live(tmp_path) -> None:
    # The control for the next test: opened the unsafe way, each payload does create its file.
    for kind, blob in _payloads(tmp_path / "control").items():
        (tmp_path / "control").unlink(missing_ok=True)
        if kind == "torch.save":
            torch.load(io.BytesIO(blob), weights_only=False)
        else:
            pickle.loads(blob)  # noqa: S301 (the point of the control)
        assert (tmp_path / "control").exists(), kind


@pytest.mark.parametrize("kind", ["torch.save", "raw pickle", "raw pickle protocol 0"])
def test_a_pickle_posing_as_an_adapter_is_refused_without_being_run(tiny, tmp_path, kind) -> None:
    marker = tmp_path / "executed"
    blob = _payloads(marker)[kind]
    with pytest.raises(TensorFormatError):
        Adapter.from_bytes(blob, tiny)
    with pytest.raises(TensorFormatError):
        from_safetensors(blob)
    (tmp_path / "update.safetensors").write_bytes(blob)
    with pytest.raises(TensorFormatError):
        Adapter.load(tmp_path / "update.safetensors", None)
    store = LocalStore(tmp_path / "store", durable=False)
    with pytest.raises(TensorFormatError):
        Adapter.from_bytes(store.get(store.put(blob)), None)  # as a fetched update arrives
    assert not marker.exists()


def test_a_pickle_inside_a_well_formed_file_stays_inert_bytes(tiny, tmp_path) -> None:
    marker = tmp_path / "executed"
    raw = torch.frombuffer(bytearray(pickle.dumps(_Touch(marker))), dtype=torch.uint8)
    blob = to_safetensors({"payload": raw}, {"format": "codecoop-lora"})
    tensors, _ = from_safetensors(blob)
    assert bytes(tensors["payload"].numpy()) == bytes(raw.numpy())
    with pytest.raises(REFUSALS):
        Adapter.from_bytes(blob, tiny)
    assert not marker.exists()


# ---------------------------------------------------------------------- no partial writes


def test_a_save_that_fails_midway_leaves_no_file_and_the_old_one_intact(tmp_path, valid) -> None:
    target = tmp_path / "adapters" / "a.safetensors"
    valid.save(target, torch.float16)
    before = target.read_bytes()
    with file_size_limit(len(before) + 1024), pytest.raises(TrainingError, match="cannot write the adapter"):
        valid.save(target, torch.float32)  # twice the bytes: the disk "fills" halfway
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.safetensors"]
    with file_size_limit(1024), pytest.raises(TrainingError):
        valid.save(tmp_path / "adapters" / "b.safetensors")
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.safetensors"]


@pytest.mark.parametrize("where", ["missing", "directory"])
def test_loading_an_unreadable_path_is_a_typed_error(tmp_path, where) -> None:
    path = tmp_path / "x.safetensors"
    if where == "directory":
        path.mkdir()
    with pytest.raises(TrainingError, match="cannot read the adapter file"):
        Adapter.load(path, None)


@bounded(SMALL)
@given(st.binary(max_size=512))
def test_loading_any_file_gives_an_adapter_or_a_typed_error(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz-load.safetensors"
    path.write_bytes(data)
    try:
        Adapter.load(path, None)
    except REFUSALS:
        pass
