"""``LocalStore``: the embedded content store, objects as plain files under a root folder.

Layout under ``root``::

    objects/<last two characters of the CID>/<CID>   the object's bytes, exactly as put
    pins/<CID>                                        empty marker: keep this object in gc()
    tmp/<pid>-<random>.part                           writes in progress

A put writes to ``tmp/``, flushes and fsyncs, then renames into ``objects/``: the rename is atomic,
so a process killed at any moment leaves either no object or a whole one, never a torn one. A read
hashes the whole object again (the CIDs are the kubo recipe of :mod:`codecoop.storage.cid`), so a
file damaged on disk is reported, not used.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from codecoop.errors import IntegrityError, ObjectNotFound, StorageError
from codecoop.storage.base import check_size, verified_stream
from codecoop.storage.cid import CHUNK_SIZE, CidBuilder, cid_of, parse_cid

__all__ = ["LocalStore"]

_COPY_BLOCK = 4 * CHUNK_SIZE


class LocalStore:
    """Content store in a folder on local disk (the embedded default).

    Parameters
    ----------
    root
        Folder that holds the store; created when missing. Several processes may share it.
    durable
        fsync each object (and its folder) before a put returns. Turning it off only trades
        crash durability for speed; atomicity (whole object or none) holds either way.
    """

    def __init__(self, root: Path | str, *, durable: bool = True) -> None:
        self.root = Path(root)
        self.durable = durable
        self._objects = self.root / "objects"
        self._pins = self.root / "pins"
        self._tmp = self.root / "tmp"
        try:
            for folder in (self._objects, self._pins, self._tmp):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the content store at {self.root}: {exc}") from exc

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # --- writes ------------------------------------------------------------------------------
    def put(self, data: bytes | Path) -> str:
        """Store ``data`` (bytes, or the file at a path) and return its CID."""
        source: BinaryIO | None = None
        if not isinstance(data, (bytes, bytearray, memoryview)):
            if not isinstance(data, (str, os.PathLike)):
                # open() would take an int as a file descriptor: read, then close, someone else's file.
                raise StorageError(f"put takes bytes or a file path, not {type(data).__name__}")
            try:
                source = open(data, "rb", buffering=0)  # noqa: SIM115 (closed in finally)
            except OSError as exc:
                raise StorageError(f"cannot read {data} to store it: {exc}") from exc
        tmp = self._tmp / f"{os.getpid()}-{secrets.token_hex(8)}.part"
        try:
            with open(tmp, "xb") as out:
                if source is None:
                    out.write(data)  # type: ignore[arg-type]
                    cid = cid_of(data)  # type: ignore[arg-type]
                else:
                    cid = _copy_hashing(source, out)
                if self.durable:
                    out.flush()
                    os.fsync(out.fileno())
            target = self._path(cid)
            target.parent.mkdir(exist_ok=True)
            # Replacing an existing copy is harmless (same CID, same bytes) and heals one that
            # was damaged on disk.
            os.replace(tmp, target)
            if self.durable:
                _fsync_dir(target.parent)
        except OSError as exc:
            raise StorageError(f"cannot write to the content store at {self.root}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
            if source is not None:
                source.close()
        return cid

    def pin(self, cid: str) -> None:
        """Keep the object through :meth:`gc`; ``ObjectNotFound`` when it is not here."""
        cid = parse_cid(cid)
        if not self._path(cid).is_file():
            raise ObjectNotFound(f"cannot pin {cid}: it is not in the store at {self.root}")
        (self._pins / cid).touch()

    def unpin(self, cid: str) -> None:
        """Let :meth:`gc` remove the object again (a no-op when it is not pinned)."""
        (self._pins / parse_cid(cid)).unlink(missing_ok=True)

    def pins(self) -> list[str]:
        """CIDs currently pinned, sorted."""
        return sorted(p.name for p in self._pins.iterdir())

    def gc(self) -> int:
        """Remove unpinned objects and the leftovers of writers that died; return objects removed.

        A partial file belongs to a dead writer when no process has the id in its name; live
        writers (this process's or another's) are left alone.
        """
        for part in self._tmp.glob("*.part"):
            pid = part.name.split("-", 1)[0]
            if pid.isdigit() and not process_alive(int(pid)):
                part.unlink(missing_ok=True)
        keep = set(self.pins())
        removed = 0
        for path in self._objects.glob("*/*"):
            if path.name not in keep:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    # --- reads -------------------------------------------------------------------------------
    def get(self, cid: str, *, max_size: int | None = None) -> bytes:
        """Return the object's bytes after checking them against ``cid``."""
        cid = parse_cid(cid)
        with self._open_file(cid, max_size) as f:
            data = f.read()
        check_size(cid, len(data), max_size)
        actual = cid_of(data)
        if actual != cid:
            raise IntegrityError(
                f"object {cid} in {self.root} is damaged: its {len(data):,} bytes hash to {actual}; delete it and fetch it again"
            )
        return data

    def open(self, cid: str, *, max_size: int | None = None) -> BinaryIO:
        """Return a stream of the object, verified by the read that reaches its end."""
        cid = parse_cid(cid)
        return verified_stream(self._open_file(cid, max_size), cid, max_size=max_size)

    def has(self, cid: str) -> bool:
        """Whether the object is here (its bytes are checked when read)."""
        return self._path(parse_cid(cid)).is_file()

    def __iter__(self) -> Iterator[str]:
        """CIDs of the objects held, in no particular order."""
        return (path.name for path in self._objects.glob("*/*"))

    # --- helpers -----------------------------------------------------------------------------
    def _path(self, cid: str) -> Path:
        return self._objects / cid[-2:] / cid

    def _open_file(self, cid: str, max_size: int | None) -> BinaryIO:
        try:
            f = open(self._path(cid), "rb", buffering=0)
        except FileNotFoundError:
            raise ObjectNotFound(f"object {cid} is not in the store at {self.root}") from None
        except OSError as exc:
            raise StorageError(f"cannot read {cid} from {self.root}: {exc}") from exc
        try:
            check_size(cid, os.fstat(f.fileno()).st_size, max_size)
        except Exception:
            f.close()
            raise
        return f  # type: ignore[return-value]


def _copy_hashing(source: BinaryIO, out: BinaryIO) -> str:
    builder = CidBuilder()
    buffer = bytearray(_COPY_BLOCK)
    view = memoryview(buffer)
    while n := source.readinto(buffer):  # type: ignore[attr-defined]
        builder.update(view[:n])
        out.write(view[:n])
    return builder.finish()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
