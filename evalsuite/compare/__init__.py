"""Paired comparison of two run folders: did the candidate (a quantized model, a LoRA, another stack)
get worse than the baseline? The decision rule is defined in docs/compare.md.

    compare(baseline_run, candidate_run, metrics=None, margins=None, pairs=None, ...) -> CompareResult
    write_outputs(result, out_dir)   compare.md, compare.json, deltas.png, regressed.html
    format_verdict(result)           the verdict table printed by `evalsuite compare` (evalsuite.report.compare_page)
    exit_code(result)                0 pass, 1 any fail (hard gates included), 3 inconclusive and none fail

The package: facts.py (each metric's margin, unit, scale: one table), options.py (parsing), pairing.py
(pairing, hard gates, per-metric deltas, fidelity gates), fidelity.py (CLIP and LPIPS fidelity), verdict.py,
result.py (the pydantic result), outputs.py (the files). The decision statistics are in metrics/stats.py;
text, chart and HTML are on the report side (report/compare_page.py) and read only the result type.

Steps, all pure functions over the two runs' records, images and score tables (`load_scores`):
1. Backend mapping: `pairs` {baseline label: candidate label}; default the only backend of each run,
   else the labels present in both runs.
2. Items paired by (prompt id, seed); everything else is listed as unmatched with the reason.
3. Hard gates first: a candidate item that failed / was filtered, or whose image is blank
   (`metrics.fidelity.image_gate`), fails the comparison whatever its metrics say.
4. Per metric: delta = candidate - baseline per prompt (the paired seeds averaged), the mean delta with
   a paired CI over prompts (metrics.stats; 90% two-sided for the decision, 95% reported); text_exact also
   gets McNemar's discordant counts. Decision with margin m: pass when CI90 low > -m, fail when
   CI90 high < -m, else inconclusive with n ~ 6.2 sd(delta)^2 / m^2 prompts to decide it.
5. Fidelity to the baseline per pair: PSNR (identical images: +inf, averaged as the image's maximum
   PSNR, one grey level in one value), SSIM, CLIP image-image cosine when CLIP weights load (else
   missing with the reason), LPIPS only when its backbone weights are already on disk (never
   downloaded, never substituted). Beside them the seed ceiling: the baseline against itself with
   another seed of the same prompt. Gate `psnr_over_ceiling` (default 3 dB): the candidate's PSNR
   must stay clearly above what an image of another seed scores; optional absolute gates `psnr`
   (--min-psnr) and `ssim` (--min-ssim). Each gate decides like a metric (CI90 against the threshold).
6. Stack check (hardware, torch, diffusers, CUDA, device) -> warnings; memory/speed per variant.
"""

from __future__ import annotations

from typing import Any

from ..metrics.stats import (DECISION_CONFIDENCE, N_POWER, REPORT_CONFIDENCE, decide, mcnemar, min_paired_prompts,
                             prompts_needed)
from .facts import COMPARE_VERSION, DECISIONS, DEFAULT_CEILING_MARGIN_DB, FIDELITY_GATES, METRICS
from .fidelity import LPIPS_BACKBONE
from .options import parse_allow_missing, parse_margins, parse_metrics, parse_pairs
from .outputs import default_out_dir, write_outputs
from .pairing import compare, resolve_pairs, stack_warnings, variant_costs
from .result import CompareResult, MetricResult, PairResult
from .verdict import exit_code, gated_decisions, overall_verdict, rests_on

__all__ = ["COMPARE_VERSION", "DECISIONS", "DECISION_CONFIDENCE", "DEFAULT_CEILING_MARGIN_DB", "FIDELITY_GATES",
           "LPIPS_BACKBONE", "METRICS", "N_POWER", "REPORT_CONFIDENCE", "CompareResult", "MetricResult", "PairResult",
           "chart_png", "compare", "decide", "default_out_dir", "exit_code", "format_verdict", "gated_decisions",
           "mcnemar", "min_paired_prompts", "overall_verdict", "parse_allow_missing", "parse_margins",
           "parse_metrics", "parse_pairs", "prompts_needed", "resolve_pairs", "rests_on", "stack_warnings",
           "thumbnail_data_uri", "variant_costs", "write_outputs"]

_REPORT_SIDE = ("format_verdict", "chart_png", "thumbnail_data_uri")


def __getattr__(name: str) -> Any:
    # the text and pages live on the report side, which imports this package: re-exported lazily, no circle
    if name in _REPORT_SIDE:
        from ..report import compare_page

        return getattr(compare_page, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
