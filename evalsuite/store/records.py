"""The pydantic schemas of a run folder, and where an item's files go.

    run.json                  RunInfo (with a BackendInfo per backend label)
    plan.jsonl                one PlanEntry a line
    items/<backend>/<prompt-id>/s<seed>-<key12>.png/.json     the image and its ItemRecord (item_paths)
    Problem                   one damaged or inconsistent thing in a run folder (evalsuite check lists them)

An item's key (item_key) hashes everything that changes its pixels. A folder written by an earlier version
reads unchanged: fields are only ever added, with defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from .files import stable_hash

if TYPE_CHECKING:
    from ..promptset import Prompt

SCHEMA_VERSION = 1

Status = Literal["ok", "failed", "filtered"]


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


class Problem(BaseModel):
    """One damaged or inconsistent thing in a run folder (evalsuite check lists them)."""

    path: str                         # relative to the run folder
    line: int | None = None           # 1-based line of a JSON-lines file
    what: str
    fix: str = ""                     # what a repair does ("" = nothing to repair here)

    def where(self) -> str:
        return self.path + (f" line {self.line}" if self.line else "")

    def __str__(self) -> str:
        return f"{self.where()}: {self.what}" + (f" ({self.fix})" if self.fix else "")
