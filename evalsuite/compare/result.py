"""The typed result of a comparison (pydantic). `compare.json` is `CompareResult.to_json()`: the same keys and
layout as before the types (a key that was not computed is left out, never written as null).

Every model also reads like the mapping it replaces (`result["pairs"][0]["metrics"]["clip_score"]["decision"]`,
`entry.get("ci90")`, `"mcnemar" in entry`), so code and notebooks written against compare.json keep working.
The report side (evalsuite.report.compare_page) depends on this module only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class _Record(BaseModel):
    """A model that also answers like a dict over the keys that were set."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    def _has(self, key: str) -> bool:
        return key in self.model_fields_set or key in (self.__pydantic_extra__ or {})

    def __getitem__(self, key: str) -> Any:
        if not self._has(key):
            raise KeyError(key)
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._has(key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if self._has(key) else default

    def keys(self) -> list[str]:
        return [k for k in self.to_dict()]

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class Side(_Record):
    run: str
    prompt_set: dict[str, Any] = Field(default_factory=dict)
    seeds: list[int] = Field(default_factory=list)


class HardGates(_Record):
    checked: int
    failed: list[dict[str, Any]] = Field(default_factory=list)   # {prompt_id, seed, reason}
    decision: str                                                # pass | fail | inconclusive


class MetricResult(_Record):
    """One metric of one backend pair: the paired delta, its intervals and the decision against the margin."""

    metric: str
    variant: str = ""
    unit: str = ""
    margin: float | None = None
    gated: bool = False
    scorer_id: str | None = None
    n_applicable: int = 0
    allowed_missing: bool = False
    decision: str                 # pass | fail | inconclusive | reported | missing | not applicable
    missing_reason: str | None = None
    inconclusive_reason: str | None = None
    n_items: int | None = None
    n_prompts: int | None = None
    baseline_mean: float | None = None
    candidate_mean: float | None = None
    delta: float | None = None
    ci90: list[float] | None = None
    ci95: list[float] | None = None
    sd: float | None = None
    ci_method: str | None = None
    min_prompts: int | None = None
    prompts_needed: int | None = None
    per_prompt_delta: dict[str, float] | None = None
    mcnemar: dict[str, Any] | None = None


class PairResult(_Record):
    """A baseline backend against a candidate backend."""

    baseline_backend: str
    candidate_backend: str
    baseline_spec: str
    candidate_spec: str
    labelled_noise: bool = False
    n_pairs: int
    n_prompts: int
    unmatched: list[dict[str, Any]] = Field(default_factory=list)   # {prompt_id, seed, side, reason}
    hard_gates: HardGates
    metrics: dict[str, MetricResult] = Field(default_factory=dict)
    # psnr, ssim, ceiling, clip_cosine, lpips (each a summary or {missing_reason}) and gates {name: decision}
    fidelity: dict[str, Any] = Field(default_factory=dict)
    costs: dict[str, Any] = Field(default_factory=dict)
    regressed: list[dict[str, Any]] = Field(default_factory=list)


class Verdict(_Record):
    decision: str                 # pass | fail | inconclusive
    exit_code: int


class CompareResult(_Record):
    version: str
    baseline: Side
    candidate: Side
    pairs: list[PairResult] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    decision_confidence: float
    allow_missing: list[str] = Field(default_factory=list)
    verdict: Verdict

    def to_json(self) -> Any:
        """What compare.json holds: the set keys, NaN as null, infinities as "inf"/"-inf"."""
        return jsonable(self.to_dict())


def jsonable(x: Any) -> Any:
    if isinstance(x, float):
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    if isinstance(x, BaseModel):
        return jsonable(x.model_dump(exclude_unset=True))
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return jsonable(x.item())
    return x
