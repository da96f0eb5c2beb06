"""Scoring while generation goes on: a worker thread that scores each finished item as it lands.

`evalsuite.run(..., score=True, overlap=True)` (the default) starts a ScoringWorker, hands it every
item whose record says ok, and at the end calls `score_run` as before. The worker writes the same
detail files through the same functions as `score_run` (`_score_clip`, `_score_ocr`, `_combine_ocr`,
same cache keys), so the final `score_run` finds them done, scores whatever the worker did not get to
(or failed on, recording the reason), and writes the table: the result is the one generate-then-score
gives, while a run costs about max(generation, scoring) instead of their sum (when generation and
scoring do not fight over the same cores: a GPU generating while OCR runs on the CPU, or both on a GPU).

The scoring models are loaded in the calling thread before the worker starts (see start()).
CLIP is batched as items arrive (a batch is scored when full or when the queue runs dry); other batch
boundaries than score_run's can move a CLIP cosine in its last float32 bits (about 1e-7), never more.
"""

from __future__ import annotations

import queue
import sys
import threading
from pathlib import Path
from typing import Any

from ..runfolder import PlanEntry, RunFolder


class ScoringWorker:
    def __init__(self, run_dir: str | Path, scorers=("clip", "ocr"), *, ocr=None, clip_model: str | None = None,
                 clip_batch_size: int | None = None, device: str | None = None, log=None):
        from . import ScoreResult, UnitCounts, make_units, parse_scorers
        from .clip import DEFAULT_BATCH_SIZE, parse_clip_model
        from .ocr import parse_engines

        self.root = Path(run_dir)
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        chosen = parse_scorers(scorers)
        self.engines = parse_engines(ocr)
        self.clip_spec = parse_clip_model(clip_model) if "clip" in chosen else None
        self.batch = clip_batch_size or DEFAULT_BATCH_SIZE
        self.device = device
        self.units = make_units(chosen, self.engines, self.clip_spec)
        self.result = ScoreResult(run_dir=self.root, units=self.units, counts={u.slug: UnitCounts() for u in self.units})
        self.errors: dict[tuple[str, str], str] = {}
        self.failure: BaseException | None = None
        self._queue: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._registry = {u.slug: u.registry_entry() for u in self.units}
        self._clip_off = False

    def start(self) -> "ScoringWorker":
        """Load the scoring models here, in the calling thread, then start the worker thread.

        Loading first matters: building a model draws on torch's global random generator and may patch
        global state (init_empty_weights); done in a thread while a backend builds its (random-weight)
        model, it would change that model. Inference in the thread touches neither.
        """
        from PIL import Image

        from .clip import ClipUnavailable, load_clip
        from .ocr import read_boxes

        if self.clip_spec is not None:
            try:
                load_clip(self.clip_spec, self.device)
            except ClipUnavailable:
                self._clip_off = True    # the final score_run stores the CLIP metrics as missing, with the reason
        blank = Image.new("RGB", (32, 32), "white")
        for e in self.engines:
            read_boxes(e, blank)
        self._rf = RunFolder(self.root)
        self._prompts = self._rf.prompts()
        self._thread = threading.Thread(target=self._loop, name="scoring-worker", daemon=True)
        self._thread.start()
        return self

    def submit(self, entry: PlanEntry) -> None:
        """Queue a finished item (its record must be on disk); thread-safe, returns at once."""
        self._queue.put(entry)

    def finish(self) -> None:
        """Score what is queued, then stop (blocks until done)."""
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()

    def cancel(self) -> None:
        """Stop after the item in hand (its files are written atomically); the rest is left to score_run."""
        self._cancel.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(60)

    @property
    def scored(self) -> int:
        return sum(c.scored for c in self.result.counts.values())

    # -- the thread --

    def _loop(self) -> None:
        clip_units = [u for u in self.units if u.scorer == "clip"]
        pending: list[tuple[Any, Any, Any, str]] = []
        try:
            while not self._cancel.is_set():
                try:
                    entry = self._queue.get(timeout=0.2) if pending else self._queue.get()
                except queue.Empty:   # nothing new: score the partial CLIP batch now
                    self._flush_clip(clip_units, pending)
                    continue
                if entry is None:
                    break
                pending.extend(self._one(entry, clip_units))
                if len(pending) >= self.batch:
                    self._flush_clip(clip_units, pending)
            if not self._cancel.is_set():
                self._flush_clip(clip_units, pending)
        except BaseException as e:  # noqa: BLE001 - the final score_run redoes what is missing and reports
            self.failure = e
            self.log(f"scoring worker stopped: {type(e).__name__}: {e}".splitlines()[0][:300]
                     + "; the rest is scored after generation")

    def _one(self, entry: PlanEntry, clip_units) -> list:
        from . import _combine_ocr, _detail_path, _score_ocr

        rec = self._rf.record(entry)
        if rec is None or rec.status != "ok" or not rec.image_sha256:
            return []
        prompt = self._prompts.get(entry.prompt_id)
        if prompt is None:
            return []
        todo = {}
        for u in self.units:
            k = u.cache_key(rec.image_sha256, prompt)
            if not _detail_path(self.root, u.slug, k).is_file():
                todo[u.slug] = [(entry, rec, prompt, k)]
        singles = [u for u in self.units if u.scorer == "ocr" and len(u.engines) == 1]
        if any(u.slug in todo for u in singles):
            _score_ocr(self.root, singles, {u.slug: todo.get(u.slug, []) for u in singles}, False, self.result,
                       self.errors)
        for u in self.units:
            if u.scorer == "ocr" and len(u.engines) > 1 and u.slug in todo:
                _combine_ocr(self.root, u, [x for x in singles if x.engines[0] in u.engines], todo[u.slug],
                             self.result, self.errors)
        if clip_units and clip_units[0].slug in todo and not self._clip_off:
            return todo[clip_units[0].slug]
        return []

    def _flush_clip(self, clip_units, pending: list) -> None:
        from . import _score_clip

        if not pending or not clip_units:
            pending.clear()
            return
        u = clip_units[0]
        _score_clip(self.root, u, self.clip_spec, list(pending), self.batch, self.device, False, self.result,
                    self.errors, self._registry, lambda m: None)
        pending.clear()
        if self.result.counts[u.slug].unavailable:  # no weights: the final score_run stores them as missing
            self._clip_off = True
