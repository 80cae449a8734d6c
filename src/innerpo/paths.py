"""Where innerpo keeps files it can rebuild (converted models, caches)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """`$INNERPO_CACHE`, else the user's cache directory (e.g. ~/.cache/innerpo)."""
    root = os.environ.get("INNERPO_CACHE") or platformdirs.user_cache_dir("innerpo")
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
