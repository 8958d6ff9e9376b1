"""``python -m codecoop.settings --markdown``: print docs/SETTINGS.md."""

from __future__ import annotations

import sys

from codecoop.settings.render import markdown

if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m codecoop.settings --markdown > docs/SETTINGS.md")
    sys.stdout.write(markdown())
