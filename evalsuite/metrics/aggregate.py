"""Aggregation of the score table (`scoring.load_scores`) next to the statistics it rests on: per group, the
mean over prompts with its 95% interval (metrics/stats.py), counts, missing reasons, verdict labels, the
reference backend's value beside each backend's, and the set-level figures of the published text protocols.
Pure: a DataFrame in, a DataFrame out; units, scales and interval kinds come from metrics/registry.py.
`evalsuite.aggregate(run_dir)` and `evalsuite.scoring.aggregate(run_dir_or_frame)` read the table and call this.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from ..errors import EvalsuiteError
from . import registry as R

# OCR protocol figures computed over a set of items, not per item (metrics/text_protocols.py)
POOLED_INPUTS = ("text_words_matched", "text_words", "oneig_ed", "oneig_cr")


def aggregate(df, by: Sequence[str] = ("backend",)):
    """Per group (by + scorer identity + metric + variant): mean over prompts (seeds averaged first)
    with a 95% CI over prompts (`evalsuite.metrics.stats`: Wilson-t with effective n for values in [0, 1],
    Student-t otherwise; `ci_method` names it), counts, missing reasons, the text-accuracy verdict label
    ("too few prompts (n=N)" below stats.MIN_PROMPTS) and the reference backend's value beside it
    (`ceiling`). Rates in percent.

    Columns: *by, [backend_name when grouped by backend], scorer, model, scorer_id, metric, variant, unit, mean, ci_low, ci_high, n_prompts,
    n_items, n_missing, missing_reasons, label, ceiling, ceiling_ci_low, ceiling_ci_high, ci_method.
    """
    import pandas as pd

    by = list(by)
    for c in by:
        if c not in df.columns:
            raise EvalsuiteError(f"aggregate: unknown column '{c}' to group by (columns: {', '.join(df.columns)})")
    keys = by + ["scorer", "model", "scorer_id", "metric", "variant"]
    out_cols = keys + ["unit", "mean", "ci_low", "ci_high", "n_prompts", "n_items", "n_missing", "missing_reasons",
                       "label", "ceiling", "ceiling_ci_low", "ceiling_ci_high", "ci_method"]
    if df.empty:
        return pd.DataFrame(columns=out_cols)
    rows = [_group_row(keys, gk, g, R.info(gk[len(by) + 3]))
            for gk, g in df.groupby(keys, dropna=False, sort=True)]
    rows += _pooled_rows(df, keys)
    out = pd.DataFrame(rows, columns=out_cols)
    _add_labels(out, keys)
    if "backend" in by:
        _add_ceiling(out, df, by, keys)
    return out


def _group_row(keys: list[str], gk: tuple, g, facts) -> dict[str, Any]:
    """One group's mean over prompts with its interval (Wilson-t for a bounded metric whose values all lie in
    [0, 1], Student-t otherwise), in the metric's shown scale, with its counts and missing reasons."""
    from .stats import mean_ci, rate_ci

    scale = facts.scale
    ok = g[g["missing_reason"].isna()]
    vals = ok["value"].to_numpy(dtype=float)
    unit_interval = bool(len(vals)) and bool(((vals >= 0) & (vals <= 1)).all()) and facts.bounded
    per_prompt = {pid: sub["value"].to_numpy(dtype=float) for pid, sub in ok.groupby("prompt_id")}
    ci = rate_ci(per_prompt) if unit_interval else mean_ci(per_prompt)
    method = "wilson-t" if unit_interval else "student-t"
    miss = g[g["missing_reason"].notna()]
    reasons = "; ".join(f"{r} ({n})" for r, n in miss["missing_reason"].value_counts().items())
    return dict(zip(keys, gk), unit=facts.unit,
                mean=ci.mean * scale, ci_low=ci.low * scale, ci_high=ci.high * scale, n_prompts=ci.n,
                n_items=len(ok), n_missing=len(miss), missing_reasons=reasons or None, label=None,
                ceiling=math.nan, ceiling_ci_low=math.nan, ceiling_ci_high=math.nan, ci_method=method)


def _add_labels(out, keys: list[str]) -> None:
    """Verdict labels on text accuracy (lenient), from its interval and the share of garbled targets."""
    from .stats import MIN_PROMPTS
    from .text import verdict_label

    idx = {tuple(r[c] for c in keys): i for i, r in out.iterrows()}
    for i, r in out.iterrows():
        if r["metric"] == "text_exact" and r["variant"] == "lenient":
            gk = tuple(r[c] for c in keys[:-2]) + ("text_garbled", "lenient")
            garbled = out.loc[idx[gk], "mean"] if gk in idx else None
            out.at[i, "label"] = (too_few_label(r["n_prompts"]) if 0 < r["n_prompts"] < MIN_PROMPTS
                                  else verdict_label(r["mean"], r["ci_low"], garbled))


def _add_ceiling(out, df, by: list[str], keys: list[str]) -> None:
    """backend_name, and the reference backend's value beside every backend's (same scorer, metric and
    other group keys)."""
    names = df.drop_duplicates("backend").set_index("backend")["backend_name"]
    out.insert(len(by), "backend_name", out["backend"].map(names))
    ref = df.loc[df["backend_name"] == "reference", "backend"].dropna().unique()
    if not len(ref):
        return
    others = [c for c in keys if c != "backend"]
    ref_rows = out[out["backend"] == ref[0]].set_index(others)
    for i, r in out.iterrows():
        k = tuple(r[c] for c in others)
        if k in ref_rows.index:
            rr = ref_rows.loc[k]
            out.at[i, "ceiling"], out.at[i, "ceiling_ci_low"], out.at[i, "ceiling_ci_high"] = \
                rr["mean"], rr["ci_low"], rr["ci_high"]


def _pooled_rows(df, keys: list[str]) -> list[dict[str, Any]]:
    """longtext_word_acc_pooled and oneig_text_score_set per group (set-level figures of the published
    protocols). CI: the percentile bootstrap that resamples prompts (all their items move together), widened
    to at least the continuity-corrected Wilson bounds with the number of prompts as the sample size, so it
    never collapses at small n or at 0 / 1 (docs/scores.md, "Intervals and minimum prompts")."""
    import numpy as np

    from .stats import CONFIDENCE, N_RESAMPLES, RNG_SEED, t_quantile, wilson_bounds
    from .text_protocols import oneig_text_score

    sub = df[df["metric"].isin(POOLED_INPUTS) & df["missing_reason"].isna()]
    if sub.empty:
        return []
    gkeys = keys[:-2]
    out = []
    for gk, g in sub.groupby(gkeys, dropna=False, sort=True):
        gk = gk if isinstance(gk, tuple) else (gk,)
        wide = g.pivot_table(index=["prompt_id", "key"], columns="metric", values="value", aggfunc="first")
        if any(m not in wide.columns for m in POOLED_INPUTS):
            continue
        wide = wide.dropna(subset=list(POOLED_INPUTS))
        if wide.empty:
            continue
        per = wide.groupby(level="prompt_id")[list(POOLED_INPUTS)].agg(["sum", "count"])
        m_, w_ = per[("text_words_matched", "sum")].to_numpy(), per[("text_words", "sum")].to_numpy()
        ed_, cr_, n_ = per[("oneig_ed", "sum")].to_numpy(), per[("oneig_cr", "sum")].to_numpy(), \
            per[("oneig_ed", "count")].to_numpy()

        def stats(ix):
            w = w_[ix].sum()
            pooled = m_[ix].sum() / w if w else math.nan
            n = n_[ix].sum()
            score = oneig_text_score(ed_[ix].sum() / n, cr_[ix].sum() / n, pooled) if n and w else math.nan
            return pooled, score

        full = stats(np.arange(len(m_)))
        rng = np.random.default_rng(RNG_SEED)
        boot = np.array([stats(rng.integers(0, len(m_), len(m_))) for _ in range(N_RESAMPLES)], dtype=float)
        alpha = (1 - CONFIDENCE) / 2
        for j, metric in enumerate(("longtext_word_acc_pooled", "oneig_text_score_set")):
            b = boot[:, j][np.isfinite(boot[:, j])]
            lo, hi = (float(np.quantile(b, alpha)), float(np.quantile(b, 1 - alpha))) if b.size else (math.nan, math.nan)
            if math.isfinite(full[j]):
                wlo, whi = wilson_bounds(np.clip(full[j], 0.0, 1.0), len(m_), t_quantile(CONFIDENCE, len(m_) - 1))
                lo, hi = min(lo, float(wlo)), max(hi, float(whi))
            out.append(dict(zip(keys, gk + (metric, "")), unit="", mean=float(full[j]), ci_low=lo, ci_high=hi,
                            n_prompts=len(m_), n_items=int(n_.sum()), n_missing=0, missing_reasons=None, label=None,
                            ceiling=math.nan, ceiling_ci_low=math.nan, ceiling_ci_high=math.nan,
                            ci_method="bootstrap+wilson"))
    return out


def too_few_label(n: int) -> str:
    """The label a verdict gets below stats.MIN_PROMPTS prompts, instead of a confident word."""
    return f"too few prompts (n={int(n)})"
