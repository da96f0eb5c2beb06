"""The scorer contract: what every scorer declares and does, so the orchestration (`score_items`) never asks
which kind it holds.

A scorer kind is a subclass of Scorer in its own file, named in scoring/registry.py. One instance is one
scorer identity (a CLIP model, one OCR engine, the best-of combination of engines): its `identity` dict is
hashed into its slug and every cache key, so another model or engine adds rows beside the old ones.

    kind                 class attribute: the name in --scorers and in the `scorer` column
    from_options(opts)   the identities to score with for the given ScoreOptions (validates them: one-line
                         EvalsuiteError on bad input)
    check_options(opts)  validate the options before anything is generated; loads nothing
    inputs(prompt)       the prompt fields the scores depend on (hashed into the cache key, stored in details)
    metrics_for(prompt)  the (metric, variant) rows it produces for a prompt (missing rows say why)
    load(entry)          make the model ready (entry: its scorers.json record, which may say it was unavailable);
                         raise ScorerUnavailable(reason) when it cannot be had: its metrics are stored missing
    score_batch(jobs, images, store)
                         one result per job: (values, details), or a string, the reason that item failed
    batch_size           how many jobs one score_batch call takes at most
    needs_image          False for a scorer that only reads other identities' details (the OCR combination)

Metrics it produces are described once in metrics/registry.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, Sequence

from ..runfolder import stable_hash


class Job(NamedTuple):
    """One item to score with one scorer identity."""

    entry: Any        # PlanEntry
    rec: Any          # ItemRecord (status ok, image_sha256 set)
    prompt: Any       # Prompt
    key: str          # the cache key of (scorer identity, image, inputs)


@dataclass(frozen=True)
class ScoreOptions:
    """What the scorers are chosen with (the CLI's --scorers, --ocr, --clip-model, --clip-batch-size, --device,
    --judge)."""

    ocr: Any = None
    clip_model: str | None = None
    clip_batch_size: int | None = None
    device: str | None = None
    judge: str | None = None


class ScorerUnavailable(Exception):
    """The scorer cannot run here; the message is the stored missing reason. `notes`: more fields kept in its
    scorers.json entry beside `unavailable` (each named `unavailable_*`), removed once it runs again."""

    def __init__(self, reason: str, notes: dict[str, Any] | None = None):
        super().__init__(reason)
        self.notes = dict(notes or {})



@dataclass(eq=False)
class Scorer:
    """One scorer identity. Subclasses set `kind` and implement inputs, metrics_for and score_batch."""

    scorer: str
    model: str
    version: str
    identity: dict[str, Any]
    engines: tuple[str, ...] = ()
    options: ScoreOptions = field(default_factory=ScoreOptions, repr=False)

    kind: ClassVar[str] = ""
    batch_size: ClassVar[int] = 1
    needs_image: ClassVar[bool] = True

    # -- identity --
    @property
    def slug(self) -> str:
        label = re.sub(r"[^A-Za-z0-9._-]+", "-", self.model)[:40].strip("-")
        return f"{self.scorer}-{label}-{stable_hash(self.identity)[:10]}"

    def cache_key(self, image_sha256: str, prompt) -> str:
        return stable_hash({"scorer": self.identity, "image": image_sha256, "inputs": self.inputs(prompt)})

    def registry_entry(self) -> dict[str, Any]:
        return {"scorer": self.scorer, "model": self.model, "version": self.version, "identity": self.identity,
                "engines": list(self.engines)}

    @classmethod
    def from_registry(cls, entry: dict[str, Any]) -> "Scorer":
        """The identity a scorers.json entry records (enough for cache keys and missing rows, not for scoring)."""
        return cls(entry["scorer"], entry["model"], entry["version"], entry["identity"], tuple(entry.get("engines", ())))

    # -- the contract --
    @classmethod
    def check_options(cls, opts: ScoreOptions) -> None:
        return None

    @classmethod
    def from_options(cls, opts: ScoreOptions) -> list["Scorer"]:
        raise TypeError(f"scorer kind {cls.kind!r} defines no from_options")

    def inputs(self, prompt) -> dict[str, Any]:
        return {"prompt": prompt.prompt}

    def metrics_for(self, prompt) -> list[tuple[str, str]]:
        raise TypeError(f"scorer kind {self.kind!r} defines no metrics_for")

    def load(self, entry: dict[str, Any]) -> None:
        return None

    def score_batch(self, jobs: Sequence[Job], images: Sequence[Any], store) -> list:
        raise TypeError(f"scorer kind {self.kind!r} defines no score_batch")

    @property
    def label(self) -> str:
        return f"{self.scorer} {self.model}"
