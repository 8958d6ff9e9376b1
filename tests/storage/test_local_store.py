"""LocalStore: round trips, verification of every read, atomic puts, pins and garbage collection."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codecoop.errors import ConfigError, IntegrityError, InvalidCID, ObjectNotFound, ObjectTooLarge, StorageError
from codecoop.storage import ContentStore, LocalStore, cid_of, open_store

from .vectors import vector_bytes

DATA = vector_bytes("local-store", 700_000)  # three chunks: a dag-pb root over raw leaves


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def _object_file(store: LocalStore, cid: str) -> Path:
    return store.root / "objects" / cid[-2:] / cid


def test_local_store_is_a_content_store(store: LocalStore) -> None:
    assert isinstance(store, ContentStore)


def test_put_returns_the_kubo_cid_and_get_returns_the_bytes(store: LocalStore) -> None:
    cid = store.put(DATA)
    assert cid == cid_of(DATA)
    assert store.get(cid) == DATA
    assert store.has(cid)


def test_put_of_a_file_equals_put_of_its_bytes(store: LocalStore, tmp_path: Path) -> None:
    path = tmp_path / "adapter.safetensors"
    path.write_bytes(DATA)
    assert store.put(path) == cid_of(DATA)


def test_put_of_a_missing_file_is_a_storage_error(store: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot read"):
        store.put(tmp_path / "missing")


def test_open_streams_the_verified_bytes(store: LocalStore) -> None:
    cid = store.put(DATA)
    with store.open(cid) as stream:
        assert stream.read(10) == DATA[:10]
        assert stream.read() == DATA[10:]


def test_unknown_cid_is_object_not_found(store: LocalStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.get(cid_of(b"never stored"))
    assert not store.has(cid_of(b"never stored"))


def test_malformed_cid_is_invalid_cid(store: LocalStore) -> None:
    with pytest.raises(InvalidCID):
        store.get("bafy-not-a-cid")


def test_a_tampered_object_fails_get(store: LocalStore) -> None:
    cid = store.put(DATA)
    damaged = bytearray(DATA)
    damaged[400_000] ^= 1
    _object_file(store, cid).write_bytes(bytes(damaged))
    with pytest.raises(IntegrityError, match="damaged"):
        store.get(cid)


def test_a_tampered_object_fails_the_streamed_read_at_its_end(store: LocalStore) -> None:
    cid = store.put(DATA)
    damaged = bytearray(DATA)
    damaged[-1] ^= 0xFF
    _object_file(store, cid).write_bytes(bytes(damaged))
    with store.open(cid) as stream, pytest.raises(IntegrityError):
        stream.read()


def test_a_truncated_object_fails_verification(store: LocalStore) -> None:
    cid = store.put(DATA)
    _object_file(store, cid).write_bytes(DATA[:-1])
    with pytest.raises(IntegrityError):
        store.get(cid)


def test_putting_again_heals_a_damaged_copy(store: LocalStore) -> None:
    cid = store.put(DATA)
    _object_file(store, cid).write_bytes(b"rot")
    store.put(DATA)
    assert store.get(cid) == DATA


def test_max_size_refuses_larger_objects_before_reading_them(store: LocalStore) -> None:
    cid = store.put(DATA)
    with pytest.raises(ObjectTooLarge):
        store.get(cid, max_size=len(DATA) - 1)
    with pytest.raises(ObjectTooLarge):
        store.open(cid, max_size=1000)
    assert store.get(cid, max_size=len(DATA)) == DATA


def test_gc_keeps_pinned_objects_and_removes_the_rest(store: LocalStore) -> None:
    kept, dropped = store.put(b"kept"), store.put(b"dropped")
    store.pin(kept)
    assert store.pins() == [kept]
    assert store.gc() == 1
    assert store.has(kept) and not store.has(dropped)
    store.unpin(kept)
    store.unpin(kept)  # unpinning twice is a no-op
    assert store.gc() == 1 and not store.has(kept)


def test_pinning_an_absent_object_is_object_not_found(store: LocalStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.pin(cid_of(b"absent"))


def test_open_store_embedded_needs_a_root(tmp_path: Path) -> None:
    assert isinstance(open_store("embedded", root=tmp_path), LocalStore)
    with pytest.raises(ConfigError):
        open_store("embedded")
    with pytest.raises(ConfigError):
        open_store("s3://bucket")


_WRITER = """
import sys
from pathlib import Path
from codecoop.storage import LocalStore
store = LocalStore(sys.argv[1])
source = Path(sys.argv[2])
i = 0
while True:
    # A new object each time, so every put writes and renames a fresh file.
    with open(source, "r+b") as f:
        f.write(i.to_bytes(8, "big"))
    store.put(source)
    i += 1
"""


@pytest.mark.parametrize("attempt", range(3))
def test_kill_9_during_put_leaves_no_corrupt_object(tmp_path: Path, attempt: int) -> None:
    root, source = tmp_path / "store", tmp_path / "big.bin"
    source.write_bytes(vector_bytes("kill-9", 24 * 2**20))
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(root), str(source)])
    try:
        deadline = time.monotonic() + 30
        # Wait for a put in flight (a partial file exists) after at least one finished object,
        # then kill at a point that varies with the attempt.
        while time.monotonic() < deadline:
            objects = list((root / "objects").glob("*/*")) if root.exists() else []
            if objects and any((root / "tmp").glob("*.part")):
                break
            time.sleep(0.001)
        else:
            pytest.fail("the writer never had a put in flight")
        time.sleep(0.005 * attempt)
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    store = LocalStore(root)
    cids = list(store)
    assert cids, "at least one object was complete before the kill"
    for cid in cids:
        assert cid_of(store.get(cid)) == cid
    store.gc()
    assert not list((root / "tmp").iterdir()), "gc removes the dead writer's partial file"
    assert os.path.getsize(source) == 24 * 2**20
