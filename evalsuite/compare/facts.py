"""The facts compare decides by, in one place: each metric's variant, default margin, unit and scale,
what a prompt needs for a metric to apply, the fidelity gates and the decisions."""

from __future__ import annotations

from ..metrics.stats import DECISION_CONFIDENCE, N_POWER, REPORT_CONFIDENCE  # noqa: F401  (re-exported)

COMPARE_VERSION = "compare/v1"


# metric -> (variant, default margin (None: reported, not gated unless --margin gives one), unit, scale)
METRICS: dict[str, tuple[str, float | None, str, float]] = {
    "clip_score": ("", 0.5, "points", 1.0),
    "prompt_following": ("", 3.0, "pp", 100.0),
    "text_exact": ("lenient", 3.0, "pp", 100.0),
    "text_similarity": ("lenient", None, "", 1.0),
    "word_recall": ("lenient", None, "pp", 100.0),
    # published text protocols (metrics/text_protocols.py), reported beside ours, never gated by default
    "cvtg_word_acc": ("", None, "", 1.0),
    "cvtg_ned": ("", None, "", 1.0),
    "oneig_ed": ("", None, "chars", 1.0),
    "oneig_cr": ("", None, "", 1.0),
    "oneig_wac": ("", None, "", 1.0),
    "oneig_text_score": ("", None, "", 1.0),
    "mario_precision": ("", None, "", 1.0),
    "mario_recall": ("", None, "", 1.0),
    "mario_f": ("", None, "", 1.0),
    "mario_acc": ("", None, "", 1.0),
    "longtext_word_acc": ("", None, "", 1.0),
}


DEFAULT_CEILING_MARGIN_DB = 3.0


FIDELITY_GATES = ("psnr_over_ceiling", "psnr", "ssim")


DECISIONS = ("pass", "fail", "inconclusive")


NEEDS = {"clip_score": "a prompt", "prompt_following": "hard negatives", "text_exact": "target text",
          "text_similarity": "target text", "word_recall": "target text"}


def applies(metric: str, prompt) -> bool:
    """Whether a metric is defined for a prompt (prompt following needs negatives, text metrics target text)."""
    if prompt is None or metric == "clip_score":
        return True
    if metric == "prompt_following":
        return bool(prompt.negatives)
    return bool(prompt.target_text)
