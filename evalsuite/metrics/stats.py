"""Confidence intervals over prompts (spec: metrics.md, "Units of analysis" and "Paired comparison").

Seeds are nested in prompts: a prompt's seeds are averaged first, then the mean over prompts is
taken; the percentile bootstrap resamples prompts (all seeds of a prompt move together),
2,000 resamples by default, with a fixed RNG seed that is returned with the interval.

    bootstrap_ci(values_per_prompt)           -> CI of the mean over prompts
    paired_bootstrap_ci(baseline, candidate)  -> CI of the mean per-prompt delta (candidate - baseline)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

N_RESAMPLES = 2000
RNG_SEED = 20240601
CONFIDENCE = 0.95


@dataclass(frozen=True)
class CI:
    mean: float
    low: float
    high: float
    n: int                     # prompts
    confidence: float = CONFIDENCE
    n_resamples: int = N_RESAMPLES
    rng_seed: int = RNG_SEED

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def prompt_means(values_per_prompt: Sequence[Any] | Mapping[Any, Any]) -> np.ndarray:
    """One value per prompt: a prompt given as a sequence of seed values is averaged (NaN ignored);
    prompts with no finite value are dropped."""
    if isinstance(values_per_prompt, Mapping):
        values_per_prompt = list(values_per_prompt.values())
    out = []
    for v in values_per_prompt:
        arr = np.asarray(v, dtype=float).ravel()
        arr = arr[np.isfinite(arr)]
        if arr.size:
            out.append(arr.mean())
    return np.asarray(out, dtype=float)


def _percentile_ci(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def bootstrap_ci(values_per_prompt: Sequence[Any] | Mapping[Any, Any], *, n_resamples: int = N_RESAMPLES,
                 confidence: float = CONFIDENCE, rng_seed: int = RNG_SEED) -> CI:
    """Mean over prompts (seeds averaged within a prompt) with a percentile bootstrap CI over prompts.

    With no prompts the result is NaN; with one prompt the interval is that single value.
    """
    x = prompt_means(values_per_prompt)
    n = int(x.size)
    if n == 0:
        return CI(math.nan, math.nan, math.nan, 0, confidence, n_resamples, rng_seed)
    rng = np.random.default_rng(rng_seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    stats = x[idx].mean(axis=1)
    lo, hi = _percentile_ci(stats, confidence)
    return CI(float(x.mean()), lo, hi, n, confidence, n_resamples, rng_seed)


def paired_bootstrap_ci(baseline: Mapping[Any, Any], candidate: Mapping[Any, Any], *,
                        n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE,
                        rng_seed: int = RNG_SEED) -> tuple[CI, list[Any]]:
    """CI of the mean per-prompt delta (candidate - baseline), resampling the prompts present in both.

    baseline/candidate map prompt id -> a value or the seed values of that prompt. Returns the CI and
    the prompt ids that are in only one of the two (listed, never silently dropped).
    """
    common = [k for k in baseline if k in candidate]
    unmatched = sorted([k for k in baseline if k not in candidate] + [k for k in candidate if k not in baseline],
                       key=str)
    deltas = []
    for k in common:
        b, c = prompt_means([baseline[k]]), prompt_means([candidate[k]])
        if b.size and c.size:
            deltas.append(c[0] - b[0])
    return bootstrap_ci([[d] for d in deltas], n_resamples=n_resamples, confidence=confidence,
                        rng_seed=rng_seed), unmatched
