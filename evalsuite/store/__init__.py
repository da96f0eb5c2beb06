"""The store: every on-disk layout of evalsuite, in one place, behind one API.

    evalsuite.runfolder       the run folder: run.json (RunInfo), prompts.jsonl, plan.jsonl (PlanEntry), items/
                              (PNG + ItemRecord), quarantine/; atomic writes (atomic_write_*) and content hashes
                              (stable_hash), standard library only
    evalsuite.store.scores    scores/: the scorer registry, score details (ScoreDetail), the score table

Later stages (scoring, report, compare, check) read and write run folders only through these names; no module
builds a path inside a run folder itself.
"""

from ..runfolder import (SCHEMA_VERSION, BackendInfo, ItemRecord, PlanEntry, Problem, RunFolder, RunInfo,  # noqa: F401
                         atomic_write_bytes, atomic_write_json, atomic_write_text, remove_partial_files,
                         stable_hash)
from .scores import SCORES_DIR, TABLE, MetricValue, ScoreDetail, ScoreStore  # noqa: F401

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
