"""The run folder: the contract every stage (generation, scoring, reports, comparisons) reads and writes.

    RUN_DIR/
      run.json                 RunInfo: resolved config per backend, versions, device, seeds, prompt-set hash
      prompts.jsonl            the prompts of the run (after --category/--limit), one JSON object a line
      plan.jsonl               PlanEntry per planned item: backend label, prompt id, seed, cache key, paths
      items/<backend>/<prompt-id>/s<seed>-<key12>.png    the image (PNG)
      items/<backend>/<prompt-id>/s<seed>-<key12>.json   ItemRecord; written after the image: its presence
                                                         means the item is finished (ok, failed or filtered)

Every file is written atomically (a temporary file in the same folder, then os.replace), so a killed
run leaves either the old file or the new one, never half of one; leftover temporary files are removed
at the next start. Items are content-addressed: the key hashes everything that changes pixels, so a
changed setting gets new items that never mix with old ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Literal

from pydantic import BaseModel, Field

from .prompts import Prompt

SCHEMA_VERSION = 1
TMP_MARK = ".tmp-"

Status = Literal["ok", "failed", "filtered"]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + TMP_MARK, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
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


def item_key(backend_key: dict[str, Any], prompt: Prompt, seed: int, width: int, height: int,
             extra: Any = None) -> str:
    """Content address of one item: everything that changes its pixels."""
    return stable_hash({
        "backend": backend_key, "prompt": prompt.prompt, "seed": seed,
        "width": width, "height": height, "extra": extra,
    })


class PlanEntry(BaseModel):
    backend: str          # backend label (folder name)
    prompt_id: str
    seed: int
    key: str
    image: str            # relative to the run folder
    record: str           # relative to the run folder


class ItemRecord(BaseModel):
    """One (backend, prompt, seed) image and how it was made."""

    schema_version: int = SCHEMA_VERSION
    backend: str
    spec: str
    prompt_id: str
    prompt: str
    category: str
    seed: int | None                      # None where the service takes no seed (stored as not applicable)
    key: str
    status: Status
    error: str | None = None
    image: str | None = None              # relative path of the PNG, None when no image
    image_sha256: str | None = None
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance: float | None = None
    latency_s: float | None = None        # generation wall time of this image (batch time / batch size)
    batch_size: int = 1
    warmup: bool = False                  # first call of the backend in its process: excluded from medians
    load_s: float | None = None           # the backend's model load time in this process
    peak_vram_gb: float | None = None
    peak_rss_gb: float | None = None       # process peak RSS during this item's call (evalsuite.timing.PeakRSS)
    it_per_s: float | None = None         # steps / latency_s
    rank: int | None = None               # torch.distributed rank that generated it (None: single process)
    applied: dict[str, Any] = Field(default_factory=dict)   # what the backend/service actually applied
    created: str


class BackendInfo(BaseModel):
    spec: str
    name: str
    config: dict[str, Any]                # fully resolved settings, no secrets
    key: dict[str, Any]                   # the part of the config that changes pixels
    labelled_noise: bool = False          # random-weight miniature models: images are noise
    load_s: float | None = None
    notes: list[str] = Field(default_factory=list)


class RunInfo(BaseModel):
    schema_version: int = SCHEMA_VERSION
    evalsuite_version: str
    created: str
    updated: str
    prompt_set: dict[str, Any]            # name, source, sha256, count
    seeds: list[int]
    size: list[int] | None = None         # run-wide [width, height] override, None = backend defaults
    backends: dict[str, BackendInfo]      # by label
    environment: dict[str, Any]
    invocations: list[dict[str, Any]] = Field(default_factory=list)


def item_paths(backend_label: str, prompt_id: str, seed: int | None, key: str) -> tuple[str, str]:
    stem = f"items/{backend_label}/{prompt_id}/s{seed if seed is not None else 'na'}-{key[:12]}"
    return stem + ".png", stem + ".json"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: Iterable[BaseModel | dict[str, Any]]) -> None:
    lines = []
    for r in rows:
        d = r.model_dump() if isinstance(r, BaseModel) else r
        lines.append(json.dumps(d, ensure_ascii=False, sort_keys=True))
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


class RunFolder:
    """Read access to a run folder for later stages (scoring, reports, comparisons)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not (self.path / "run.json").is_file():
            from .errors import EvalsuiteError

            raise EvalsuiteError(f"{self.path} is not a run folder (no run.json)")

    @property
    def info(self) -> RunInfo:
        return RunInfo.model_validate_json((self.path / "run.json").read_text(encoding="utf-8"))

    def prompts(self) -> dict[str, Prompt]:
        return {d["id"]: Prompt.model_validate(d) for d in read_jsonl(self.path / "prompts.jsonl")}

    def plan(self) -> list[PlanEntry]:
        return [PlanEntry.model_validate(d) for d in read_jsonl(self.path / "plan.jsonl")]

    def record(self, entry: PlanEntry) -> ItemRecord | None:
        p = self.path / entry.record
        if not p.is_file():
            return None
        return ItemRecord.model_validate_json(p.read_text(encoding="utf-8"))

    def records(self) -> Iterable[tuple[PlanEntry, ItemRecord | None]]:
        """Each planned item with its record (None when not generated yet). Streams: one at a time."""
        for e in self.plan():
            yield e, self.record(e)

    def records_frame(self):
        """All records of the plan as a pandas DataFrame (one row per item; missing items have status 'missing')."""
        import pandas as pd

        rows = []
        for e, r in self.records():
            if r is None:
                rows.append({"backend": e.backend, "prompt_id": e.prompt_id, "seed": e.seed, "key": e.key,
                             "status": "missing"})
            else:
                d = r.model_dump()
                d.pop("applied", None)
                rows.append(d)
        return pd.DataFrame(rows)
