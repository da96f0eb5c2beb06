"""Intervals (evalsuite.metrics.stats): small-sample behaviour, boundaries, the gate's paired interval and the
minimum prompts per margin; labels need enough prompts. Coverage is measured by bench/ci_coverage.py."""

import math

import numpy as np
import pandas as pd
import pytest

from evalsuite.metrics.stats import (MIN_PROMPTS, mean_ci, min_prompts_for_margin, paired_rate_delta_ci,
                                     rate_bounds, rate_ci)
from evalsuite.scoring import COLUMNS, aggregate


def test_rate_interval_never_collapses():
    all_right = rate_ci([[1.0, 1.0]] * 3)
    assert all_right.mean == 1.0 and all_right.high == 1.0 and 0.0 < all_right.low < 0.5     # not [1, 1]
    one = rate_ci([[1.0]])
    assert one.low < 0.01 and one.high == 1.0                                                # one prompt: ~[0, 1]
    all_wrong = rate_ci([[0.0]] * 20)
    assert all_wrong.low == 0.0 and 0.1 < all_wrong.high < 0.3
    # more prompts, narrower; seeds that agree add information, never more than one Bernoulli each
    assert rate_ci([[1.0]] * 100).low > rate_ci([[1.0]] * 20).low > all_right.low
    half = rate_ci([[0.0, 1.0]] * 10)
    assert half.low < 0.5 < half.high
    # seeds that always agree within a prompt add nothing; seeds that vary within prompts count (n_eff up to n*k)
    assert rate_ci([[0.0], [1.0]] * 10).low == rate_ci([[0.0] * 4, [1.0] * 4] * 10).low
    assert rate_ci([[0.0, 1.0]] * 20).low > rate_ci([[0.0], [1.0]] * 10).low
    assert math.isnan(rate_ci([]).mean)
    # the vectorised form is the same computation
    m, lo, hi = rate_bounds(np.array([[1.0, 1.0, 1.0]]), 2)
    assert (m[0], lo[0], hi[0]) == (all_right.mean, pytest.approx(all_right.low), all_right.high)


def test_mean_and_paired_intervals():
    assert mean_ci([3.0]).low == -math.inf and mean_ci([3.0]).high == math.inf
    c = mean_ci([1.0, 2.0, 3.0])
    assert c.mean == 2.0 and c.low == pytest.approx(2 - 4.302653 / math.sqrt(3)) and c.high > 3.0
    one = paired_rate_delta_ci([-0.25])                          # one prompt: nothing can be decided
    assert one.mean == -0.25 and (one.low, one.high) == (-1.0, 1.0)
    tie = paired_rate_delta_ci([0.0] * 10, confidence=0.90)
    assert tie.low < 0.0 < tie.high                              # identical runs: not a confident [0, 0]
    lost = paired_rate_delta_ci([-1.0] * 6, confidence=0.90)
    assert lost.high < -0.2                                      # six lost prompts are a clear regression
    assert [min_prompts_for_margin(m) for m in (0.03, 0.05, 0.1, 0.3, 0.5)] == [77, 47, 23, 8, 5]
    assert paired_rate_delta_ci([0.0] * 77, confidence=0.90).low > -0.03 > \
        paired_rate_delta_ci([0.0] * 76, confidence=0.90).low


def test_coverage_small_simulation():
    """A small version of bench/ci_coverage.py: 6 prompts (a category), rate 0.95, 2 seeds."""
    rng = np.random.default_rng(1)
    x = rng.binomial(2, 0.95, size=(2000, 6)) / 2
    _, lo, hi = rate_bounds(x, 2)
    assert np.mean((lo <= 0.95) & (0.95 <= hi)) >= 0.95 and (hi - lo > 0).all()


def _frame(n_prompts: int, value: float = 1.0) -> pd.DataFrame:
    rows = []
    for i in range(n_prompts):
        for seed in (0, 1):
            for metric in ("text_exact", "text_garbled"):
                rows.append({c: None for c in COLUMNS} | {
                    "backend": "b", "backend_name": "folder", "prompt_id": f"p{i}", "seed": seed, "category": "text",
                    "metric": metric, "variant": "lenient", "value": value if metric == "text_exact" else 1 - value,
                    "scorer": "ocr", "model": "easyocr", "scorer_id": "ocr-x"})
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["value"] = df["value"].astype(float)
    return df


def test_labels_need_enough_prompts():
    lab = lambda n: aggregate(_frame(n)).set_index("metric").loc["text_exact", "label"]  # noqa: E731
    assert lab(3) == "too few prompts (n=3)"
    assert lab(MIN_PROMPTS - 1) == f"too few prompts (n={MIN_PROMPTS - 1})"
    assert lab(MIN_PROMPTS) == "usually correct"
    agg = aggregate(_frame(12, 0.0)).set_index("metric")
    assert agg.loc["text_exact", "label"] == "often garbled" and agg.loc["text_exact", "ci_method"] == "wilson-t"
    assert agg.loc["text_exact", "ci_high"] > 0.0
