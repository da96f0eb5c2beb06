"""Confidence intervals over prompts (units of analysis: a prompt's seeds are averaged first, then prompts).

What evalsuite reports (chosen by simulation, bench/ci_coverage.py; reasons in docs/scores.md):

    rate_ci(values_per_prompt)        rates and 0-1 scores: continuity-corrected Wilson-t with an effective n
    mean_ci(values_per_prompt)        unbounded means: Student-t on the prompt means
    paired_rate_delta_ci(deltas)      compare's per-prompt rate deltas: Student-t with two pseudo-prompts
    min_prompts_for_margin(margin)    the fewest paired prompts at which a tie can pass a rate margin
    MIN_PROMPTS, MIN_PAIRED_PROMPTS   labels need 10 prompts; a gated metric at least 5 paired prompts

Kept for callers (no reported number uses them; they collapse at small n):

    bootstrap_ci(values_per_prompt)           -> percentile bootstrap CI of the mean over prompts
    paired_bootstrap_ci(baseline, candidate)  -> the same for the mean per-prompt delta
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


# ---------------------------------------------------------------- intervals that hold at every size
#
# The percentile bootstrap above collapses at small n (40% coverage at 6 prompts, zero width whenever every
# prompt agrees). The intervals below are the ones evalsuite reports (bench/ci_coverage.py measures them):
#
# rate_ci   a rate in [0, 1] (text_exact, prompt_following, word recall, ...): the continuity-corrected Wilson score interval
#           on the mean of the prompt means with the Student-t quantile (df = n - 1) in place of z and an
#           effective sample size n_eff = clip(n * p(1-p) / s^2, n, n * seeds): a prompt mean's variance is
#           at most p(1-p), so n_eff >= n is never optimistic about prompts, and the seeds add what their
#           observed agreement allows, never more than one Bernoulli each. All-0 and all-1 keep a width.
# mean_ci   an unbounded mean (clip_score, similarities, PSNR): Student-t on the prompt means; one prompt
#           gives (-inf, inf): no interval can be claimed from one prompt.
# paired_rate_delta_ci   the mean per-prompt delta of a rate (in [-1, 1]): Student-t on the deltas with
#           two pseudo-prompts added, one at +1 and one at -1 (Bonett-Price's "add one discordant pair each
#           way", for prompt means): the variance never collapses to 0, so identical runs on a few prompts
#           do not give a confident [0, 0].

MIN_PROMPTS = 10          # labels ("usually correct", ...) and per-category labels need this many prompts
MIN_PAIRED_PROMPTS = 5    # a gated metric needs at least this many paired prompts (and what its margin needs)


def t_quantile(confidence: float, df: float) -> float:
    """Two-sided Student-t critical value (df < 1 is taken as 1)."""
    from scipy.stats import t

    return float(t.ppf(1 - (1 - confidence) / 2, max(df, 1.0)))


def _nested(values_per_prompt) -> tuple[np.ndarray, int]:
    """(prompt means, the largest number of seeds any prompt has)."""
    if isinstance(values_per_prompt, Mapping):
        values_per_prompt = list(values_per_prompt.values())
    k = 1
    for v in values_per_prompt:
        arr = np.asarray(v, dtype=float).ravel()
        k = max(k, int(np.isfinite(arr).sum()))
    return prompt_means(values_per_prompt), k


def wilson_bounds(p: np.ndarray, n_eff: np.ndarray, crit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised continuity-corrected Wilson score bounds (Newcombe 1998, method 4) for proportion(s) p with
    (effective) size n_eff and critical value crit; p = 0 gives low 0, p = 1 gives high 1."""
    p, n, z = np.broadcast_arrays(np.asarray(p, float), np.asarray(n_eff, float), np.asarray(crit, float))
    z2 = z * z
    den = 2 * (n + z2)
    with np.errstate(invalid="ignore"):
        lo = (2 * n * p + z2 - 1 - z * np.sqrt(np.maximum(z2 - 2 - 1 / n + 4 * p * (n * (1 - p) + 1), 0))) / den
        hi = (2 * n * p + z2 + 1 + z * np.sqrt(np.maximum(z2 + 2 - 1 / n + 4 * p * (n * (1 - p) - 1), 0))) / den
    lo = np.where(p <= 0, 0.0, np.clip(lo, 0.0, 1.0))
    hi = np.where(p >= 1, 1.0, np.clip(hi, 0.0, 1.0))
    return lo, hi


def effective_n(p: np.ndarray, s2: np.ndarray, n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """clip(n * p(1-p) / s^2, n, n*k); s^2 = 0 with 0 < p < 1 gives n*k, p in {0, 1} gives n."""
    p, s2, n, k = np.broadcast_arrays(*(np.asarray(a, float) for a in (p, s2, n, k)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ne = np.where(s2 > 0, n * p * (1 - p) / s2, np.where((p > 0) & (p < 1), n * k, n))
    return np.clip(np.nan_to_num(ne, nan=1.0), n, n * k)


def rate_bounds(x: np.ndarray, k: int | np.ndarray, *, confidence: float = CONFIDENCE
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised rate_ci: x is (..., n) prompt means in [0, 1], k the seeds per prompt; returns
    (mean, low, high) over the last axis (n >= 1)."""
    x = np.asarray(x, dtype=float)
    n = x.shape[-1]
    p = np.clip(x.mean(axis=-1), 0.0, 1.0)
    s2 = x.var(axis=-1, ddof=1) if n > 1 else np.zeros_like(p)
    lo, hi = wilson_bounds(p, effective_n(p, s2, n, k), t_quantile(confidence, n - 1))
    return x.mean(axis=-1), lo, hi


def mean_bounds(x: np.ndarray, *, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised mean_ci over the last axis: Student-t on the prompt means; (-inf, inf) from one prompt."""
    x = np.asarray(x, dtype=float)
    n = x.shape[-1]
    m = x.mean(axis=-1)
    if n == 1:
        return m, np.full_like(m, -np.inf), np.full_like(m, np.inf)
    half = t_quantile(confidence, n - 1) * x.std(axis=-1, ddof=1) / math.sqrt(n)
    return m, m - half, m + half


def paired_rate_delta_bounds(d: np.ndarray, *, confidence: float = CONFIDENCE
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised paired_rate_delta_ci over the last axis (deltas in [-1, 1])."""
    d = np.asarray(d, dtype=float)
    n = d.shape[-1]
    pad = np.broadcast_to(np.array([1.0, -1.0]), d.shape[:-1] + (2,))
    aug = np.concatenate([d, pad], axis=-1)
    half = t_quantile(confidence, n - 1) * aug.std(axis=-1, ddof=1) / math.sqrt(n + 2)
    m_aug = aug.mean(axis=-1)
    return d.mean(axis=-1), np.maximum(-1.0, m_aug - half), np.minimum(1.0, m_aug + half)


def _ci_from(bounds, n: int, confidence: float) -> CI:
    m, lo, hi = (float(np.asarray(b)) for b in bounds)
    return CI(m, lo, hi, n, confidence, 0, 0)


def rate_ci(values_per_prompt, *, confidence: float = CONFIDENCE) -> CI:
    """Mean over prompts of a rate in [0, 1] (seeds averaged first) with the small-sample Wilson-t interval
    described above. No prompts: NaN; the width is > 0 whatever the data."""
    x, k = _nested(values_per_prompt)
    if x.size == 0:
        return CI(math.nan, math.nan, math.nan, 0, confidence, 0, 0)
    return _ci_from(rate_bounds(x, k, confidence=confidence), int(x.size), confidence)


def mean_ci(values_per_prompt, *, confidence: float = CONFIDENCE) -> CI:
    """Mean over prompts with a Student-t interval on the prompt means; (-inf, inf) from one prompt."""
    x, _ = _nested(values_per_prompt)
    if x.size == 0:
        return CI(math.nan, math.nan, math.nan, 0, confidence, 0, 0)
    return _ci_from(mean_bounds(x, confidence=confidence), int(x.size), confidence)


def paired_rate_delta_ci(deltas: Sequence[float], *, confidence: float = CONFIDENCE) -> CI:
    """Mean per-prompt delta of a rate (each delta in [-1, 1]) with the t interval on the deltas plus two
    pseudo-prompts (+1, -1); the mean reported is the observed one, the interval never has zero width."""
    d = np.asarray([v for v in deltas if math.isfinite(v)], dtype=float)
    if d.size == 0:
        return CI(math.nan, math.nan, math.nan, 0, confidence, 0, 0)
    return _ci_from(paired_rate_delta_bounds(d, confidence=confidence), int(d.size), confidence)


def min_prompts_for_margin(margin: float, *, confidence: float = 0.90, rate: bool = True) -> int:
    """The fewest paired prompts at which a perfect tie (every delta 0) could pass a margin (same unit as the
    deltas: a rate's margin as a fraction, e.g. 0.03): below it no outcome can pass, so the gate says
    'too few prompts' instead. At least MIN_PAIRED_PROMPTS."""
    if not rate:
        return MIN_PAIRED_PROMPTS
    for n in range(MIN_PAIRED_PROMPTS, 100000):
        if paired_rate_delta_ci([0.0] * n, confidence=confidence).low > -margin:
            return n
    return 100000


def prompt_ci(values_per_prompt, *, rate: bool, confidence: float = CONFIDENCE) -> CI:
    """rate_ci for rates in [0, 1], mean_ci otherwise."""
    return rate_ci(values_per_prompt, confidence=confidence) if rate else mean_ci(values_per_prompt,
                                                                                  confidence=confidence)


# ---------------------------------------------------------------- decision statistics of paired comparisons
# (evalsuite.compare: a candidate against a baseline, per prompt, with a margin)

DECISION_CONFIDENCE = 0.90          # two-sided 90% CI = one-sided alpha 0.05 non-inferiority


REPORT_CONFIDENCE = 0.95


N_POWER = 6.2                       # (z_0.95 + z_0.80)^2: prompts for 80% power at one-sided alpha 0.05


def decide(ci_low: float, ci_high: float, bound: float) -> str:
    """Higher is better; `bound` is the worst acceptable value (-margin for deltas, a threshold for gates)."""
    if ci_low > bound:
        return "pass"
    if ci_high < bound:
        return "fail"
    return "inconclusive"


def prompts_needed(sd: float, distance: float) -> int | None:
    """n ~ 6.2 sd^2 / distance^2 (80% power, one-sided alpha 0.05); None when it cannot be estimated."""
    if not (math.isfinite(sd) and math.isfinite(distance)) or distance == 0:
        return None
    return max(2, math.ceil(N_POWER * sd * sd / (distance * distance)))


def mcnemar(pairs: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """Discordant counts of a binary metric over paired items and McNemar's exact two-sided p-value."""
    worse = sum(1 for b, c in pairs if b >= 0.5 and c < 0.5)      # baseline right, candidate wrong
    better = sum(1 for b, c in pairs if b < 0.5 and c >= 0.5)
    n = worse + better
    if n == 0:
        p = 1.0
    else:
        k = min(worse, better)
        p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
    return {"baseline_only": worse, "candidate_only": better, "both": sum(1 for b, c in pairs if b >= 0.5 and c >= 0.5),
            "neither": sum(1 for b, c in pairs if b < 0.5 and c < 0.5), "p_value": p}


def delta_ci(values: Sequence[float], confidence: float, rate_scale: float | None = None):
    """Student-t on the per-prompt values; rate_scale (100 for percentage points, 1 for a 0-1 scale): the values
    are deltas of a rate and get the paired rate interval (stats.paired_rate_delta_ci) on values / rate_scale."""
    if rate_scale is None:
        return mean_ci([[v] for v in values], confidence=confidence)
    c = paired_rate_delta_ci([v / rate_scale for v in values], confidence=confidence)
    return CI(c.mean * rate_scale, c.low * rate_scale, c.high * rate_scale, c.n, confidence, 0, 0)


def min_paired_prompts(margin: float | None, rate_scale: float | None) -> int:
    """The fewest paired prompts a gated metric is decided on (stats.MIN_PAIRED_PROMPTS), and for a rate the
    fewest at which a perfect tie could pass its margin (stats.min_prompts_for_margin)."""
    if margin is None or rate_scale is None:
        return MIN_PAIRED_PROMPTS
    return min_prompts_for_margin(margin / rate_scale, confidence=DECISION_CONFIDENCE)


def paired_summary(per_prompt: Mapping[str, float], bound: float | None = None, decision_name: str | None = None,
             rate_scale: float | None = None) -> dict[str, Any]:
    """Mean over prompts with 90% and 95% CIs (and a decision against `bound`). Below stats.MIN_PAIRED_PROMPTS
    prompts the decision is inconclusive whatever the interval says (`too_few`)."""
    vals = [v for v in per_prompt.values() if math.isfinite(v)]
    c90, c95 = delta_ci(vals, DECISION_CONFIDENCE, rate_scale), delta_ci(vals, REPORT_CONFIDENCE, rate_scale)
    out: dict[str, Any] = {"n_prompts": len(vals), "mean": c90.mean, "ci90": [c90.low, c90.high],
                           "ci95": [c95.low, c95.high], "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan,
                           "ci_method": "paired-rate-t" if rate_scale is not None else "student-t"}
    if bound is not None and vals:
        out["decision"] = decide(c90.low, c90.high, bound)
        if len(vals) < MIN_PAIRED_PROMPTS:
            out["decision"] = "inconclusive"
            out["too_few"] = f"too few paired prompts (n={len(vals)}; at least {MIN_PAIRED_PROMPTS} are needed)"
        if out["decision"] == "inconclusive":
            out["prompts_needed"] = prompts_needed(out["sd"], out["mean"] - bound if decision_name else -bound)
            if out.get("too_few"):
                out["prompts_needed"] = max(out["prompts_needed"] or 0, MIN_PAIRED_PROMPTS)
    return out
