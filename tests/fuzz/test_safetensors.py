"""The safetensors reader on hostile bytes: only ``TensorFormatError`` ever comes out.

Random bytes, any header length, JSON garbage for a header, entries with wrong dtypes, shapes and
offsets, truncated and padded files; what does parse is exactly what was written (NaN and inf
included: the format carries them, the adapter loader refuses them).
"""

from __future__ import annotations

import json
import struct

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from codecoop.errors import TensorFormatError
from codecoop.tensors import DTYPES, MAX_HEADER_BYTES, from_safetensors, to_safetensors

from .support import DEEP, LARGE, MEDIUM, bounded

#: Any JSON value, nested a few levels (floats include NaN and infinities).
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=24,
)
TAGS = st.sampled_from(sorted(DTYPES)) | st.sampled_from(["F8", "f32", "U16", "C64", "", "OBJECT"]) | JSON
DIMS = st.integers(0, 4) | st.integers(-3, -1) | st.integers(2**30, 2**80) | JSON
SHAPES = st.lists(DIMS, max_size=4) | JSON
OFFSETS = st.lists(st.integers(-8, 64) | st.integers(2**62, 2**70) | JSON, min_size=0, max_size=3) | JSON


def framed(header: bytes, body: bytes = b"", length: int | None = None) -> bytes:
    """A file: 8-byte little-endian header length (the true one unless given), header, body."""
    return struct.pack("<Q", len(header) if length is None else length) + header + body


def parse(data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
    """``from_safetensors``; ``None`` when it refused the bytes with the one error it may raise."""
    try:
        return from_safetensors(data)
    except TensorFormatError:
        return None


@st.composite
def tensors(draw: st.DrawFn) -> dict[str, torch.Tensor]:
    """A few small tensors of any supported dtype, NaN and infinities among the float values."""
    out = {}
    for name in draw(st.lists(st.text(min_size=1, max_size=6).filter(lambda n: n != "__metadata__"), max_size=4, unique=True)):
        dtype = DTYPES[draw(st.sampled_from(sorted(DTYPES)))]
        shape = draw(st.lists(st.integers(0, 3), max_size=3))
        n = 1
        for d in shape:
            n *= d
        raw = draw(
            st.binary(min_size=n * torch.empty((), dtype=dtype).element_size(), max_size=n * torch.empty((), dtype=dtype).element_size())
        )
        t = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype).reshape(shape) if raw else torch.empty(shape, dtype=dtype)
        if dtype.is_floating_point and t.numel():
            t.view(-1)[0] = draw(st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.0]))
        out[name] = t
    return out


@bounded(LARGE)
@given(st.binary(max_size=2048))
def test_random_bytes_never_escape_as_anything_but_TensorFormatError(data: bytes) -> None:
    parse(data)


@bounded(MEDIUM)
@given(st.integers(0, 2**64 - 1), st.binary(max_size=512))
def test_any_header_length_is_refused_or_read_never_buffered_past_the_input(length: int, rest: bytes) -> None:
    result = parse(struct.pack("<Q", length) + rest)
    if length > len(rest):
        assert result is None


@bounded(LARGE)
@given(JSON, st.binary(max_size=64))
def test_any_json_value_as_a_header_gives_a_typed_refusal_or_a_file(header: object, body: bytes) -> None:
    parse(framed(json.dumps(header).encode(), body))


@bounded(MEDIUM)
@given(st.text(max_size=200), st.binary(max_size=64))
def test_header_text_garbage_gives_a_typed_refusal(text: str, body: bytes) -> None:
    parse(framed(text.encode("utf-8", "surrogatepass"), body))


@bounded(LARGE)
@given(
    st.dictionaries(st.text(max_size=6), st.fixed_dictionaries({"dtype": TAGS, "shape": SHAPES, "data_offsets": OFFSETS}), max_size=3),
    st.binary(max_size=96),
)
def test_entries_with_wrong_dtypes_shapes_and_offsets_are_refused_with_TensorFormatError(header: dict, body: bytes) -> None:
    result = parse(framed(json.dumps(header).encode(), body))
    if result is not None:  # whatever parsed must describe the body exactly
        assert sum(t.numel() * t.element_size() for t in result[0].values()) == len(body)


@bounded(MEDIUM)
@given(tensors(), st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3))
def test_a_written_file_reads_back_bit_for_bit_nan_and_inf_included(written: dict, metadata: dict) -> None:
    data = to_safetensors(written, metadata)
    got, meta = from_safetensors(data)
    assert meta == metadata and list(got) == sorted(written)
    for name, t in written.items():
        assert got[name].dtype == t.dtype and got[name].shape == t.shape
        assert got[name].reshape(-1).view(torch.uint8).equal(t.contiguous().reshape(-1).view(torch.uint8))


@bounded(MEDIUM)
@given(tensors(), st.data())
def test_a_truncated_or_padded_file_is_refused_never_read_in_part(written: dict, data: st.DataObject) -> None:
    blob = to_safetensors(written, {"k": "v"})
    cut = data.draw(st.integers(0, len(blob) - 1))
    assert parse(blob[:cut]) is None
    assert parse(blob + data.draw(st.binary(min_size=1, max_size=16))) is None


@bounded(MEDIUM)
@given(tensors(), st.data())
def test_flipped_bytes_in_a_valid_file_never_escape(written: dict, data: st.DataObject) -> None:
    blob = bytearray(to_safetensors(written, {"format": "x"}))
    for _ in range(data.draw(st.integers(1, 4))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    parse(bytes(blob))


# ---------------------------------------------------------------------- regressions (bugs fuzzing found)


@pytest.mark.parametrize(
    "header, body",
    [
        (b"deep", b""),  # RecursionError escaped
        (b'{"a":' + b"9" * 5000 + b"}", b""),  # ValueError (integer digit limit) escaped
        (b'{"a":{"dtype":[],"shape":[1],"data_offsets":[0,1]}}', b"x"),  # TypeError (unhashable dtype) escaped
        (b'{"a":{"dtype":"F32","shape":[0,1180591620717411303424],"data_offsets":[0,0]}}', b""),  # TypeError from torch
        (b'{"a":{"dtype":"F32","shape":[0,4611686018427387904,4],"data_offsets":[0,0]}}', b""),  # RuntimeError (strides)
        (b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x"),
        (b'{"__metadata__":[]}', b""),  # was read as "no metadata"
    ],
    ids=["deep-nesting", "5000-digit-int", "unhashable-dtype", "dim-past-int64", "stride-overflow", "repeated-name", "metadata-list"],
)
def test_headers_that_escaped_or_passed_before_are_refused_with_TensorFormatError(header: bytes, body: bytes) -> None:
    if header == b"deep":  # past the default recursion limit (1000); a list if a test raised the limit
        header = b"[" * DEEP + b"]" * DEEP
    with pytest.raises(TensorFormatError):
        from_safetensors(framed(header, body))


@pytest.mark.parametrize("length", [MAX_HEADER_BYTES + 1, 2**63, 2**64 - 1])
def test_a_huge_header_length_is_refused_before_anything_is_parsed(length: int) -> None:
    with pytest.raises(TensorFormatError, match="exceeds the limit"):
        from_safetensors(framed(b"{}", b"", length))
