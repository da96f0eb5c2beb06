"""The one table of facts about every metric evalsuite stores: read by aggregation, every report table,
chart title and gate, so a metric's unit, scale and direction are said once.

    name               the stored metric name (the `metric` column of scores.parquet)
    scorer             the scorer kind that produces it (scoring/registry.py)
    title              what a reader sees ("text accuracy"); `title(metric, variant)` adds the variant and axis
    axis               the unit in a title's brackets ("%", "0-1", "points"); "" for none
    unit               the unit of the aggregated figure ("%" for rates, "points" for CLIP score, "" otherwise)
    scale              stored value x scale = the figure shown (100 for rates stored as 0/1 or shares)
    bounded            every stored value lies in [0, 1]: its interval is the rates' (Wilson-t), never a zero-width
                       Student-t (metrics/stats.py); False: Student-t over prompt means
    higher_is_better   True / False; None when neither (a count such as ocr_chars, an input of a pooled figure)
    default_margin     the non-inferiority margin a paired gate uses by default, in the shown unit
                       (None: reported, not gated unless a margin is given)
    short              a short label for item cards ("text exact")
    needs              the prompt field an item needs for the metric to apply, for the report's coverage counts:
                       "target_text", "negatives", "questions", or "" (every item)
    variant_title      the variant names a group and is shown in the title ("question accuracy, count (%)")
    verdict            a per-item yes/no (0/1): item cards show "yes"/"no" and colour it

Add a metric: one `_m(...)` line below (docs/architecture.md, "Add a metric"); its scorer emits values under
that name. A name not listed here is still aggregated (Student-t, no scale) and shown by its name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    name: str
    scorer: str
    title: str
    axis: str = ""
    unit: str = ""
    scale: float = 1.0
    bounded: bool = False
    higher_is_better: bool | None = True
    default_margin: float | None = None
    short: str = ""
    needs: str = ""
    variant_title: bool = False
    verdict: bool = False

    @property
    def is_rate(self) -> bool:
        """Stored in [0, 1], shown in percent."""
        return self.scale == 100.0


METRICS: dict[str, MetricInfo] = {}


def _m(name: str, scorer: str, title: str, **kw) -> None:
    METRICS[name] = MetricInfo(name, scorer, title, **kw)


_RATE = dict(axis="%", unit="%", scale=100.0, bounded=True)
_SHARE = dict(bounded=True)

# CLIP (scoring/clip.py)
_m("clip_score", "clip", "CLIP score", axis="points", unit="points", default_margin=0.5, short="CLIP score")
_m("clip_s", "clip", "CLIP-S", short="CLIP-S")
_m("prompt_following", "clip", "prompt following", **{**_RATE, "axis": "% accurate"}, default_margin=3.0,
   short="prompt following", needs="negatives", verdict=True)
# OCR text accuracy (metrics/text.py)
_m("text_exact", "ocr", "text accuracy", **_RATE, default_margin=3.0, short="text exact", needs="target_text",
   verdict=True)
_m("text_similarity", "ocr", "text similarity", axis="0-1", **_SHARE, short="text similarity", needs="target_text")
_m("word_recall", "ocr", "word recall", **_RATE, short="word recall", needs="target_text")
_m("text_duplicated", "ocr", "duplicated text", **_RATE, higher_is_better=False, short="duplicated", needs="target_text")
_m("extra_text", "ocr", "extra text", **_RATE, higher_is_better=False, short="extra text", needs="target_text")
_m("text_garbled", "ocr", "garbled text", **_RATE, higher_is_better=False, short="garbled", needs="target_text")
_m("ocr_chars", "ocr", "OCR characters read", axis="confidence >= 0.5", higher_is_better=None, short="OCR chars")
# published text protocols (metrics/text_protocols.py), reported beside ours
_m("cvtg_word_acc", "ocr", "CVTG-2K word acc", **_SHARE)
_m("cvtg_ned", "ocr", "CVTG-2K NED", **_SHARE)
_m("oneig_ed", "ocr", "OneIG ED", unit="chars", higher_is_better=False)
_m("oneig_cr", "ocr", "OneIG CR", **_SHARE)
_m("oneig_wac", "ocr", "OneIG WAC (per image)", **_SHARE)
_m("oneig_text_score", "ocr", "OneIG text score (per image)", **_SHARE)
_m("mario_precision", "ocr", "MARIO P", **_SHARE)
_m("mario_recall", "ocr", "MARIO R", **_SHARE)
_m("mario_f", "ocr", "MARIO F (per image)", **_SHARE)
_m("mario_acc", "ocr", "MARIO Acc", **_SHARE)
_m("longtext_word_acc", "ocr", "word acc (per-prompt mean)", **_SHARE)
_m("text_words_matched", "ocr", "target words matched", higher_is_better=None)
_m("text_words", "ocr", "target words", higher_is_better=None)
# image checks (scoring/blank.py)
_m("image_blank", "blank", "blank images", **_RATE, higher_is_better=False, short="blank")
# GenEval (scoring/geneval.py, metrics/geneval.py): per image 1 = correct; the variant is the prompt's tag
_m("geneval", "geneval", "GenEval correct", **_RATE, short="GenEval")
# VQA judges (scoring/vqa.py): gated with --margin (compare), never by default, so runs scored without a judge
# stay decidable
_m("vqa_score", "vqa", "VQAScore", axis="P(yes), 0-1", **_SHARE, short="VQAScore")
_m("question_score", "vqa", "questions answered yes", **_RATE, short="questions yes", needs="questions")
_m("prompt_following_vqa", "vqa", "prompt following (VQA)", **{**_RATE, "axis": "% every question yes"},
   short="all questions yes", needs="questions", verdict=True)
_m("question_acc", "vqa", "question accuracy", **_RATE, short="question acc", needs="questions", variant_title=True)
_m("judge_text_answers", "vqa", "judge answers parsed from text", **_RATE, higher_is_better=None,
   short="answers from text")
# set-level figures computed by aggregation over a group of items (metrics/aggregate.py)
_m("longtext_word_acc_pooled", "ocr", "LongText-Bench (pooled)")
_m("oneig_text_score_set", "ocr", "OneIG text score")


def info(metric: str) -> MetricInfo:
    """The facts of a metric; a name not in the table gets neutral ones (Student-t, shown as stored)."""
    return METRICS.get(metric) or MetricInfo(metric, "", metric, higher_is_better=None, short=metric)


def title(metric: str, variant: str = "") -> str:
    """The title a table column or chart shows: "text accuracy, strict (%)"."""
    m = info(metric)
    t = m.title + (", strict" if variant == "strict" else f", {variant}" if m.variant_title and variant else "")
    return f"{t} ({m.axis})" if m.axis else t


def rate_metrics() -> frozenset[str]:
    """Metrics stored in [0, 1] and shown in percent."""
    return frozenset(n for n, m in METRICS.items() if m.is_rate)


def bounded_metrics() -> frozenset[str]:
    """Metrics whose every stored value lies in [0, 1]."""
    return frozenset(n for n, m in METRICS.items() if m.bounded)
