"""Code corpora: one organisation's source files, de-duplicated, split and tokenised into blocks.

Loading takes a directory or a git repository (local, or a URL that is cloned once into the
cache), keeps files by extension, and removes duplicates inside the organisation's data: exact ones
by the sha256 of normalised text, near ones by MinHash + LSH over word shingles (``datasketch``).
Files are then split into train and validation by a seeded shuffle, and each split is tokenised
into one stream (documents joined by the end-of-text token) that is cut into fixed-length blocks
on demand.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch

from codecoop.errors import TrainingError
from codecoop.training.cache import cached_dir

__all__ = ["Document", "CorpusStats", "CodeCorpus", "collect_files", "normalise", "repository_of"]

Split = Literal["train", "validation"]

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Document:
    """One source file: where it came from and its text."""

    path: Path
    text: str
    repository: str


@dataclass(frozen=True)
class CorpusStats:
    """What a corpus holds after de-duplication (tokens are 0 until it is tokenised)."""

    files: int
    lines: int
    bytes: int
    train_files: int
    validation_files: int
    exact_duplicates: int
    near_duplicates: int
    skipped_files: int
    train_tokens: int = 0
    validation_tokens: int = 0

    @classmethod
    def of(
        cls, train: Sequence[Document], validation: Sequence[Document], *, exact: int = 0, near: int = 0, skipped: int = 0
    ) -> CorpusStats:
        """The counts of a corpus split into ``train`` and ``validation`` after de-duplication."""
        docs = [*train, *validation]
        return cls(
            files=len(docs),
            lines=sum(d.text.count("\n") + 1 for d in docs),
            bytes=sum(len(d.text.encode()) for d in docs),
            train_files=len(train),
            validation_files=len(validation),
            exact_duplicates=exact,
            near_duplicates=near,
            skipped_files=skipped,
        )

    @property
    def duplicates_removed(self) -> int:
        """Exact plus near duplicates dropped."""
        return self.exact_duplicates + self.near_duplicates

    @property
    def tokens(self) -> int:
        """Tokens in both splits, end-of-text separators included."""
        return self.train_tokens + self.validation_tokens


def normalise(text: str) -> str:
    """The text exact de-duplication compares: unified newlines, no trailing spaces, no outer blank lines."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://", "git@", "ssh://", "git://", "file://"))


def _clone(url: str) -> Path:
    """Clone ``url`` once (shallow) into the cache; later calls reuse the clone."""
    key = hashlib.sha256(url.encode()).hexdigest()[:24]

    def build(out: Path) -> None:
        proc = subprocess.run(
            ["git", "clone", "--depth", "1", "--quiet", url, str(out / "repo")],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            raise TrainingError(f"git clone {url} failed: {proc.stderr.strip()}")

    return cached_dir(f"repos/{key}", build) / "repo"


def _git_files(root: Path) -> list[Path] | None:
    """Tracked files of a git work tree (so ignored build output is left out), or None if not one."""
    if not (root / ".git").exists():
        return None
    proc = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached"], capture_output=True, timeout=120)
    if proc.returncode != 0:
        return None
    return [root / p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


def collect_files(source: str | Path, extensions: Sequence[str] = (".py",)) -> list[Path]:
    """Every file under ``source`` (a directory, a git work tree or a git URL) with one of ``extensions``, sorted."""
    root = _clone(str(source)) if isinstance(source, str) and _is_url(source) else Path(source).expanduser()
    if root.is_file():
        return [root] if root.suffix in extensions else []
    if not root.is_dir():
        raise TrainingError(f"corpus source {source} is neither a directory, a file nor a git URL")
    tracked = _git_files(root)
    candidates = tracked if tracked is not None else root.rglob("*")
    skip = {".git", "__pycache__", ".venv", "node_modules", ".tox"}
    return sorted(p for p in candidates if p.suffix in extensions and p.is_file() and not skip.intersection(p.relative_to(root).parts))


def repository_of(path: Path, root: Path | None = None) -> str:
    """The organisation a file belongs to: its git work tree, else its top-level entry under ``root``.

    Under a site-packages folder the top-level entry is the installed project (``peft/...``, or
    ``six`` for a single-module ``six.py``), which makes realistic offline "organisations".
    """
    path = Path(path)
    for parent in path.parents:
        if root is not None and parent == root:
            break
        if (parent / ".git").exists():
            return str(parent)
    if root is not None and path.is_relative_to(root):
        rel = path.relative_to(root)
        return rel.parts[0] if len(rel.parts) > 1 else rel.stem
    return str(path.parent)


def _common_root(paths: Sequence[Path]) -> Path | None:
    if not paths:
        return None
    common = Path(os.path.commonpath([str(p.resolve()) for p in paths]))
    return common.parent if len(paths) == 1 else common


def _shingles(text: str, k: int = 5) -> set[bytes]:
    words = _WORD.findall(text)
    if len(words) < k:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + k]).encode() for i in range(len(words) - k + 1)}


def _near_duplicate_mask(texts: Sequence[str], threshold: float, num_perm: int) -> list[bool]:
    """True for each text that is a near duplicate of an earlier kept one (estimated Jaccard >= threshold)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    kept: dict[str, Any] = {}
    mask: list[bool] = []
    for i, text in enumerate(texts):
        mh = MinHash(num_perm=num_perm, seed=1)
        mh.update_batch(list(_shingles(text)))
        if any(kept[key].jaccard(mh) >= threshold for key in lsh.query(mh)):
            mask.append(True)
            continue
        key = str(i)
        lsh.insert(key, mh)
        kept[key] = mh
        mask.append(False)
    return mask


@dataclass(frozen=True)
class CodeCorpus:
    """One organisation's code, de-duplicated and split; tokenised streams are built per tokenizer.

    Build it with ``CodeCorpus.from_path`` or ``CodeCorpus.from_files``; pass a tokenizer there (or
    call ``tokenized``) to fill in token statistics. ``blocks`` cuts a split into fixed-length rows.
    """

    train: tuple[Document, ...]
    validation: tuple[Document, ...]
    stats: CorpusStats
    seed: int = 0
    # Token streams per tokenizer key, then per split: filled on first use and shared by the
    # corpora ``tokenized`` derives, so training and evaluation never tokenise the same text twice.
    _streams: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_path(
        cls,
        source: str | Path | Iterable[str | Path],
        tokenizer: Any = None,
        *,
        extensions: Sequence[str] = (".py",),
        validation_fraction: float = 0.1,
        seed: int = 0,
        near_duplicate_threshold: float | None = 0.85,
        max_files: int | None = None,
        max_file_bytes: int = 1_000_000,
    ) -> CodeCorpus:
        """Load every matching file under one or more sources (directories, git work trees, git URLs).

        Parameters
        ----------
        tokenizer:
            If given, both splits are tokenised now and ``stats`` counts tokens.
        validation_fraction:
            Share of files held out; at least one file each side when there are two or more.
        near_duplicate_threshold:
            Estimated Jaccard similarity of word 5-shingles above which a later file is dropped as a
            near duplicate of an earlier one; ``None`` keeps near duplicates.
        max_files:
            Keep only this many files, chosen by the seed (after sorting), before de-duplication.
        max_file_bytes:
            Larger files (generated tables, vendored blobs) are skipped.
        """
        sources = [source] if isinstance(source, (str, Path)) else list(source)
        files: list[Path] = []
        for s in sources:
            files.extend(collect_files(s, extensions))
        if max_files is not None and len(files) > max_files:
            files = sorted(random.Random(seed).sample(files, max_files))
        return cls.from_files(
            files,
            tokenizer,
            validation_fraction=validation_fraction,
            seed=seed,
            near_duplicate_threshold=near_duplicate_threshold,
            max_file_bytes=max_file_bytes,
        )

    @classmethod
    def from_files(
        cls,
        files: Sequence[str | Path],
        tokenizer: Any = None,
        *,
        validation_fraction: float = 0.1,
        seed: int = 0,
        near_duplicate_threshold: float | None = 0.85,
        max_file_bytes: int = 1_000_000,
        root: Path | None = None,
    ) -> CodeCorpus:
        """Build a corpus from an explicit file list (for example one part of ``partition``)."""
        if not 0.0 <= validation_fraction < 1.0:
            raise TrainingError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
        paths = sorted({Path(f) for f in files})
        root = root if root is not None else _common_root(paths)
        docs: list[Document] = []
        skipped = 0
        for path in paths:
            try:
                if path.stat().st_size > max_file_bytes:
                    skipped += 1
                    continue
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                skipped += 1
                continue
            if not text.strip():
                skipped += 1
                continue
            docs.append(Document(path, text, repository_of(path, root)))

        seen: set[str] = set()
        unique: list[Document] = []
        for doc in docs:
            digest = hashlib.sha256(normalise(doc.text).encode()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                unique.append(doc)
        exact = len(docs) - len(unique)
        near = 0
        if near_duplicate_threshold is not None and unique:
            mask = _near_duplicate_mask([d.text for d in unique], near_duplicate_threshold, num_perm=128)
            near = sum(mask)
            unique = [d for d, dup in zip(unique, mask) if not dup]
        if not unique:
            raise TrainingError(f"no usable source files among {len(paths)} given (skipped {skipped})")

        order = list(range(len(unique)))
        random.Random(seed).shuffle(order)
        n_val = round(len(unique) * validation_fraction)
        if validation_fraction > 0 and len(unique) >= 2:
            n_val = min(max(n_val, 1), len(unique) - 1)
        val_idx = set(order[:n_val])
        train = tuple(d for i, d in enumerate(unique) if i not in val_idx)
        validation = tuple(d for i, d in enumerate(unique) if i in val_idx)
        stats = CorpusStats.of(train, validation, exact=exact, near=near, skipped=skipped)
        corpus = cls(train, validation, stats, seed)
        return corpus.tokenized(tokenizer) if tokenizer is not None else corpus

    def hold_out(self, fraction: float, tokenizer: Any = None) -> tuple[CodeCorpus, CodeCorpus]:
        """Split a test set off the training documents: ``(this corpus without them, the test set)``.

        The test set is a corpus with no training documents whose validation split is the held-out
        files (evaluate it with ``split="validation"``); the first corpus keeps this one's validation
        split, so whoever trains and judges on it never sees a test file. At least one file is held
        out, and at least one stays for training; the choice follows the corpus's seed.
        """
        if not 0.0 < fraction < 1.0:
            raise TrainingError(f"the test fraction must be in (0, 1), got {fraction}")
        if len(self.train) < 2:
            raise TrainingError(
                f"{len(self.documents)} usable file(s) are too few to hold out a test split: it takes at least one "
                "file each for training, validation and test (give this organisation more files)"
            )
        order = list(range(len(self.train)))
        random.Random(f"test-split:{self.seed}").shuffle(order)
        n = min(max(round(len(self.train) * fraction), 1), len(self.train) - 1)
        held = set(order[:n])
        train = tuple(d for i, d in enumerate(self.train) if i not in held)
        test = tuple(d for i, d in enumerate(self.train) if i in held)
        st = self.stats
        kept = CodeCorpus(
            train,
            self.validation,
            CorpusStats.of(train, self.validation, exact=st.exact_duplicates, near=st.near_duplicates, skipped=st.skipped_files),
            self.seed,
        )
        tested = CodeCorpus((), test, CorpusStats.of((), test), self.seed)
        if tokenizer is None:
            return kept, tested
        return kept.tokenized(tokenizer), tested.tokenized(tokenizer)

    @property
    def documents(self) -> tuple[Document, ...]:
        """All kept documents, train first."""
        return self.train + self.validation

    def tokenized(self, tokenizer: Any) -> CodeCorpus:
        """This corpus with ``stats`` counting the tokens of ``tokenizer`` (both splits tokenised once)."""
        train = self.token_ids("train", tokenizer)
        validation = self.token_ids("validation", tokenizer)
        stats = replace(self.stats, train_tokens=int(train.numel()), validation_tokens=int(validation.numel()))
        return CodeCorpus(self.train, self.validation, stats, self.seed, self._streams)

    def token_ids(self, split: Split, tokenizer: Any) -> torch.Tensor:
        """The split as one 1-D stream of token ids (documents joined by end-of-text), cached per tokenizer."""
        streams = self._streams.setdefault(_tokenizer_key(tokenizer), {})
        if split not in streams:
            streams[split] = _encode(tokenizer, self.train if split == "train" else self.validation)
        return streams[split]

    def blocks(self, split: Split, tokenizer: Any, block_size: int) -> torch.Tensor:
        """The split cut into ``[n, block_size]`` rows; the tail shorter than a block is dropped.

        A split shorter than one block yields a single shorter row, so a tiny validation set still
        gives a figure.
        """
        ids = self.token_ids(split, tokenizer)
        if ids.numel() < 2:
            raise TrainingError(f"the {split} split has {ids.numel()} tokens; it needs at least 2")
        n = ids.numel() // block_size
        if n == 0:
            return ids.view(1, -1)
        return ids[: n * block_size].view(n, block_size)


_KEYS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _tokenizer_key(tokenizer: Any) -> str:
    """A content hash of the tokenizer (its serialised model and vocabulary), memoised per object.

    Names are not enough: tokenizers built in memory share an empty ``name_or_path``.
    """
    try:
        return _KEYS[tokenizer]
    except (KeyError, TypeError):
        pass
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    key = hashlib.sha256(f"{type(tokenizer).__name__}:{tokenizer.eos_token_id}:{text}".encode()).hexdigest()
    try:
        _KEYS[tokenizer] = key
    except TypeError:
        pass
    return key


def _encode(tokenizer: Any, docs: Sequence[Document]) -> torch.Tensor:
    """Tokenise documents into one stream, an end-of-text token after each."""
    if not docs:
        return torch.empty(0, dtype=torch.long)
    eos = tokenizer.eos_token_id
    if eos is None:
        raise TrainingError("the tokenizer has no end-of-text token to separate documents")
    texts = [d.text for d in docs]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # The Rust tokenizer directly: parallel, and without transformers' warning about
        # sequences longer than the model, which is expected here (streams are cut into blocks).
        rows = [enc.ids for enc in backend.encode_batch(texts, add_special_tokens=False)]
    else:
        rows = tokenizer(texts, add_special_tokens=False)["input_ids"]
    total = sum(len(r) + 1 for r in rows)
    out = torch.empty(total, dtype=torch.long)
    pos = 0
    for row in rows:
        out[pos : pos + len(row)] = torch.tensor(row, dtype=torch.long)
        out[pos + len(row)] = eos
        pos += len(row) + 1
    return out
