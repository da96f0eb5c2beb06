"""The store: every on-disk layout of evalsuite, in one place, behind one API.

    evalsuite.store.files     atomic writes (atomic_write_*, remove_partial_files) and content hashes
                              (stable_hash); standard library only
    evalsuite.store.records   the pydantic schemas: run.json (RunInfo, BackendInfo), plan.jsonl (PlanEntry),
                              item records (ItemRecord), Problem; item keys and paths (item_key, item_paths)
    evalsuite.store.folder    the run-folder API: RunFolder, the damage-tolerant readers, quarantine
    evalsuite.store.scores    scores/: the scorer registry, score details (ScoreDetail), the score table

The layout of a run folder and its guarantees are described in evalsuite/runfolder.py, which re-exports the
names of files, records and folder so older imports keep working. Later stages (scoring, report, compare,
check) read and write run folders only through these names; no module builds a path inside a run folder itself.
"""

from .files import atomic_write_bytes, atomic_write_json, atomic_write_text, remove_partial_files, stable_hash
from .folder import RunFolder
from .records import SCHEMA_VERSION, BackendInfo, ItemRecord, PlanEntry, Problem, RunInfo
from .scores import SCORES_DIR, TABLE, MetricValue, ScoreDetail, ScoreStore

__all__ = ["SCHEMA_VERSION", "BackendInfo", "ItemRecord", "PlanEntry", "Problem", "RunFolder", "RunInfo",
           "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "remove_partial_files", "stable_hash",
           "SCORES_DIR", "TABLE", "MetricValue", "ScoreDetail", "ScoreStore", "code_stamp"]


def code_stamp(*modules: str) -> str:
    """A hash of evalsuite's version and the source of the given modules (paths under evalsuite/): derived
    files cached with it (the terminal table, the report) are redone when the code that makes them changes."""
    import hashlib
    from pathlib import Path

    from .. import __version__

    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(__version__.encode())
    for m in modules:
        p = root / m
        h.update(m.encode() + (p.read_bytes() if p.is_file() else b"-"))
    return h.hexdigest()
