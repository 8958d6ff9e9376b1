"""Keyed clone fingerprints: find code that several organisations share without showing anyone the code.

Each organisation hashes every window of ``min_lines`` (6) consecutive normalised lines of its
private code (normalisation as in :mod:`codecoop.audit.clones`) with **HMAC-SHA256 under a federation
key**, keeps the first 16 bytes, and publishes the sorted, de-duplicated set (:class:`FingerprintSet`,
a small JSON file). Two sets made under the same key intersect exactly where the organisations
share a 6-line clone, so the federation learns how much code is duplicated across members
(:func:`overlap`) and each member can drop the shared clones from its own training data
(:func:`drop_shared_clones`), which studies of collaborative code models found to be memorized most.

The key is what keeps this private. A plain hash of a window could be tested by anyone who guesses
the code (a common snippet, a leaked file); a keyed hash can only be computed by holders of the key.
The key is agreed inside the federation and never published: one member generates it
(:func:`new_key_file`) and hands it to the others off-chain (an encrypted message, a shared secret
store). Files carry only the key's id (a hash of the key), so sets made under different keys are
refused instead of silently comparing to nothing. Members who hold the key *can* test guesses
against each other's sets; the fingerprints hide code from outsiders, not from the federation.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codecoop.audit.clones import MIN_LINES, normalise_text
from codecoop.errors import ConfigError

if TYPE_CHECKING:
    from codecoop.training import Document

__all__ = [
    "FINGERPRINT_FORMAT",
    "KEY_FORMAT",
    "FederationKey",
    "new_key_file",
    "load_key",
    "window_fingerprints",
    "FingerprintSet",
    "fingerprint_documents",
    "PairOverlap",
    "OverlapReport",
    "overlap",
    "Dropped",
    "DropResult",
    "drop_shared_clones",
]

FINGERPRINT_FORMAT = "codecoop-clone-fingerprints/1"
KEY_FORMAT = "codecoop-federation-key/1"
_DIGEST_BYTES = 16
_KEY_BYTES = 32


@dataclass(frozen=True)
class FederationKey:
    """The federation's fingerprint key. ``key_id`` names it in public; ``secret`` never leaves the members."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise ConfigError(f"a federation key needs at least 16 bytes, this one has {len(self.secret)}")

    @property
    def key_id(self) -> str:
        """First 16 hex characters of SHA-256 over a domain tag and the key: public, reveals nothing of it."""
        return hashlib.sha256(b"codecoop.fingerprint-key-id:" + self.secret).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"FederationKey(key_id={self.key_id!r})"


def new_key_file(path: str | Path) -> FederationKey:
    """Write a fresh random 32-byte key to ``path`` (readable by its owner only) and return it.

    Raises
    ------
    ConfigError
        ``path`` exists already (a key is never overwritten: the federation's sets depend on it).
    """
    path = Path(path).expanduser()
    if path.exists():
        raise ConfigError(f"{path} exists; a federation key is never overwritten (choose another path)")
    key = FederationKey(secrets.token_bytes(_KEY_BYTES))
    doc = {"format": KEY_FORMAT, "key_id": key.key_id, "key": key.secret.hex()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=1)
    return key


def load_key(path: str | Path) -> FederationKey:
    """Read a key file written by :func:`new_key_file` (or by hand in the same format).

    Raises
    ------
    ConfigError
        The file is missing, not a key file, or its ``key_id`` does not match its key.
    """
    path = Path(path).expanduser()
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != KEY_FORMAT:
            raise ValueError(f"format is {doc.get('format')!r}, not {KEY_FORMAT!r}")
        key = FederationKey(bytes.fromhex(doc["key"]))
    except FileNotFoundError:
        raise ConfigError(f"key file {path} does not exist; get the federation's key from a member, or make one with --new-key") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path} is not a codecoop federation key file: {exc}") from None
    if doc.get("key_id", key.key_id) != key.key_id:
        raise ConfigError(f"{path}: its key_id does not match its key; the file is damaged, get it again")
    return key


def window_fingerprints(text: str, key: FederationKey, min_lines: int = MIN_LINES) -> list[tuple[bytes, int, int]]:
    """``(fingerprint, first line, last line)`` of every ``min_lines``-line window of ``text``.

    Line numbers are 1-based in the original text; a window spans the blank and comment lines
    between its normalised lines.
    """
    norm = normalise_text(text)
    out = []
    for j in range(len(norm.lines) - min_lines + 1):
        window = "\n".join(norm.lines[j : j + min_lines]).encode()
        digest = hmac.new(key.secret, window, hashlib.sha256).digest()[:_DIGEST_BYTES]
        out.append((digest, norm.line_numbers[j], norm.line_numbers[j + min_lines - 1]))
    return out


@dataclass(frozen=True)
class FingerprintSet:
    """One organisation's published fingerprints: sorted, de-duplicated, with the key's id (never the key)."""

    organisation: str
    key_id: str
    min_lines: int
    fingerprints: frozenset[bytes]
    files: int = 0
    windows: int = 0  # windows hashed, duplicates included

    def to_json(self) -> str:
        """The published file's text (fingerprints as sorted hex strings)."""
        doc = {
            "format": FINGERPRINT_FORMAT,
            "organisation": self.organisation,
            "key_id": self.key_id,
            "algorithm": f"hmac-sha256/{_DIGEST_BYTES}",
            "min_lines": self.min_lines,
            "files": self.files,
            "windows": self.windows,
            "fingerprints": sorted(f.hex() for f in self.fingerprints),
        }
        return json.dumps(doc, indent=0, sort_keys=True) + "\n"

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())
        return path

    @classmethod
    def load(cls, path: str | Path) -> FingerprintSet:
        """Read a published fingerprint file.

        Raises
        ------
        ConfigError
            The file is missing or not a fingerprint file of this format.
        """
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
            if doc.get("format") != FINGERPRINT_FORMAT:
                raise ValueError(f"format is {doc.get('format')!r}, not {FINGERPRINT_FORMAT!r}")
            fps = frozenset(bytes.fromhex(h) for h in doc["fingerprints"])
            if any(len(f) != _DIGEST_BYTES for f in fps):
                raise ValueError(f"fingerprints must be {_DIGEST_BYTES} bytes")
            return cls(
                str(doc["organisation"]),
                str(doc["key_id"]),
                int(doc["min_lines"]),
                fps,
                int(doc.get("files", 0)),
                int(doc.get("windows", 0)),
            )
        except FileNotFoundError:
            raise ConfigError(f"fingerprint file {path} does not exist") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{path} is not a codecoop fingerprint file: {exc}") from None

    def __len__(self) -> int:
        return len(self.fingerprints)


def _texts(documents: Iterable[Document | tuple[Path, str]]) -> list[tuple[Path, str]]:
    return [(Path(d.path), d.text) if hasattr(d, "text") else (Path(d[0]), d[1]) for d in documents]  # type: ignore[union-attr,index]


def fingerprint_documents(
    documents: Iterable[Document | tuple[Path, str]], key: FederationKey, organisation: str, min_lines: int = MIN_LINES
) -> FingerprintSet:
    """The fingerprint set of an organisation's code (documents or ``(path, text)`` pairs)."""
    if min_lines < 1:
        raise ConfigError(f"min_lines must be at least 1, got {min_lines}")
    found: set[bytes] = set()
    files = windows = 0
    for _, text in _texts(documents):
        wins = window_fingerprints(text, key, min_lines)
        files += 1
        windows += len(wins)
        found.update(f for f, _, _ in wins)
    return FingerprintSet(organisation, key.key_id, min_lines, frozenset(found), files, windows)


@dataclass(frozen=True)
class PairOverlap:
    """Overlap of two organisations' sets: shared windows, Jaccard, and the share of each side found in the other."""

    a: str
    b: str
    shared: int
    jaccard: float
    share_of_a: float
    share_of_b: float


@dataclass(frozen=True)
class OverlapReport:
    """Pairwise overlaps, and for each organisation the share of its windows found at any other."""

    pairs: tuple[PairOverlap, ...]
    shared_elsewhere: Mapping[str, float]
    sizes: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "pairs": [vars(p) for p in self.pairs],
            "shared_elsewhere": dict(self.shared_elsewhere),
            "sizes": dict(self.sizes),
        }


def _check_compatible(sets: Sequence[FingerprintSet]) -> None:
    keys = {s.key_id for s in sets}
    if len(keys) > 1:
        raise ConfigError(
            f"the fingerprint sets were made under different keys ({', '.join(sorted(keys))}); "
            "they cannot be compared: every member must hash with the federation's one key"
        )
    lines = {s.min_lines for s in sets}
    if len(lines) > 1:
        raise ConfigError(f"the fingerprint sets use different window sizes {sorted(lines)}; recompute them with one --min-lines")
    names = [s.organisation for s in sets]
    if len(set(names)) != len(names):
        raise ConfigError(f"two fingerprint sets name the same organisation ({names}); give each set its own --org")


def overlap(sets: Sequence[FingerprintSet]) -> OverlapReport:
    """Pairwise overlap between organisations' fingerprint sets (all made under one key).

    Raises
    ------
    ConfigError
        Fewer than two sets, sets under different keys or window sizes, or a repeated organisation.
    """
    if len(sets) < 2:
        raise ConfigError("comparing needs the fingerprint sets of at least two organisations")
    _check_compatible(sets)
    pairs = []
    for x, y in itertools.combinations(sets, 2):
        shared = len(x.fingerprints & y.fingerprints)
        union = len(x.fingerprints | y.fingerprints)
        pairs.append(
            PairOverlap(x.organisation, y.organisation, shared, shared / union if union else 0.0,
                        shared / len(x) if len(x) else 0.0, shared / len(y) if len(y) else 0.0)
        )  # fmt: skip
    elsewhere = {}
    for s in sets:
        others = frozenset().union(*(o.fingerprints for o in sets if o is not s))
        elsewhere[s.organisation] = len(s.fingerprints & others) / len(s) if len(s) else 0.0
    return OverlapReport(tuple(pairs), elsewhere, {s.organisation: len(s) for s in sets})


@dataclass(frozen=True)
class Dropped:
    """A block of a participant's file dropped because other organisations hold the same code."""

    path: Path
    first_line: int  # 1-based, inclusive
    last_line: int
    organisations: tuple[str, ...]  # who else has (part of) it


@dataclass(frozen=True)
class DropResult:
    """The filtered training documents and what was removed from them."""

    documents: tuple[Document, ...]
    dropped: tuple[Dropped, ...]
    dropped_files: tuple[Path, ...]
    lines_before: int
    lines_after: int


def drop_shared_clones(
    documents: Iterable[Document | tuple[Path, str]],
    key: FederationKey,
    others: Sequence[FingerprintSet],
    *,
    mode: str = "lines",
    min_lines: int = MIN_LINES,
) -> DropResult:
    """Remove from a participant's training data the code whose fingerprints appear at other organisations.

    Parameters
    ----------
    others:
        The other organisations' published sets (made under ``key``).
    mode:
        ``"lines"``: remove the lines of every shared window (a maximal run of overlapping shared
        windows becomes one :class:`Dropped` block; the rest of the file is kept);
        ``"files"``: drop every file that has any shared window.

    Raises
    ------
    ConfigError
        An unknown mode, or sets made under another key or window size.
    """
    from codecoop.training.corpus import Document, repository_of

    if mode not in ("lines", "files"):
        raise ConfigError(f"mode must be 'lines' or 'files', not {mode!r}")
    for s in others:
        if s.key_id != key.key_id:
            raise ConfigError(
                f"{s.organisation}'s fingerprints were made under key {s.key_id}, yours is {key.key_id}; use the federation's key"
            )
        if s.min_lines != min_lines:
            raise ConfigError(f"{s.organisation}'s fingerprints use {s.min_lines}-line windows, not {min_lines}")
    owners: dict[bytes, list[str]] = {}
    for s in others:
        for f in s.fingerprints:
            owners.setdefault(f, []).append(s.organisation)
    kept: list[Document] = []
    dropped: list[Dropped] = []
    dropped_files: list[Path] = []
    before = after = 0
    originals = list(documents)
    for item, (path, text) in zip(originals, _texts(originals)):
        lines = text.split("\n")
        before += len(lines)
        runs: list[list[Any]] = []  # [first, last, orgs] of merged shared windows
        for fp, first, last in window_fingerprints(text, key, min_lines):
            orgs = owners.get(fp)
            if orgs is None:
                continue
            if runs and first <= runs[-1][1]:
                runs[-1][1] = max(runs[-1][1], last)
                runs[-1][2].update(orgs)
            else:
                runs.append([first, last, set(orgs)])
        blocks = [Dropped(path, a, b, tuple(sorted(o))) for a, b, o in runs]
        dropped.extend(blocks)
        doc = item if hasattr(item, "repository") else Document(path, text, repository_of(path))
        if not blocks:
            kept.append(doc)  # type: ignore[arg-type]
            after += len(lines)
            continue
        if mode == "files":
            dropped_files.append(path)
            continue
        removed = {n for blk in blocks for n in range(blk.first_line, blk.last_line + 1)}
        remaining = [line for n, line in enumerate(lines, start=1) if n not in removed]
        after += len(remaining)
        if any(line.strip() for line in remaining):
            kept.append(Document(path, "\n".join(remaining), doc.repository))  # type: ignore[union-attr]
        else:
            dropped_files.append(path)
    return DropResult(tuple(kept), tuple(dropped), tuple(dropped_files), before, after)
