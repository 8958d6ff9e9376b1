"""IpfsStore: the same CIDs as LocalStore on a real daemon, verified reads, bounded failures."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from codecoop.errors import IntegrityError, InvalidCID, ObjectNotFound, ObjectTooLarge, StoreUnavailable
from codecoop.storage import ContentStore, IpfsStore, LocalStore, cid_of, open_store

from .vectors import load_vectors, vector_bytes

DATA = vector_bytes("ipfs-store", 3 * 2**20 + 5)


# --- without a daemon: a fake API that lies or stalls, and no API at all ---------------------------
@pytest.fixture
def fake_api() -> Iterator[Callable[[bytes, float], str]]:
    """Start a stand-in HTTP API whose /cat answers ``body`` after ``delay`` seconds."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(body: bytes, delay: float) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"/ip4/127.0.0.1/tcp/{server.server_address[1]}/http"

    try:
        yield start
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_open_store_with_an_address_gives_an_ipfs_store() -> None:
    store = open_store("/ip4/127.0.0.1/tcp/5001/http")
    assert isinstance(store, IpfsStore) and isinstance(store, ContentStore)


def test_a_daemon_that_is_down_is_store_unavailable_with_a_hint() -> None:
    store = IpfsStore("/ip4/127.0.0.1/tcp/9/http", timeout=2)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="ipfs-devnet.sh start"):
        store.put(b"x")
    with pytest.raises(StoreUnavailable):
        store.get(cid_of(b"x"))
    assert time.monotonic() - started < 10


def test_wrong_bytes_from_the_daemon_are_an_integrity_error(fake_api) -> None:
    store = IpfsStore(fake_api(b"not the object", 0), timeout=5)
    with pytest.raises(IntegrityError):
        store.get(cid_of(b"the object"))


def test_truncated_bytes_from_the_daemon_are_an_integrity_error(fake_api) -> None:
    store = IpfsStore(fake_api(DATA[:-10], 0), timeout=5)
    with pytest.raises(IntegrityError):
        store.get(cid_of(DATA))


def test_an_oversized_answer_stops_at_the_limit(fake_api) -> None:
    store = IpfsStore(fake_api(DATA, 0), timeout=5)
    with pytest.raises(ObjectTooLarge):
        store.get(cid_of(DATA), max_size=2**20)


def test_a_stalled_daemon_fails_within_the_timeout(fake_api) -> None:
    store = IpfsStore(fake_api(b"late", 30), timeout=1)
    started = time.monotonic()
    with pytest.raises((StoreUnavailable, ObjectNotFound)):
        store.get(cid_of(b"late"))
    assert time.monotonic() - started < 10


def test_malformed_cids_are_refused_before_any_request() -> None:
    with pytest.raises(InvalidCID):
        IpfsStore("/ip4/127.0.0.1/tcp/9/http").get("QmNotAllowed")


# --- against the real daemon (scripts/ipfs-devnet.sh) ---------------------------------------------
@pytest.fixture
def ipfs(ipfs_api: str) -> Iterator[IpfsStore]:
    store = IpfsStore(ipfs_api, timeout=5)
    try:
        yield store
    finally:
        store.close()


@pytest.mark.daemon
@pytest.mark.parametrize("vector", [v for v in load_vectors() if v["size"] <= 6 * 2**20], ids=lambda v: f"{v['size']}B")
def test_daemon_and_local_store_give_the_same_cid(ipfs: IpfsStore, tmp_path: Path, vector: dict) -> None:
    data = vector_bytes(vector["seed"], vector["size"])
    assert ipfs.put(data) == LocalStore(tmp_path).put(data) == vector["cid"]
    assert ipfs.get(vector["cid"]) == data


@pytest.mark.daemon
def test_daemon_round_trip_of_a_file_streamed(ipfs: IpfsStore, tmp_path: Path) -> None:
    path = tmp_path / "adapter.bin"
    path.write_bytes(DATA)
    cid = ipfs.put(path)
    assert cid == cid_of(DATA) and ipfs.has(cid)
    with ipfs.open(cid) as stream:
        assert stream.read() == DATA


@pytest.mark.daemon
def test_daemon_pin_and_unpin(ipfs: IpfsStore) -> None:
    cid = ipfs.put(b"pinned on the daemon")
    ipfs.pin(cid)
    ipfs.unpin(cid)
    ipfs.unpin(cid)


@pytest.mark.daemon
def test_daemon_unknown_cid_is_object_not_found_in_bounded_time(ipfs_api: str) -> None:
    store = IpfsStore(ipfs_api, timeout=2, has_timeout=0.5)
    missing = cid_of(b"nobody ever added this")
    started = time.monotonic()
    assert not store.has(missing)
    with pytest.raises(ObjectNotFound):
        store.get(missing)
    with pytest.raises(ObjectNotFound):
        store.pin(missing)
    assert time.monotonic() - started < 15
