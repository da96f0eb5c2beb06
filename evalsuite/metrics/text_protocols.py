"""Published text-rendering protocols as named metric variants: pure functions of the target strings
and one OCR reading (the raw text in reading order), so that numbers can sit beside leaderboards.

Each protocol keeps its own normalisation and matching; none of our lenient rules (word-aligned
windows, target parts, 0 = o) applies. Sources and ambiguities are in docs/scores.md ("Published
text protocols"). Per item:

    cvtg_word_acc, cvtg_ned            CVTG-2K / TextCrafter: word accuracy, 1 - normalised edit distance
    oneig_ed, oneig_cr, oneig_wac,     OneIG-Bench text: edit distance, completion (ED == 0), word
    oneig_text_score                   accuracy, and 1 - min(100, ED)(1 - CR)(1 - WAC)/100 on this item
    mario_precision, mario_recall,     MARIO-Eval (TextDiffuser): word precision, recall, F-measure and
    mario_f, mario_acc                 exact multiset accuracy
    longtext_word_acc                  LongText-Bench word accuracy of this item
    text_words_matched, text_words     the counts behind the pooled figures (OneIG WAC, LongText-Bench)

Set-level figures computed from items (by `aggregate`, with a bootstrap CI over prompts):
    longtext_word_acc_pooled = sum(text_words_matched) / sum(text_words)       (LongText-Bench)
    oneig_text_score_set     = 1 - min(100, mean ED)(1 - mean CR)(1 - pooled WAC)/100  (OneIG-Bench)
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

from .edit import levenshtein

ONEIG_MAX_ED = 100          # OneIG-Bench English mode
PROTOCOL_METRICS = ("cvtg_word_acc", "cvtg_ned", "oneig_ed", "oneig_cr", "oneig_wac", "oneig_text_score",
                    "mario_precision", "mario_recall", "mario_f", "mario_acc", "longtext_word_acc",
                    "text_words_matched", "text_words")
POOLED_METRICS = ("longtext_word_acc_pooled", "oneig_text_score_set")
# which of these figures lie in [0, 1] (their intervals are the rates' Wilson-t): metrics/registry.py

_ONEIG_KEEP = re.compile("[^\u4e00-\u9fa5a-zA-Z0-9\\s\u00e0\u00e2\u00e4\u00e9\u00e8\u00ea\u00eb\u00ee\u00ef\u00f4"
                         "\u00f6\u00f9\u00fb\u00fc\u00e7\u00c0\u00c2\u00c4\u00c9\u00c8\u00ca\u00cb\u00ce\u00cf"
                         "\u00d4\u00d6\u00d9\u00db\u00dc\u00c7]")
_SPACES = re.compile(r"\s+")


def oneig_preprocess(s: str) -> str:
    """OneIG-Bench / LongText-Bench English preprocessing: drop every character but ASCII letters,
    digits, whitespace, CJK and a fixed list of accented Latin letters; collapse whitespace; lowercase."""
    return _SPACES.sub(" ", _ONEIG_KEEP.sub("", s)).strip().lower()


def cvtg_preprocess(s: str) -> str:
    """CVTG-2K word accuracy / NED: lowercase, punctuation dropped, whitespace collapsed."""
    return _SPACES.sub(" ", "".join(c if c.isalnum() or c.isspace() else "" for c in s.lower())).strip()


def word_matches(gt_words: Sequence[str], ocr_words: Sequence[str]) -> int:
    """Size of the multiset intersection of two word lists."""
    return sum((Counter(gt_words) & Counter(ocr_words)).values())


def mario_scores(targets: Sequence[str], ocr_words: Sequence[str]) -> tuple[float, float, float]:
    """(precision, recall, accuracy) of MARIO-Eval for one image: ground-truth words are the target
    strings split on whitespace, predictions the OCR words, both lowercased and stripped; each
    prediction found among the remaining ground-truth words consumes it; accuracy is 1 when the
    sorted words of both, concatenated, are the same string."""
    gt = [w.strip().lower() for t in targets for w in t.split()]
    pred = [w.strip().lower() for w in ocr_words if w.strip()]
    remaining = list(gt)
    hit = 0
    for p in pred:
        if p in remaining:
            remaining.remove(p)
            hit += 1
    precision = hit / len(pred) if pred else 0.0
    recall = hit / len(gt) if gt else 0.0
    acc = float("".join(sorted(pred)) == "".join(sorted(gt)))
    return precision, recall, acc


def f_measure(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def oneig_text_score(ed: float, cr: float, wac: float, max_ed: float = ONEIG_MAX_ED) -> float:
    """1 - min(max_ed, ED) * (1 - CR) * (1 - WAC) / max_ed."""
    return 1.0 - min(max_ed, ed) * (1.0 - cr) * (1.0 - wac) / max_ed


def protocol_metrics(targets: Sequence[str], ocr_text: str) -> tuple[dict[tuple[str, str], float], str | None]:
    """Every protocol's per-item values (variant "") for the targets against one raw OCR reading;
    NaN for all with a reason when the targets have no word any protocol could read."""
    gt_one = oneig_preprocess(" ".join(targets))
    ocr_one = oneig_preprocess(ocr_text)
    gt_cv, ocr_cv = cvtg_preprocess(" ".join(targets)), cvtg_preprocess(ocr_text)
    if not gt_one.split() or not gt_cv.split():
        return {(m, ""): math.nan for m in PROTOCOL_METRICS}, "no target word left after the protocols' preprocessing"
    out: dict[tuple[str, str], float] = {}
    gw = gt_cv.split()
    out[("cvtg_word_acc", "")] = word_matches(gw, ocr_cv.split()) / len(gw)
    n = max(len(gt_cv), len(ocr_cv))
    out[("cvtg_ned", "")] = 1.0 - levenshtein(gt_cv, ocr_cv) / n if n else 1.0
    ed = float(levenshtein(ocr_one, gt_one))
    cr = float(ed == 0)
    matched, total = word_matches(gt_one.split(), ocr_one.split()), len(gt_one.split())
    wac = matched / total
    out[("oneig_ed", "")] = ed
    out[("oneig_cr", "")] = cr
    out[("oneig_wac", "")] = wac
    out[("oneig_text_score", "")] = oneig_text_score(ed, cr, wac)
    p, r, acc = mario_scores(targets, ocr_text.split())
    out[("mario_precision", "")], out[("mario_recall", "")] = p, r
    out[("mario_f", "")], out[("mario_acc", "")] = f_measure(p, r), acc
    out[("longtext_word_acc", "")] = wac
    out[("text_words_matched", "")], out[("text_words", "")] = float(matched), float(total)
    return out, None


def pooled_word_accuracy(matched: Sequence[float], words: Sequence[float]) -> float:
    """sum(matched) / sum(words) over a set of items (LongText-Bench's score, OneIG's WAC)."""
    total = float(sum(words))
    return float(sum(matched)) / total if total else math.nan


def oneig_set_score(ed: Sequence[float], cr: Sequence[float], matched: Sequence[float], words: Sequence[float]) -> float:
    """OneIG-Bench's text score of a set: the formula on mean ED, mean CR and pooled WAC."""
    if not len(ed):
        return math.nan
    return oneig_text_score(sum(ed) / len(ed), sum(cr) / len(cr), pooled_word_accuracy(matched, words))
