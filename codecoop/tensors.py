"""Canonical safetensors bytes, written and read without pickle.

The same tensors and metadata always give the same bytes: tensor names sorted, data laid out in
that order with no gaps, the JSON header with sorted keys and no spaces, padded with spaces to a
multiple of 8 bytes. Aggregated models are identified by the CID of these bytes, so every honest
node that aggregates the same inputs must produce exactly them.

Reading validates the whole layout before any tensor is built, and refuses anything else with a
``TensorFormatError``; it never executes or unpickles anything.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping

import torch

from codecoop.errors import TensorFormatError

__all__ = ["DTYPES", "to_safetensors", "from_safetensors", "MAX_HEADER_BYTES"]

#: safetensors dtype tag -> torch dtype (only the ones an adapter may use).
DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_TAGS = {v: k for k, v in DTYPES.items()}

#: A header larger than this is refused before it is parsed (a LoRA header is a few KiB).
MAX_HEADER_BYTES = 16 * 1024 * 1024
#: Bound on the product of a shape's dimensions, zeros counted as 1 (torch's int64 strides).
_MAX_ELEMENTS = 2**63


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object that names a key twice is refused: readers would disagree on which one counts."""
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("a name appears twice in one JSON object")
    return out


def _fits_strides(shape: list[int]) -> bool:
    """Whether torch can lay out ``shape``: even an empty tensor gets int64 strides, to which zero
    dims count as 1. Stops multiplying at the bound, so huge dims cost no big-integer arithmetic."""
    size = 1
    for d in shape:
        size *= max(d, 1) if d < _MAX_ELEMENTS else _MAX_ELEMENTS
        if size >= _MAX_ELEMENTS:
            return False
    return True


def _raw_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().to("cpu").contiguous().reshape(-1)
    if t.numel() == 0:
        return b""
    return t.view(torch.uint8).numpy().tobytes()


def to_safetensors(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> bytes:
    """Serialise ``tensors`` to canonical safetensors bytes.

    Parameters
    ----------
    tensors:
        Name to tensor. Dtypes are kept as they are; convert before calling for a fixed dtype.
    metadata:
        String to string; stored under ``__metadata__`` with sorted keys.
    """
    header: dict[str, object] = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TensorFormatError(f"safetensors metadata must map str to str; got {k!r}: {type(v).__name__}")
        header["__metadata__"] = dict(sorted(metadata.items()))
    chunks: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        if name == "__metadata__":
            raise TensorFormatError("a tensor may not be named '__metadata__'")
        t = tensors[name]
        if t.dtype not in _TAGS:
            raise TensorFormatError(f"tensor {name!r} has dtype {t.dtype}, which safetensors export does not support")
        raw = _raw_bytes(t)
        header[name] = {"dtype": _TAGS[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def from_safetensors(
    data: bytes | bytearray | memoryview, *, max_header: int = MAX_HEADER_BYTES
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Parse safetensors bytes into ``(tensors, metadata)`` after validating the whole layout.

    Raises
    ------
    TensorFormatError
        For anything that is not a complete, gap-free safetensors file with known dtypes.
    """
    view = memoryview(data)
    if len(view) < 8:
        raise TensorFormatError(f"not a safetensors file: {len(view)} bytes is shorter than the 8-byte header length")
    (hlen,) = struct.unpack("<Q", view[:8])
    if hlen > max_header:
        raise TensorFormatError(f"safetensors header of {hlen} bytes exceeds the limit of {max_header} bytes; refusing to parse it")
    if 8 + hlen > len(view):
        raise TensorFormatError(f"truncated safetensors file: header says {hlen} bytes but only {len(view) - 8} follow")
    try:
        header = json.loads(bytes(view[8 : 8 + hlen]).decode("utf-8"), object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad UTF-8, bad JSON, repeated names and integers past Python's digit
        # limit; RecursionError a header nested deeper than the parser's stack.
        raise TensorFormatError(f"safetensors header is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(header, dict):
        raise TensorFormatError("safetensors header must be a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TensorFormatError("safetensors __metadata__ must map strings to strings")
    body = view[8 + hlen :]
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise TensorFormatError(f"tensor {name!r}: entry must have exactly dtype, shape and data_offsets")
        tag, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(tag, str) or tag not in DTYPES:
            raise TensorFormatError(f"tensor {name!r}: unsupported dtype {tag!r:.100} (allowed: {', '.join(DTYPES)})")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise TensorFormatError(f"tensor {name!r}: shape must be a list of non-negative integers, got {shape!r:.200}")
        if not _fits_strides(shape):
            raise TensorFormatError(f"tensor {name!r}: shape {shape!r:.200} is too large for a tensor")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets):
            raise TensorFormatError(f"tensor {name!r}: data_offsets must be two integers, got {offsets!r:.200}")
        begin, end = offsets
        itemsize = torch.empty((), dtype=DTYPES[tag]).element_size()
        if not 0 <= begin <= end or end - begin != math.prod(shape) * itemsize:
            raise TensorFormatError(f"tensor {name!r}: data_offsets {offsets} do not hold {math.prod(shape)} {tag} values")
        entries.append((begin, end, name, tag, shape))
    entries.sort()
    cursor = 0
    for begin, end, name, _, _ in entries:
        if begin != cursor:
            raise TensorFormatError(f"tensor {name!r}: data starts at {begin}, expected {cursor} (gap or overlap)")
        cursor = end
    if cursor != len(body):
        raise TensorFormatError(f"safetensors data is {len(body)} bytes but the header describes {cursor}: truncated or padded file")
    tensors: dict[str, torch.Tensor] = {}
    for begin, end, name, tag, shape in entries:
        dtype = DTYPES[tag]
        if end == begin:
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:
            buf = bytearray(body[begin:end])
            tensors[name] = torch.frombuffer(buf, dtype=dtype).reshape(shape)
    return dict(sorted(tensors.items())), dict(metadata)
