"""The score layout inside a run folder: where scoring keeps what it computed, and the only code that knows it.

    scores/scorers.json                       every scorer identity ever used on this run, by slug
                                              (scorer kind, model, version, identity, engines, when used,
                                              why unavailable)
    scores/details/<slug>/<kk>/<cache_key>.json
                                              one scored (scorer, image, inputs): a ScoreDetail
    scores/scores.parquet                     the table: one row per item x metric x scorer
    scores/table.txt.json                     the terminal table with a stamp of its inputs

Every file is written atomically (store/files.py: atomic_write_*), so a killed scoring pass loses nothing finished.
Detail files written by earlier versions have the same fields and read unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from .files import atomic_write_bytes, atomic_write_json, remove_partial_files

SCORES_DIR = "scores"
TABLE = "scores.parquet"
TABLE_INPUTS = "table-inputs.json"   # what the table was built from: the plan and each record's status
REGISTRY = "scorers.json"
TEXT_CACHE = "table.txt.json"


class MetricValue(BaseModel):
    """One stored value: None (with the reason) when the metric could not be computed."""

    model_config = ConfigDict(extra="allow")
    metric: str
    variant: str
    value: float | None
    missing_reason: str | None = None


class ScoreDetail(BaseModel):
    """scores/details/<slug>/<kk>/<cache_key>.json: one scored (scorer identity, image, inputs)."""

    model_config = ConfigDict(extra="allow")
    cache_key: str
    scorer_id: str
    scorer: str
    model: str
    version: str
    image_sha256: str
    inputs: dict[str, Any]
    first_item: dict[str, Any]       # backend, prompt_id, seed of the item first scored with this key
    values: list[MetricValue]
    details: dict[str, Any]          # the scorer's own (OCR boxes, per-target outcomes, CLIP cosines, ...)
    scored_at: str


class ScoreStore:
    """The scores/ part of one run folder."""

    def __init__(self, run_dir: str | Path):
        self.root = Path(run_dir)
        self.dir = self.root / SCORES_DIR

    # -- detail files --
    def detail_path(self, scorer_id: str, cache_key: str) -> Path:
        return self.dir / "details" / scorer_id / cache_key[:2] / f"{cache_key}.json"

    def has_detail(self, scorer_id: str, cache_key: str) -> bool:
        return self.detail_path(scorer_id, cache_key).is_file()

    def read_detail(self, scorer_id: str, cache_key: str) -> dict[str, Any] | None:
        """The stored detail as a dict (fields of ScoreDetail); None when absent or unreadable."""
        try:
            return json.loads(self.detail_path(scorer_id, cache_key).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None

    def iter_details(self, scorer_id: str):
        """Every readable stored detail of one scorer identity (dicts, in no particular order)."""
        folder = self.dir / "details" / scorer_id
        for p in sorted(folder.glob("*/*.json")) if folder.is_dir() else []:
            d = self.read_detail(scorer_id, p.stem)
            if d is not None:
                yield d

    def write_detail(self, detail: ScoreDetail) -> None:
        atomic_write_json(self.detail_path(detail.scorer_id, detail.cache_key), detail.model_dump(exclude_unset=True))

    # -- the scorer registry --
    @property
    def registry_path(self) -> Path:
        return self.dir / REGISTRY

    def has_registry(self) -> bool:
        return self.registry_path.is_file()

    def read_registry(self) -> dict[str, dict[str, Any]]:
        p = self.registry_path
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}

    def write_registry(self, registry: dict[str, dict[str, Any]]) -> None:
        atomic_write_json(self.registry_path, registry)

    # -- the table and its terminal text --
    @property
    def table_path(self) -> Path:
        return self.dir / TABLE

    def has_table(self) -> bool:
        return self.table_path.is_file()

    def table_bytes(self) -> bytes:
        return self.table_path.read_bytes() if self.table_path.is_file() else b""

    def write_table_bytes(self, data: bytes) -> None:
        atomic_write_bytes(self.table_path, data)

    def read_table_inputs(self) -> str | None:
        """The signature of the plan and records the table was last built from (None: unknown, e.g. an older folder)."""
        try:
            d = json.loads((self.dir / TABLE_INPUTS).read_text(encoding="utf-8"))
            return d.get("inputs") if isinstance(d, dict) else None
        except (OSError, ValueError):
            return None

    def write_table_inputs(self, signature: str) -> None:
        atomic_write_json(self.dir / TABLE_INPUTS, {"inputs": signature})

    def read_text_cache(self) -> dict[str, Any] | None:
        try:
            d = json.loads((self.dir / TEXT_CACHE).read_text(encoding="utf-8"))
            return d if isinstance(d, dict) else None
        except (OSError, ValueError):
            return None

    def write_text_cache(self, stamp: str, text: str) -> None:
        atomic_write_json(self.dir / TEXT_CACHE, {"stamp": stamp, "text": text})

    def files(self) -> list[tuple[str, Path]]:
        """(name in the run folder, path) of the files the score table is made of, for stamps of derived files."""
        return [(f"{SCORES_DIR}/{TABLE}", self.table_path), (f"{SCORES_DIR}/{REGISTRY}", self.registry_path)]

    def prepare(self) -> None:
        """Make scores/ and remove the temporary files a killed pass left."""
        self.dir.mkdir(exist_ok=True)
        remove_partial_files(self.dir)
