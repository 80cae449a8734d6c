"""Writes that never leave a half-written file behind, and the lock a long-running command holds on its directory."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary sibling to write; on success rename it over `path` (atomic on POSIX)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """Rows as JSON lines (non-ASCII text kept), written atomically."""
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def replace_dir(target: Path, write) -> None:
    """Call write(tmp_dir), then swap tmp_dir in for `target`; the old one survives a failure."""
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    old = target.with_name(f".{target.name}.old{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


class Busy(ValueError):
    """Another process holds a lock this one asked for without waiting."""


@contextmanager
def locked(path: Path, wait: bool = True, holder: str = "another process"):
    """Hold an exclusive `flock` on `path` (created if missing) for the block.

    wait=False: raise Busy at once when another process holds it, naming `holder` (the
    command that takes this lock, e.g. "innerpo sweep"). The kernel drops the lock when
    its process ends, however it ends, so a killed run never leaves a stale lock behind.
    """
    path = Path(path)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Busy(f"another `{holder}` is running on {path.parent} (it holds {path.name})") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_locked(path: Path) -> bool:
    """Whether another process holds `locked(path)` now; creates nothing (a missing file is unlocked)."""
    path = Path(path)
    if not path.is_file():
        return False
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
