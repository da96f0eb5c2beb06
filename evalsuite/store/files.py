"""Atomic writes and content hashes: how every file of a run folder is written. Standard library only.

Every file is written atomically (a temporary file named NAME.tmp-XXXX in the same folder, then os.replace),
so a killed process leaves either the old file or the new one, never half of one; leftover temporary files
are removed at the next start (remove_partial_files). Files get the permissions the umask allows
(0666 & ~umask), like any other file. stable_hash is the sha256 of an object's sorted-key JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

TMP_MARK = ".tmp-"


def current_umask() -> int:
    """The process umask, read without changing it (Linux: /proc/self/status; elsewhere a quick swap)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + TMP_MARK, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~current_umask())   # mkstemp makes 0600: honour the umask instead
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False, default=str) + "\n")


def remove_partial_files(root: Path) -> int:
    """Delete temporary files left by a killed run. Returns how many were removed."""
    n = 0
    if root.is_dir():
        for p in root.rglob(f"*{TMP_MARK}*"):
            if p.is_file():
                p.unlink()
                n += 1
    return n


def stable_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()
