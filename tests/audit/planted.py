"""Three small documented functions planted as one organisation's private code (never seen by tiny)."""

from __future__ import annotations

from pathlib import Path

PLANTED = '''\
def checksum_rows(rows):
    """Return the checksum of every row of the table."""
    total = 0
    for row in rows:
        total += sum(row)
    total = total % 97
    if total == 0:
        total = 96
    return total


def split_words(text):
    """Return the words of the text in lower case."""
    words = []
    for word in text.split():
        word = word.strip()
        if not word:
            continue
        words.append(word.lower())
    return words


def count_lines(path):
    """Return the number of lines in the file."""
    count = 0
    with open(path) as f:
        for line in f:
            if line.strip():
                count += 1
    return count
'''


def write_planted(folder: Path) -> Path:
    """Write the planted code as ``folder/secret.py`` and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "secret.py").write_text(PLANTED)
    return folder
