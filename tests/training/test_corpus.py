"""Corpora: loading, de-duplication, seeded splits, blocks and statistics."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from codecoop.errors import TrainingError
from codecoop.training import CodeCorpus, collect_files
from codecoop.training.corpus import normalise

_BODY = "\n".join(f"def function_{i}(value, other):\n    result = value * {i} + other\n    return result - {i}\n" for i in range(60))


def _plant(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "original.py").write_text(_BODY)
    (root / "copy.py").write_text(_BODY)
    (root / "reformatted.py").write_text(_BODY.replace("\n", "   \r\n") + "\n\n\n")
    (root / "near.py").write_text(_BODY.replace("return result - 59", "return result + 60"))
    (root / "other.py").write_text("import os\n\nprint(os.getcwd())\n")
    (root / "third.py").write_text("class Thing:\n    pass\n")
    (root / "notes.txt").write_text(_BODY)


def test_exact_and_near_duplicates_are_removed(tmp_path: Path) -> None:
    _plant(tmp_path)
    corpus = CodeCorpus.from_path(tmp_path)
    assert corpus.stats.exact_duplicates == 2
    assert corpus.stats.near_duplicates == 1
    assert corpus.stats.duplicates_removed == 3
    # The first file in path order survives; the others of its family are the duplicates.
    assert sorted(d.path.name for d in corpus.documents) == ["copy.py", "other.py", "third.py"]


def test_near_duplicates_are_kept_when_disabled(tmp_path: Path) -> None:
    _plant(tmp_path)
    corpus = CodeCorpus.from_path(tmp_path, near_duplicate_threshold=None)
    assert corpus.stats.near_duplicates == 0
    assert corpus.stats.files == 4


def test_normalise_ignores_line_endings_and_trailing_space() -> None:
    assert normalise("a  \r\nb\t\n\n") == normalise("\na\nb")


def test_split_is_deterministic_by_seed_and_covers_every_file(project_dir: Path) -> None:
    a = CodeCorpus.from_path(project_dir, seed=1, validation_fraction=0.3)
    b = CodeCorpus.from_path(project_dir, seed=1, validation_fraction=0.3)
    c = CodeCorpus.from_path(project_dir, seed=2, validation_fraction=0.3)
    names = lambda docs: [d.path for d in docs]  # noqa: E731
    assert names(a.validation) == names(b.validation)
    assert names(a.validation) != names(c.validation)
    assert sorted(names(a.train) + names(a.validation)) == sorted(names(c.train) + names(c.validation))
    assert not set(names(a.train)) & set(names(a.validation))


def test_small_corpus_still_gets_one_validation_file(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    corpus = CodeCorpus.from_path(tmp_path, validation_fraction=0.1)
    assert (corpus.stats.train_files, corpus.stats.validation_files) == (1, 1)


def test_a_test_split_is_held_out_of_the_training_files_and_keeps_the_validation_split(project_dir: Path) -> None:
    corpus = CodeCorpus.from_path(project_dir, seed=3, validation_fraction=0.2)
    kept, test = corpus.hold_out(0.3)
    again, test_again = corpus.hold_out(0.3)
    paths = lambda docs: {d.path for d in docs}  # noqa: E731
    assert kept.validation == corpus.validation and test.train == ()
    assert test.validation and kept.train and not paths(kept.documents) & paths(test.validation)
    assert paths(kept.train) | paths(test.validation) == paths(corpus.train)
    assert (paths(test_again.validation), paths(again.train)) == (paths(test.validation), paths(kept.train))
    assert (kept.stats.train_files, test.stats.validation_files) == (len(kept.train), len(test.validation))


def test_too_few_files_for_a_test_split_say_how_many_it_takes(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    with pytest.raises(TrainingError, match="at least one file each for training, validation and test"):
        CodeCorpus.from_path(tmp_path, validation_fraction=0.1).hold_out(0.15)
    with pytest.raises(TrainingError, match="between|in \\(0, 1\\)"):
        CodeCorpus.from_path(tmp_path, validation_fraction=0.1).hold_out(1.0)


def test_statistics_count_files_lines_and_tokens(corpus: CodeCorpus) -> None:
    stats = corpus.stats
    assert stats.files == stats.train_files + stats.validation_files == len(corpus.documents)
    assert stats.lines == sum(d.text.count("\n") + 1 for d in corpus.documents)
    assert stats.train_tokens > stats.validation_tokens > 0
    assert stats.tokens == stats.train_tokens + stats.validation_tokens


def test_blocks_have_fixed_length_and_follow_the_stream(corpus: CodeCorpus, tiny) -> None:
    blocks = corpus.blocks("train", tiny.tokenizer, 64)
    stream = corpus.token_ids("train", tiny.tokenizer)
    assert blocks.shape == (stream.numel() // 64, 64)
    assert blocks.flatten().tolist() == stream[: blocks.numel()].tolist()
    assert int((stream == tiny.tokenizer.eos_token_id).sum()) >= corpus.stats.train_files


def _git_repo(root: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root.mkdir()
    (root / "tracked.py").write_text("x = 1\n")
    (root / "build").mkdir()
    (root / "build" / "generated.py").write_text("y = 2\n")
    (root / ".gitignore").write_text("build/\n")
    git = ["git", "-C", str(root), "-c", "user.name=test", "-c", "user.email=test@example.org"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*git, "add", "tracked.py", ".gitignore"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    return root


def test_git_work_tree_uses_tracked_files_only(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path / "repo")
    assert [p.name for p in collect_files(repo)] == ["tracked.py"]


def test_git_url_is_cloned_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _git_repo(tmp_path / "repo")
    monkeypatch.setenv("CODECOOP_CACHE", str(tmp_path / "cache"))
    corpus = CodeCorpus.from_path(f"file://{repo}", validation_fraction=0.0)
    assert [d.path.name for d in corpus.documents] == ["tracked.py"]
    assert (tmp_path / "cache" / "repos").is_dir()


def test_extensions_select_files(tmp_path: Path) -> None:
    _plant(tmp_path)
    assert [p.name for p in collect_files(tmp_path, (".txt",))] == ["notes.txt"]


def test_empty_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="no usable source files"):
        CodeCorpus.from_path(tmp_path)
