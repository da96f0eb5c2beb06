"""Pure text and statistics metric functions on hand-computed cases."""

import math

import numpy as np
import pytest

from evalsuite.metrics.stats import bootstrap_ci, paired_bootstrap_ci, prompt_means
from evalsuite.metrics.text import (Box, Reading, best_window, count_occurrences, item_text_metrics, levenshtein,
                                    ned, normalize, ocr_text, outcome, reading_order, verdict_label)


def box(text, x, y, w=40, h=20, conf=0.9):
    return Box(text=text, confidence=conf, polygon=[[x, y], [x + w, y], [x + w, y + h], [x, y + h]])


def test_levenshtein_and_ned():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3
    assert ned("kitten", "sitting") == pytest.approx(3 / 7)
    assert ned("", "") == 0.0
    assert ned("abc", "abc") == 0.0
    assert ned("ab", "ba") == 1.0          # two substitutions over max length 2


def test_normalisation():
    assert normalize("\u201cOPEN\u201d  24\nHOURS!") == "open 24 hours"
    assert normalize("McDonald\u2019s") == normalize("McDonald's") == "mcdonalds"
    assert normalize("Caf\u00e9 CR\u00c8ME") == "cafe creme"                 # accents folded (lenient)
    assert normalize("\uff2f\uff30\uff25\uff2e") == "open"                   # NFKC: full-width letters
    assert normalize("well\u2014known") == "wellknown"
    assert normalize("  Caf\u00e9,  OPEN ", "strict") == "Caf\u00e9, OPEN"  # strict: whitespace only
    assert normalize("McDonald\u2019s", "strict") != normalize("McDonald's", "strict")


def test_best_window_and_outcomes():
    assert best_window("open", "we are open today")[0] == 1.0
    sim, s, e = best_window("open", "we are opne today")       # two letters swapped: 2 edits over 4
    assert sim == pytest.approx(0.5)
    sim, _, _ = best_window("fresh coffee", "fresh cofee")     # one deletion: 1 - 1/12
    assert sim == pytest.approx(1 - 1 / 12)
    assert outcome(sim) == "near_miss"
    assert outcome(1.0) == "exact" and outcome(0.79) == "garbled"
    assert best_window("open", "")[0] == 0.0
    # shorter than every allowed window: the whole text is the window
    assert best_window("parking", "par")[0] == pytest.approx(3 / 7)


def test_reading_order_and_windows_across_line_breaks():
    # two lines, boxes given out of order; the second line's boxes are slightly offset vertically
    boxes = [box("HOURS", 10, 60), box("24", 60, 12), box("OPEN", 5, 10)]
    lines = reading_order(boxes)
    assert [[b.text for b in ln] for ln in lines] == [["OPEN", "24"], ["HOURS"]]
    assert ocr_text(boxes) == "OPEN 24 HOURS"
    r = Reading.from_boxes("t", boxes)
    values, det = item_text_metrics(["OPEN 24 HOURS"], [r])
    assert values[("text_exact", "lenient")] == 1.0           # the target spans the line break
    assert det["targets"][0]["lenient"]["window"] == "open 24 hours"


def test_item_metrics_duplicates_extra_text_and_word_recall():
    boxes = [box("SALE", 0, 0), box("SALE", 50, 0), box("xyzw", 0, 40, conf=0.9), box("q", 0, 80, conf=0.2)]
    values, _ = item_text_metrics(["SALE"], [Reading.from_boxes("t", boxes)])
    assert values[("text_exact", "lenient")] == 1.0
    assert values[("text_duplicated", "lenient")] == 1.0
    # confident characters: sale sale xyzw = 12; the matched window covers one "sale" (4) -> 8/12 extra
    assert values[("extra_text", "lenient")] == pytest.approx(8 / 12)
    assert values[("ocr_chars", "lenient")] == 12.0
    # asked twice, shown twice: not duplicated
    v2, _ = item_text_metrics(["SALE", "SALE"], [Reading.from_boxes("t", boxes[:2])])
    assert v2[("text_duplicated", "lenient")] == 0.0
    assert v2[("extra_text", "lenient")] == 0.0
    # word recall is a multiset: "no" twice in the target, once in the image
    v3, _ = item_text_metrics(["NO NO PARKING"], [Reading.from_boxes("t", [box("NO", 0, 0), box("PARKING", 50, 0)])])
    assert v3[("word_recall", "lenient")] == pytest.approx(2 / 3)
    assert v3[("text_exact", "lenient")] == 0.0


def test_strict_variant_counts_case_and_punctuation():
    values, _ = item_text_metrics(["McDonald's"], [Reading.from_boxes("t", [box("MCDONALDS", 0, 0)])])
    assert values[("text_exact", "lenient")] == 1.0
    assert values[("text_exact", "strict")] == 0.0
    assert values[("text_similarity", "strict")] == pytest.approx(1 - ned("McDonald's", "MCDONALDS"))


def test_empty_ocr():
    values, det = item_text_metrics(["OPEN", "24"], [Reading.from_boxes("t", [])])
    assert values[("text_exact", "lenient")] == 0.0
    assert values[("text_similarity", "lenient")] == 0.0
    assert values[("word_recall", "lenient")] == 0.0
    assert values[("text_garbled", "lenient")] == 1.0
    assert values[("extra_text", "lenient")] == 0.0
    assert values[("ocr_chars", "lenient")] == 0.0
    v2, _ = item_text_metrics([], [Reading.from_boxes("t", [])])     # no targets: only false positives
    assert v2 == {("ocr_chars", "lenient"): 0.0}


def test_best_of_engines_per_target():
    a = Reading.from_boxes("a", [box("MAIN ST", 0, 0, w=80), box("NO PARKNG", 0, 40, w=80)])
    b = Reading.from_boxes("b", [box("MAINS", 0, 0), box("NO PARKING", 0, 40, w=80)])
    values, det = item_text_metrics(["MAIN ST", "NO PARKING"], [a, b])
    assert values[("text_exact", "lenient")] == 1.0
    assert [t["engine"] for t in det["targets"]] == ["a", "b"]
    va, _ = item_text_metrics(["MAIN ST", "NO PARKING"], [a])
    assert va[("text_exact", "lenient")] == 0.0


def test_count_occurrences_whole_words():
    assert count_occurrences("open", "open reopen open") == 2
    assert count_occurrences("no parking", "no parking no parking") == 2


def test_verdict_labels():
    assert verdict_label(100.0, 100.0, 0.0) == "usually correct"
    assert verdict_label(75.0, 45.0, 10.0) == "mixed"
    assert verdict_label(10.0, 0.0, 60.0) == "often garbled"
    assert verdict_label(math.nan, math.nan, math.nan) is None


def test_bootstrap_nested_seeds():
    per_prompt = {"a": [1, 1], "b": [0, 1], "c": [0, 0], "d": [1, np.nan]}
    assert list(prompt_means(per_prompt)) == [1.0, 0.5, 0.0, 1.0]
    ci = bootstrap_ci(per_prompt, n_resamples=2000, rng_seed=1)
    assert ci.mean == pytest.approx(0.625)
    assert 0.0 <= ci.low < ci.mean < ci.high <= 1.0
    assert ci.n == 4 and ci.n_resamples == 2000 and ci.rng_seed == 1
    assert bootstrap_ci(per_prompt, rng_seed=1) == bootstrap_ci(per_prompt, rng_seed=1)   # deterministic
    # resampling prompts: a CI equals the analytic percentile bounds for a two-point case
    const = bootstrap_ci([[3.0], [3.0]])
    assert (const.mean, const.low, const.high) == (3.0, 3.0, 3.0)
    assert math.isnan(bootstrap_ci([]).mean)


def test_paired_bootstrap():
    base = {"a": [0.0, 0.0], "b": [1.0], "c": [0.5], "x": [1.0]}
    cand = {"a": [1.0, 1.0], "b": [1.0], "c": [1.5], "y": [0.0]}
    ci, unmatched = paired_bootstrap_ci(base, cand)
    assert unmatched == ["x", "y"]
    assert ci.n == 3 and ci.mean == pytest.approx(2 / 3)
    assert ci.low >= 0.0 and ci.high <= 1.0


def _one(targets, *texts):
    """item_text_metrics over one reading whose boxes are the given texts, one line each."""
    return item_text_metrics(targets, [Reading.from_boxes("t", [box(t, 0, 40 * i, w=200) for i, t in enumerate(texts)])])


def test_exactness_respects_word_boundaries():
    # a target matches only at word-aligned windows: a letter added at the word's edge is a near miss
    assert best_window("stop", "stopp") == (pytest.approx(0.8), 0, 5)
    v, det = _one(["STOP"], "STOPP")
    assert v[("text_exact", "lenient")] == 0.0 and v[("word_recall", "lenient")] == 0.0
    assert det["targets"][0]["lenient"]["outcome"] == "near_miss"
    # inside a longer word: the whole word is the only window, 1 - 5/9
    assert best_window("sale", "wholesale") == (pytest.approx(4 / 9), 0, 9)
    v, _ = _one(["SALE"], "WHOLESALE")
    assert v[("text_exact", "lenient")] == 0.0 and v[("text_exact", "strict")] == 0.0
    assert v[("text_similarity", "lenient")] == pytest.approx(4 / 9)
    # a dropped edge letter: 1 - 1/4
    v, _ = _one(["STOP"], "TOP")
    assert v[("text_similarity", "lenient")] == pytest.approx(0.75)


def test_repeated_target_needs_its_own_rendering():
    v, det = _one(["SALE", "SALE"], "SALE")
    assert v[("text_exact", "lenient")] == 0.0 and v[("text_exact", "strict")] == 0.0
    assert v[("word_recall", "lenient")] == pytest.approx(0.5)
    assert v[("text_similarity", "lenient")] == pytest.approx(0.5)   # the second finds no unclaimed window: 0
    v2, _ = _one(["SALE", "SALE"], "SALE", "SALE")
    assert v2[("text_exact", "lenient")] == 1.0 and v2[("word_recall", "lenient")] == 1.0


def test_targets_without_letters_are_not_scored():
    v, det = _one(["&", "\U0001F355"])              # a blank image
    assert math.isnan(v[("text_exact", "lenient")]) and math.isnan(v[("word_recall", "lenient")])
    assert "no letter or digit" in det["missing_reason"] and "'&'" in det["missing_reason"]
    assert v[("ocr_chars", "lenient")] == 0.0
    v2, det2 = _one(["&", "OPEN"], "OPEN")          # only OPEN is scored
    assert v2[("text_exact", "lenient")] == 1.0 and v2[("word_recall", "lenient")] == 1.0
    assert det2["unscored_targets"] == [{"target": "&", "reason": "no letter or digit"}]
    assert [t["target"] for t in det2["targets"]] == ["OPEN"]


def test_strict_nfc_and_lenient_folding():
    decomposed, composed = "Cafe\u0301", "Caf\u00e9"
    assert normalize(decomposed, "strict") == normalize(composed, "strict") == composed
    v, _ = _one([composed], decomposed)
    assert v[("text_exact", "strict")] == 1.0
    assert normalize("\u00c6BLE \u00d8L Stra\u00dfe \u0152uvre \u0141\u00f3d\u017a") == "aeble ol strasse oeuvre lodz"
    v, _ = _one(["Stra\u00dfe"], "STRASSE")
    assert v[("text_exact", "lenient")] == 1.0 and v[("text_exact", "strict")] == 0.0


def test_short_targets_score_the_same_alone_and_beside_other_text():
    alone, _ = _one(["BREW"], "BRW")
    beside, _ = _one(["BREW"], "COFFEE BRW")
    assert alone[("text_similarity", "lenient")] == beside[("text_similarity", "lenient")] == pytest.approx(0.75)
    assert best_window("brew", "coffee brw") == (pytest.approx(0.75), 7, 10)


def test_ocr_punctuation_spacing():
    assert normalize("$ 128 . 50", "strict") == normalize("$128.50", "strict") == "$128.50"
    assert normalize("ELEVATION : 8 , 000 ft", "strict") == "ELEVATION: 8,000 ft"
    assert normalize("( 24 ) HOURS !", "strict") == "(24) HOURS!"
    assert normalize("SCORE: 2 - 1", "strict") == "SCORE: 2 - 1"          # a spaced dash is a separator
    v, _ = _one(["Only $128.50"], "ONLY $128 . 50")
    assert v[("text_exact", "lenient")] == 1.0
    v, _ = _one(["Only $128.50"], "Only $ 128 . 50")
    assert v[("text_exact", "strict")] == 1.0
    # lenient compares windows without spaces: the dots are gone either way, the words are all there
    v, _ = _one(["www.greenlane-bikes.com"], "wwwgreenlane-bikes com")
    assert v[("text_exact", "lenient")] == 1.0 and v[("text_exact", "strict")] == 0.0
    v, _ = _one(["www.greenlane-bikes.com"], "www . greenlane-bikes . com")
    assert v[("text_exact", "strict")] == 1.0


def test_overlapping_boxes_do_not_read_a_character_twice():
    # the detector's first box reaches 30 px into the next one ("24", 58 px per character): its "2" is dropped
    boxes = [box("OPEN2", 49, 149, w=329, h=63), box("24", 348, 147, w=117, h=65), box("HOURS", 78, 274, w=353, h=65)]
    assert ocr_text(boxes) == "OPEN 24 HOURS"
    v, _ = item_text_metrics(["OPEN 24 HOURS"], [Reading.from_boxes("t", boxes)])
    assert v[("text_exact", "lenient")] == 1.0 and v[("text_exact", "strict")] == 1.0
    # no overlap: nothing is trimmed, a real doubled letter stays
    apart = [box("OPENN", 0, 0, w=100), box("NOW", 120, 0, w=60)]
    assert ocr_text(apart) == "OPENN NOW"
    # an overlap whose characters do not repeat: nothing is trimmed
    assert ocr_text([box("MAIN", 0, 0, w=100), box("ST", 90, 0, w=40)]) == "MAIN ST"
