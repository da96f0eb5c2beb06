"""Published text protocols (CVTG-2K, OneIG-Bench, MARIO-Eval, LongText-Bench) on hand-computed cases."""

import math

import pytest

from evalsuite.metrics.text import Box, Reading, item_text_metrics
from evalsuite.metrics.text_protocols import (cvtg_preprocess, mario_scores, oneig_preprocess, oneig_set_score,
                                              pooled_word_accuracy, protocol_metrics)


def test_protocols_hand_computed():
    v, why = protocol_metrics(["Grand Opening", "Sale 50%"], "GRAND OPENING SALE 5O% today")
    assert why is None
    assert oneig_preprocess("Sale 50%!  Caf\u00e9") == "sale 50 caf\u00e9"             # OneIG keeps its accent list
    assert cvtg_preprocess("Sale 50%!") == "sale 50"
    # OneIG: ED("grand opening sale 5o today", "grand opening sale 50") = 1 substitution + 6 deletions
    assert v[("oneig_ed", "")] == 7.0 and v[("oneig_cr", "")] == 0.0
    assert v[("oneig_wac", "")] == pytest.approx(3 / 4)
    assert v[("oneig_text_score", "")] == pytest.approx(1 - 7 * 1 * (1 / 4) / 100)
    # CVTG-2K: 3 of 4 words; NED over the 27-character reading
    assert v[("cvtg_word_acc", "")] == pytest.approx(3 / 4)
    assert v[("cvtg_ned", "")] == pytest.approx(1 - 7 / 27)
    # MARIO-Eval: words lowercased, punctuation kept: 3 of 5 predictions, 3 of 4 ground-truth words
    assert v[("mario_precision", "")] == pytest.approx(3 / 5) and v[("mario_recall", "")] == pytest.approx(3 / 4)
    assert v[("mario_f", "")] == pytest.approx(2 * 0.6 * 0.75 / 1.35) and v[("mario_acc", "")] == 0.0
    assert v[("longtext_word_acc", "")] == pytest.approx(3 / 4)
    assert (v[("text_words_matched", "")], v[("text_words", "")]) == (3.0, 4.0)
    ok, _ = protocol_metrics(["OPEN"], "open")
    assert ok[("oneig_text_score", "")] == 1.0 and ok[("mario_acc", "")] == 1.0 and ok[("cvtg_ned", "")] == 1.0
    assert mario_scores(["OPEN"], ["open", "now"]) == (0.5, 1.0, 0.0)       # extra text: not an exact multiset
    assert mario_scores(["OPEN"], []) == (0.0, 0.0, 0.0)
    nan, why = protocol_metrics(["&"], "")
    assert math.isnan(nan[("cvtg_word_acc", "")]) and "preprocessing" in why


def test_pooled_and_set_level_figures():
    assert pooled_word_accuracy([3, 1], [4, 1]) == pytest.approx(0.8)       # beside the per-item mean 0.875
    assert oneig_set_score([7, 0], [0, 1], [3, 1], [4, 1]) == pytest.approx(1 - 3.5 * 0.5 * 0.2 / 100)
    assert math.isnan(pooled_word_accuracy([], []))


def test_protocol_rows_in_item_metrics_and_aggregate():
    import pandas as pd

    from evalsuite.scoring import COLUMNS, aggregate

    b = Box(text="GRAND OPENING SALE 5O% today", confidence=0.9, polygon=[[0, 0], [300, 0], [300, 20], [0, 20]])
    values, det = item_text_metrics(["Grand Opening", "Sale 50%"], [Reading.from_boxes("t", [b])])
    assert values[("oneig_ed", "")] == 7.0 and values[("mario_recall", "")] == pytest.approx(3 / 4)
    rows = []
    for pid, (m, w, ed, cr) in {"p1": (3, 4, 7, 0), "p2": (1, 1, 0, 1)}.items():
        for metric, val in (("text_words_matched", m), ("text_words", w), ("oneig_ed", ed), ("oneig_cr", cr),
                            ("longtext_word_acc", m / w)):
            rows.append(dict.fromkeys(COLUMNS) | {"backend": "a", "backend_name": "folder", "prompt_id": pid,
                                                   "seed": 0, "key": pid + "k", "category": "text", "metric": metric,
                                                   "variant": "", "value": float(val), "scorer": "ocr",
                                                   "model": "rapidocr", "scorer_id": "ocr-x"})
    agg = aggregate(pd.DataFrame(rows, columns=COLUMNS)).set_index("metric")
    assert agg.loc["longtext_word_acc_pooled", "mean"] == pytest.approx(0.8)
    assert agg.loc["longtext_word_acc", "mean"] == pytest.approx(0.875)
    assert agg.loc["oneig_text_score_set", "mean"] == pytest.approx(1 - 3.5 * 0.5 * 0.2 / 100)
    lo, hi = agg.loc["longtext_word_acc_pooled", ["ci_low", "ci_high"]]
    # two prompts: the interval is the bootstrap's widened to the Wilson bounds at n = 2 (never [0.75, 1] from 2)
    from evalsuite.metrics.stats import CONFIDENCE, t_quantile, wilson_bounds

    wlo, whi = wilson_bounds(0.8, 2, t_quantile(CONFIDENCE, 1))
    assert lo == pytest.approx(min(0.75, float(wlo))) and lo < 0.75 and 0.8 <= hi <= 1.0
    assert agg.loc["longtext_word_acc_pooled", "ci_method"] == "bootstrap+wilson"
