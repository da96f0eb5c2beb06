"""The facts compare decides by, in one place: each metric's variant, default margin, unit and scale,
what a prompt needs for a metric to apply, the fidelity gates and the decisions."""

from __future__ import annotations

from ..metrics.registry import METRICS as REGISTRY
from ..metrics.stats import DECISION_CONFIDENCE, N_POWER, REPORT_CONFIDENCE  # noqa: F401  (re-exported)

COMPARE_VERSION = "compare/v1"


# The metrics compare pairs, in this order; their facts (default margin: None = reported, not gated unless
# --margin gives one; unit; scale) come from the one metric registry (evalsuite/metrics/registry.py).
COMPARED = ("clip_score", "prompt_following", "text_exact", "text_similarity", "word_recall",
            # published text protocols (metrics/text_protocols.py), reported beside ours, never gated by default
            "cvtg_word_acc", "cvtg_ned", "oneig_ed", "oneig_cr", "oneig_wac", "oneig_text_score", "mario_precision",
            "mario_recall", "mario_f", "mario_acc", "longtext_word_acc",
            # VQA judges (scoring/vqa.py): reported by default, gated with --margin question_score=3 etc.
            "vqa_score", "question_score", "prompt_following_vqa")
VARIANTS = {"text_exact": "lenient", "text_similarity": "lenient", "word_recall": "lenient"}


def _facts(name: str) -> tuple[str, float | None, str, float]:
    info = REGISTRY[name]
    return VARIANTS.get(name, ""), info.default_margin, "pp" if info.is_rate else info.unit, info.scale


# metric -> (variant, default margin, unit: "pp" for rates, else the registry's, scale)
METRICS: dict[str, tuple[str, float | None, str, float]] = {m: _facts(m) for m in COMPARED}


DEFAULT_CEILING_MARGIN_DB = 3.0


FIDELITY_GATES = ("psnr_over_ceiling", "psnr", "ssim")


DECISIONS = ("pass", "fail", "inconclusive")


NEEDS = {"clip_score": "a prompt", "prompt_following": "hard negatives", "text_exact": "target text",
          "text_similarity": "target text", "word_recall": "target text", "vqa_score": "a prompt",
          "question_score": "atomic questions", "prompt_following_vqa": "atomic questions"}


def applies(metric: str, prompt) -> bool:
    """Whether a metric is defined for a prompt (prompt following needs negatives, text metrics target text)."""
    if prompt is None or metric in ("clip_score", "vqa_score"):
        return True
    if metric in ("question_score", "prompt_following_vqa"):
        return bool(prompt.questions)
    if metric == "prompt_following":
        return bool(prompt.negatives)
    return bool(prompt.target_text)
