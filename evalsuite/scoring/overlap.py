"""Scoring while generation goes on: a worker thread that scores each finished item as it lands.

`evalsuite.run(..., score=True, overlap=True)` (the default) starts a ScoringWorker, hands it every
item whose record says ok, and at the end calls `score_run` as before. The worker scores through the same
`score_items` as `score_run` (same scorers, cache keys and detail files), so the final `score_run` finds
them done, scores whatever the worker did not get to (or failed on, recording the reason), and writes the
table: the result is the one generate-then-score gives, while a run costs about max(generation, scoring)
instead of their sum (when generation and scoring do not fight over the same cores: a GPU generating while
OCR runs on the CPU, or both on a GPU).

The scoring models are loaded in the calling thread before the worker starts (see start()).
Items are scored in batches as they arrive (a batch is scored when full or when the queue runs dry); other
batch boundaries than score_run's can move a CLIP cosine in its last float32 bits (about 1e-7), never more.
"""

from __future__ import annotations

import queue
import sys
import threading
from pathlib import Path

from ..runfolder import PlanEntry, RunFolder
from ..store import ScoreStore


class ScoringWorker:
    def __init__(self, run_dir: str | Path, scorers=("clip", "ocr"), *, ocr=None, clip_model: str | None = None,
                 clip_batch_size: int | None = None, device: str | None = None, log=None, judge: str | None = None):
        from . import ScoreOptions, ScoreResult, UnitCounts, make_scorers, parse_scorers, validate_options

        self.root = Path(run_dir)
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        kinds = parse_scorers(scorers)
        validate_options(kinds, ocr, clip_model, clip_batch_size, judge)
        self.units = make_scorers(kinds, ScoreOptions(ocr=ocr, clip_model=clip_model, judge=judge,
                                                      clip_batch_size=clip_batch_size, device=device))
        self.batch = max((u.batch_size for u in self.units), default=1)
        self.result = ScoreResult(run_dir=self.root, units=self.units, counts={u.slug: UnitCounts() for u in self.units})
        self.errors: dict[tuple[str, str], str] = {}
        self.failure: BaseException | None = None
        self._queue: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._registry = {u.slug: u.registry_entry() for u in self.units}
        self._ready: list = []

    def start(self) -> "ScoringWorker":
        """Load the scoring models here, in the calling thread, then start the worker thread.

        Loading first matters: building a model draws on torch's global random generator and may patch
        global state (init_empty_weights); done in a thread while a backend builds its (random-weight)
        model, it would change that model. Inference in the thread touches neither. A scorer that cannot be
        had is left out: the final score_run stores its metrics as missing, with the reason.
        """
        from . import load_scorers

        self._ready = load_scorers(self.units, self._registry, self.result, {u.slug: 1 for u in self.units})
        self._rf = RunFolder(self.root)
        self._store = ScoreStore(self.root)
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
        """Stop after the batch in hand (its files are written atomically); the rest is left to score_run."""
        self._cancel.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(60)

    @property
    def scored(self) -> int:
        return sum(c.scored for c in self.result.counts.values())

    # -- the thread --

    def _loop(self) -> None:
        pending: list[PlanEntry] = []
        try:
            while not self._cancel.is_set():
                try:
                    entry = self._queue.get(timeout=0.2) if pending else self._queue.get()
                except queue.Empty:   # nothing new: score the partial batch now
                    self._flush(pending)
                    continue
                if entry is None:
                    break
                pending.append(entry)
                if len(pending) >= self.batch:
                    self._flush(pending)
            if not self._cancel.is_set():
                self._flush(pending)
        except BaseException as e:  # noqa: BLE001 - the final score_run redoes what is missing and reports
            self.failure = e
            self.log(f"scoring worker stopped: {type(e).__name__}: {e}".splitlines()[0][:300]
                     + "; the rest is scored after generation")

    def _flush(self, pending: list[PlanEntry]) -> None:
        from . import pending_jobs, score_items

        if pending and self._ready:
            records = [(e, self._rf.record(e)) for e in pending]
            todo = pending_jobs(self._rf, self._store, self._ready, records, prompts=self._prompts)
            score_items(self._store, self._ready, todo, self.result, self.errors, self._registry, loaded=True)
        pending.clear()
