"""LocalStore writes under bad input and failing disks: a typed ``StorageError`` or ``InvalidCID``, and
never a partial object: ``tmp/`` is empty again and ``objects/`` holds only whole, verified objects."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codecoop.errors import InvalidCID, ObjectNotFound, StorageError
from codecoop.storage import LocalStore, cid_of

from .support import MEDIUM, bounded, file_size_limit


def leftovers(store: LocalStore) -> list[str]:
    """Files in the store's write area: a partial object, if a put left one."""
    return sorted(p.name for p in (store.root / "tmp").iterdir())


def objects(store: LocalStore) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (store.root / "objects").glob("*/*")}


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@bounded(MEDIUM)
@given(st.binary(max_size=3 * 256 * 1024 + 7) | st.binary(max_size=64))
def test_any_bytes_are_stored_whole_and_read_back_verified(tmp_path_factory, data: bytes) -> None:
    store = LocalStore(tmp_path_factory.getbasetemp() / "fuzz-store", durable=False)
    cid = store.put(data)
    assert cid == cid_of(data) and store.get(cid) == data and leftovers(store) == []


@bounded(MEDIUM)
@given(st.text(max_size=80) | st.binary(max_size=80))
def test_reading_any_name_gives_the_object_or_a_typed_error(tmp_path_factory, name: str | bytes) -> None:
    store = LocalStore(tmp_path_factory.getbasetemp() / "fuzz-read", durable=False)
    try:
        store.get(name)  # type: ignore[arg-type]
    except (InvalidCID, ObjectNotFound):
        pass


@pytest.mark.parametrize("size", [300 * 1024, 3 * 1024 * 1024])
def test_a_put_that_fails_midway_when_the_disk_fills_leaves_no_partial_object(store: LocalStore, size: int) -> None:
    kept = store.put(b"already here")
    data = os.urandom(size)
    with file_size_limit(size // 2), pytest.raises(StorageError, match="cannot write to the content store"):
        store.put(data)
    assert leftovers(store) == []
    assert objects(store) == {kept: b"already here"}
    assert not store.has(cid_of(data))


def test_a_put_of_a_file_that_fails_midway_when_the_disk_fills_leaves_no_partial_object(store, tmp_path) -> None:
    source = tmp_path / "adapter.bin"
    source.write_bytes(os.urandom(2 * 1024 * 1024))
    with file_size_limit(1024 * 1024), pytest.raises(StorageError):
        store.put(source)
    assert leftovers(store) == [] and objects(store) == {}


def test_a_put_of_a_source_that_fails_to_read_midway_leaves_no_partial_object(store: LocalStore) -> None:
    # /proc/self/mem opens fine and fails on the first read (offset 0 is not mapped): a failing disk.
    with pytest.raises(StorageError):
        store.put(Path("/proc/self/mem"))
    assert leftovers(store) == [] and objects(store) == {}


@pytest.mark.parametrize("value", [3, True, None, 1.5, ["a"], {"a": 1}])
def test_a_put_of_something_that_is_neither_bytes_nor_a_path_is_refused(store: LocalStore, value: object) -> None:
    # An int used to be opened as a file descriptor: read, stored, and closed under its owner.
    r, w = os.pipe()
    os.write(w, b"someone else's data")
    try:
        with pytest.raises(StorageError, match="bytes or a file path"):
            store.put(value if value != 3 else r)  # type: ignore[arg-type]
        os.fstat(r)  # still open
    finally:
        os.close(r)
        os.close(w)
    assert leftovers(store) == [] and objects(store) == {}


@pytest.mark.parametrize("path", ["missing.bin", "."])
def test_a_put_of_an_unreadable_path_is_a_typed_error(store: LocalStore, tmp_path: Path, path: str) -> None:
    with pytest.raises(StorageError, match="cannot read"):
        store.put(tmp_path / path)
    assert leftovers(store) == []
