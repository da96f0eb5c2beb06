"""Agreement between a scorer and human labels: pure functions over paired lists.

    accuracy(human, predicted)        share of items where the 0/1 labels agree
    cohen_kappa(human, predicted)     (p_o - p_e) / (1 - p_e), chance agreement p_e from the two
                                      raters' marginals; 1.0 when both raters use one and the same
                                      label throughout (p_e = 1 and perfect agreement), NaN when
                                      p_e = 1 without agreement (cannot happen for 0/1) or no items
    spearman(x, y)                    Pearson correlation of the average ranks (ties share the mean
                                      rank); NaN with fewer than 2 items or a constant side
    bootstrap_agreement(...)          percentile-bootstrap CI of any of these, resampling items
                                      (2,000 resamples, fixed RNG seed, both returned)
    wilson_accuracy(human, predicted) accuracy with the continuity-corrected Wilson score interval (n =
                                      items): the one `agreement_summary` reports, since a bootstrap of
                                      a perfect agreement is the zero-width [1, 1]. Kappa and Spearman
                                      keep the bootstrap; at perfect agreement every resample gives 1,
                                      so read their [1, 1] together with the accuracy's interval.

Human verdicts map to a binary label: correct -> 1; minor-errors, garbled, no-text -> 0
(VERDICT_LABEL). Items are whatever unit was labelled (one image each).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .stats import CONFIDENCE, N_RESAMPLES, RNG_SEED

VERDICTS = ("correct", "minor-errors", "garbled", "no-text")
VERDICT_LABEL = {"correct": 1, "minor-errors": 0, "garbled": 0, "no-text": 0}


def _pair(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired lists differ in length ({x.size} vs {y.size})")
    return x, y


def accuracy(human: Sequence[float], predicted: Sequence[float]) -> float:
    """Share of items whose 0/1 labels agree; NaN when there are none."""
    h, p = _pair(human, predicted)
    return float(np.mean(h == p)) if h.size else math.nan


def cohen_kappa(human: Sequence[float], predicted: Sequence[float]) -> float:
    """Cohen's kappa of two raters over the same items (any discrete labels)."""
    h, p = _pair(human, predicted)
    n = h.size
    if n == 0:
        return math.nan
    labels = np.union1d(h, p)
    po = float(np.mean(h == p))
    pe = float(sum(np.mean(h == c) * np.mean(p == c) for c in labels))
    if pe >= 1.0:
        return 1.0 if po == 1.0 else math.nan
    return (po - pe) / (1.0 - pe)


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=float)
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho (average ranks for ties); NaN with < 2 items or when one side is constant."""
    a, b = _pair(x, y)
    if a.size < 2:
        return math.nan
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    n: int
    confidence: float = CONFIDENCE
    n_resamples: int = N_RESAMPLES
    rng_seed: int = RNG_SEED
    method: str = "bootstrap-percentile"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def bootstrap_agreement(statistic: Callable[[np.ndarray, np.ndarray], float], a: Sequence[float],
                        b: Sequence[float], *, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE,
                        rng_seed: int = RNG_SEED) -> Estimate:
    """statistic(a, b) with a percentile-bootstrap CI resampling items (pairs move together).

    Resamples where the statistic is undefined (NaN, e.g. kappa or Spearman on a constant resample)
    are left out of the percentiles."""
    x, y = _pair(a, b)
    n = x.size
    value = statistic(x, y) if n else math.nan
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, confidence, n_resamples, rng_seed)
    rng = np.random.default_rng(rng_seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    stats = np.array([statistic(x[i], y[i]) for i in idx], dtype=float)
    stats = stats[np.isfinite(stats)]
    if not stats.size:
        return Estimate(value, math.nan, math.nan, n, confidence, n_resamples, rng_seed)
    alpha = (1 - confidence) / 2
    return Estimate(value, float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha)), n, confidence,
                    n_resamples, rng_seed)


def wilson_accuracy(human: Sequence[float], predicted: Sequence[float], *,
                    confidence: float = CONFIDENCE) -> Estimate:
    """Accuracy with the continuity-corrected Wilson score interval over the n items (never zero width)."""
    from .stats import wilson_bounds

    h, p = _pair(human, predicted)
    if h.size == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, confidence, 0, 0, "wilson-cc")
    from scipy.stats import norm

    acc = accuracy(h, p)
    lo, hi = wilson_bounds(acc, h.size, norm.ppf(1 - (1 - confidence) / 2))
    return Estimate(acc, float(lo), float(hi), int(h.size), confidence, 0, 0, "wilson-cc")


def agreement_summary(human: Sequence[float], predicted: Sequence[float], *, similarity: Sequence[float] | None = None,
                      rating: Sequence[float] | None = None, n_resamples: int = N_RESAMPLES,
                      rng_seed: int = RNG_SEED) -> dict[str, Any]:
    """Accuracy, kappa (with CIs), false positives/negatives of 0/1 predictions against 0/1 human
    labels; Spearman of similarity against rating (with CI) when both are given."""
    h, p = _pair(human, predicted)
    out: dict[str, Any] = {
        "n": int(h.size),
        "accuracy": wilson_accuracy(h, p).as_dict(),
        "kappa": bootstrap_agreement(cohen_kappa, h, p, n_resamples=n_resamples, rng_seed=rng_seed).as_dict(),
        "false_positives": int(np.sum((p == 1) & (h == 0))),
        "false_negatives": int(np.sum((p == 0) & (h == 1))),
        "human_positive": int(np.sum(h == 1)),
    }
    if similarity is not None and rating is not None:
        out["spearman"] = bootstrap_agreement(spearman, similarity, rating, n_resamples=n_resamples,
                                              rng_seed=rng_seed).as_dict()
    return out
