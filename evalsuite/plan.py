"""The plan of a run: every (backend, prompt, seed) as a typed PlannedItem with its content-addressed key.

An item's key hashes everything that changes its pixels (runfolder.item_key); its image and record paths
follow from the key, so a rerun finds what exists and generates only the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from .promptset import Prompt, PromptSet
from .runfolder import PlanEntry, item_key, item_paths


class PlannedItem(NamedTuple):
    """One item to have: its plan entry (backend label, prompt id, seed, key, paths), the prompt and the size."""

    entry: PlanEntry
    prompt: Prompt
    width: int
    height: int


class Plan:
    """Per backend label: the planned items in plan order, and how many prompts the backend skips
    (backend.accepts(prompt) is False: the reference backend has nothing to draw without target text)."""

    def __init__(self, run_dir: Path, backends: list[Any], prompt_set: PromptSet, seeds: list[int],
                 size: tuple[int, int] | None):
        self.entries: dict[str, list[PlannedItem]] = {}
        self.skipped: dict[str, int] = {}
        for b in backends:
            w, h = size or b.default_size
            bkey = b.key()
            rows: list[PlannedItem] = []
            skipped = 0
            for p in prompt_set.prompts:
                if not b.accepts(p):
                    skipped += 1
                    continue
                for s in seeds:
                    k = item_key(bkey, p, s, w, h, b.item_extra(p, s))
                    img, rec = item_paths(b.label, p.id, s, k)
                    rows.append(PlannedItem(PlanEntry(backend=b.label, prompt_id=p.id, seed=s, key=k, image=img,
                                                      record=rec), p, w, h))
            self.entries[b.label] = rows
            self.skipped[b.label] = skipped
