"""Paired comparison of two run folders: did the candidate (a quantized model, a LoRA, another stack)
get worse than the baseline? The decision rule is metrics.md "Paired comparison"; docs/compare.md.

    compare(baseline_run, candidate_run, metrics=None, margins=None, pairs=None, ...) -> dict
    write_outputs(result, out_dir)   compare.md, compare.json, deltas.png, regressed.html
    format_verdict(result)           the verdict table printed by `evalsuite compare`
    exit_code(result)                0 pass, 1 any fail (hard gates included), 3 inconclusive and none fail

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

import base64
import io
import json
import math
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .errors import EvalsuiteError
from .runfolder import RunFolder, atomic_write_bytes, atomic_write_json, atomic_write_text

COMPARE_VERSION = "compare/v1"
DECISION_CONFIDENCE = 0.90          # two-sided 90% CI = one-sided alpha 0.05 non-inferiority
REPORT_CONFIDENCE = 0.95
N_POWER = 6.2                       # (z_0.95 + z_0.80)^2: prompts for 80% power at one-sided alpha 0.05

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


# ---------------------------------------------------------------- parsing (one-line errors)

def _split(values: str | Iterable[str] | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [p.strip() for v in values for p in str(v).split(",") if p.strip()]


def parse_metrics(values: str | Iterable[str] | None) -> list[str]:
    """--metrics clip_score,text_exact -> the metrics to compare (default: all known)."""
    out = []
    for m in _split(values):
        if m not in METRICS:
            raise EvalsuiteError(f"--metrics: unknown metric '{m}'; choose from {', '.join(METRICS)}")
        if m not in out:
            out.append(m)
    return out or list(METRICS)


def parse_margins(values: str | Iterable[str] | Mapping[str, float] | None) -> dict[str, float]:
    """--margin text_exact=5 --margin clip_score=1,prompt_following=2 -> {metric: margin}; margins are
    in the metric's reported unit (percentage points for rates, points for clip_score) and > 0."""
    if isinstance(values, Mapping):
        values = [f"{k}={v}" for k, v in values.items()]
    out: dict[str, float] = {}
    for part in _split(values):
        if "=" not in part:
            raise EvalsuiteError(f"--margin '{part}': expected metric=value, e.g. text_exact=3")
        k, v = (s.strip() for s in part.split("=", 1))
        if k not in METRICS:
            raise EvalsuiteError(f"--margin '{part}': unknown metric '{k}'; choose from {', '.join(METRICS)}")
        try:
            x = float(v)
        except ValueError:
            raise EvalsuiteError(f"--margin '{part}': '{v}' is not a number") from None
        if not math.isfinite(x) or x <= 0:
            raise EvalsuiteError(f"--margin '{part}': the margin must be a number > 0")
        if k in out and out[k] != x:
            raise EvalsuiteError(f"--margin: '{k}' given twice ({out[k]:g} and {x:g})")
        out[k] = x
    return out


def parse_allow_missing(values: str | Iterable[str] | None, metric_list: Sequence[str] | None = None) -> list[str]:
    """--allow-missing clip_score,prompt_following -> metrics whose absence does not make the verdict
    inconclusive (the verdict names them)."""
    out = []
    for m in _split(values):
        if m not in METRICS:
            raise EvalsuiteError(f"--allow-missing: unknown metric '{m}'; choose from {', '.join(METRICS)}")
        if metric_list is not None and m not in metric_list:
            raise EvalsuiteError(f"--allow-missing {m}: '{m}' is not among --metrics ({', '.join(metric_list)})")
        if m not in out:
            out.append(m)
    return out


def parse_pairs(values: str | Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """--pair BASE_LABEL=CAND_LABEL (repeatable) -> {baseline label: candidate label}."""
    if isinstance(values, Mapping):
        return dict(values)
    out: dict[str, str] = {}
    for v in ([values] if isinstance(values, str) else list(values or [])):
        if "=" not in v:
            raise EvalsuiteError(f"--pair '{v}': expected BASELINE_LABEL=CANDIDATE_LABEL")
        b, c = (s.strip() for s in v.split("=", 1))
        if not b or not c:
            raise EvalsuiteError(f"--pair '{v}': expected BASELINE_LABEL=CANDIDATE_LABEL")
        if b in out:
            raise EvalsuiteError(f"--pair: baseline backend '{b}' is paired twice")
        out[b] = c
    return out


def _check_threshold(name: str, value: float | None, lo: float, hi: float | None = None) -> float | None:
    if value is None:
        return None
    x = float(value)
    if not math.isfinite(x) or x < lo or (hi is not None and x > hi):
        rng = f">= {lo:g}" if hi is None else f"between {lo:g} and {hi:g}"
        raise EvalsuiteError(f"--{name}: {value} must be a number {rng}")
    return x


# ---------------------------------------------------------------- small statistics

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


def _ci(values: Sequence[float], confidence: float, rate_scale: float | None = None):
    """Student-t on the per-prompt values; rate_scale (100 for percentage points, 1 for a 0-1 scale): the values
    are deltas of a rate and get the paired rate interval (stats.paired_rate_delta_ci) on values / rate_scale."""
    from .metrics.stats import CI, mean_ci, paired_rate_delta_ci

    if rate_scale is None:
        return mean_ci([[v] for v in values], confidence=confidence)
    c = paired_rate_delta_ci([v / rate_scale for v in values], confidence=confidence)
    return CI(c.mean * rate_scale, c.low * rate_scale, c.high * rate_scale, c.n, confidence, 0, 0)


def min_paired_prompts(margin: float | None, rate_scale: float | None) -> int:
    """The fewest paired prompts a gated metric is decided on (stats.MIN_PAIRED_PROMPTS), and for a rate the
    fewest at which a perfect tie could pass its margin (stats.min_prompts_for_margin)."""
    from .metrics.stats import MIN_PAIRED_PROMPTS, min_prompts_for_margin

    if margin is None or rate_scale is None:
        return MIN_PAIRED_PROMPTS
    return min_prompts_for_margin(margin / rate_scale, confidence=DECISION_CONFIDENCE)


def _summary(per_prompt: Mapping[str, float], bound: float | None = None, decision_name: str | None = None,
             rate_scale: float | None = None) -> dict[str, Any]:
    """Mean over prompts with 90% and 95% CIs (and a decision against `bound`). Below stats.MIN_PAIRED_PROMPTS
    prompts the decision is inconclusive whatever the interval says (`too_few`)."""
    from .metrics.stats import MIN_PAIRED_PROMPTS

    vals = [v for v in per_prompt.values() if math.isfinite(v)]
    c90, c95 = _ci(vals, DECISION_CONFIDENCE, rate_scale), _ci(vals, REPORT_CONFIDENCE, rate_scale)
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


def _gist(reason: str) -> str:
    """A missing reason's first part for the verdict line (the table and compare.json keep it whole)."""
    cut = reason.find("): ")
    return reason[: cut + 1] if cut > 0 else reason


# ---------------------------------------------------------------- reading the runs

def _load_image(root: Path, rel: str) -> np.ndarray:
    from PIL import Image

    with Image.open(root / rel) as im:
        return np.asarray(im.convert("RGB"))


def resolve_pairs(base_labels: Sequence[str], cand_labels: Sequence[str], pairs: Mapping[str, str] | None
                  ) -> dict[str, str]:
    if pairs:
        for b, c in pairs.items():
            if b not in base_labels:
                raise EvalsuiteError(f"--pair {b}={c}: the baseline run has no backend '{b}' "
                                     f"(it has: {', '.join(base_labels) or 'none'})")
            if c not in cand_labels:
                raise EvalsuiteError(f"--pair {b}={c}: the candidate run has no backend '{c}' "
                                     f"(it has: {', '.join(cand_labels) or 'none'})")
        return dict(pairs)
    if len(base_labels) == 1 and len(cand_labels) == 1:
        return {base_labels[0]: cand_labels[0]}
    common = [b for b in base_labels if b in cand_labels]
    if common:
        return {b: b for b in common}
    raise EvalsuiteError(f"cannot tell which backends to compare: baseline has {', '.join(base_labels) or 'none'}, "
                         f"candidate has {', '.join(cand_labels) or 'none'}; give --pair BASELINE_LABEL=CANDIDATE_LABEL")


def stack_warnings(base_info, cand_info, pairs: Mapping[str, str]) -> list[str]:
    """Differences in hardware and software that change images for the same seed (metrics.md)."""
    be, ce = base_info.environment, cand_info.environment
    out = []
    checks = [("hardware", be.get("hardware"), ce.get("hardware")), ("GPU", be.get("gpu"), ce.get("gpu")),
              ("CUDA", be.get("cuda"), ce.get("cuda"))]
    for pkg in ("torch", "diffusers", "transformers"):
        checks.append((pkg, (be.get("packages") or {}).get(pkg), (ce.get("packages") or {}).get(pkg)))
    for name, a, b in checks:
        if a != b:
            out.append(f"different {name}: baseline {a or 'none'}, candidate {b or 'none'}")
    for bl, cl in pairs.items():
        a = base_info.backends[bl].config.get("device")
        b = cand_info.backends[cl].config.get("device")
        if a != b:
            out.append(f"{bl} -> {cl}: different device: baseline {a}, candidate {b}")
    if out:
        out.append("images for the same seed differ across stacks (another GPU, a CPU vs a CUDA generator); "
                   "fidelity and deltas then mix the stack change with the candidate's")
    return out


def variant_costs(rf: RunFolder, label: str) -> dict[str, Any]:
    """Weight memory (run.json), peak memory and median seconds per image (warm-up items excluded)."""
    info = rf.info
    b = info.backends[label]
    wm = b.config.get("weight_memory") or {}
    quant = b.config.get("quantization") or None
    lat, vram, rss, n_warm = [], [], [], 0
    for e, r in rf.records():
        if e.backend != label or r is None or r.status != "ok":
            continue
        if r.peak_vram_gb is not None:
            vram.append(r.peak_vram_gb)
        if r.peak_rss_gb is not None:
            rss.append(r.peak_rss_gb)
        if r.warmup:
            n_warm += 1
        elif r.latency_s is not None:
            lat.append(r.latency_s)
    return {
        "backend": label, "spec": b.spec, "hardware": info.environment.get("hardware"),
        "quantization": (quant or {}).get("scheme") if isinstance(quant, dict) else quant,
        "weight_bytes": wm.get("total_bytes") if isinstance(wm, dict) else None,
        "peak_vram_gb": max(vram) if vram else None, "peak_rss_gb": max(rss) if rss else None,
        "median_s": float(np.median(lat)) if lat else None, "n_timed": len(lat), "n_warmup": n_warm,
        "load_s": b.load_s,
    }


def _scores_by_item(df, label: str, metric: str, variant: str, scorer_id: str | None) -> dict[tuple[str, int], float]:
    if df is None or df.empty or scorer_id is None:
        return {}
    sub = df[(df.backend == label) & (df.metric == metric) & (df.variant == variant) & (df.scorer_id == scorer_id)
             & df.missing_reason.isna()]
    return {(r.prompt_id, int(r.seed)): float(r.value) for r in sub.itertuples() if r.seed is not None}


def _pick_scorer(bdf, cdf, bl: str, cl: str, metric: str, variant: str) -> tuple[str | None, str | None]:
    """The scorer identity both runs have for this metric (the best-of OCR combination first);
    (None, reason) when there is none."""
    def ids(df, label):
        if df is None or df.empty:
            return {}
        sub = df[(df.backend == label) & (df.metric == metric) & (df.variant == variant)]
        return {sid: sub[sub.scorer_id == sid] for sid in sub.scorer_id.unique()}

    bi, ci = ids(bdf, bl), ids(cdf, cl)
    common = [s for s in bi if s in ci]
    if not bi and not ci:
        return None, "not scored in either run (evalsuite score RUN_DIR)"
    if not common:
        return None, "the two runs were scored with different scorers" if bi and ci else \
            f"not scored in the {'candidate' if bi else 'baseline'} run"
    common.sort(key=lambda s: ("+" not in str(bi[s]["model"].iloc[0]), s))
    for s in common:
        if bi[s].missing_reason.isna().any() and ci[s].missing_reason.isna().any():
            return s, None
    reasons = set(bi[common[0]].missing_reason.dropna()) | set(ci[common[0]].missing_reason.dropna())
    return None, "; ".join(sorted(reasons)) or "no values"


_NEEDS = {"clip_score": "a prompt", "prompt_following": "hard negatives", "text_exact": "target text",
          "text_similarity": "target text", "word_recall": "target text"}


def _applies(metric: str, prompt) -> bool:
    """Whether a metric is defined for a prompt (prompt following needs negatives, text metrics target text)."""
    if prompt is None or metric == "clip_score":
        return True
    if metric == "prompt_following":
        return bool(prompt.negatives)
    return bool(prompt.target_text)


# ---------------------------------------------------------------- the comparison

def compare(baseline_run: str | Path, candidate_run: str | Path, *, metrics: str | Iterable[str] | None = None,
            margins: str | Iterable[str] | Mapping[str, float] | None = None,
            pairs: str | Iterable[str] | Mapping[str, str] | None = None,
            ceiling_margin_db: float | None = DEFAULT_CEILING_MARGIN_DB, min_psnr: float | None = None,
            min_ssim: float | None = None, clip_model: str | None = None, fidelity_clip: bool = True,
            progress: bool = False, allow_missing: str | Iterable[str] | None = None) -> dict[str, Any]:
    """Compare a candidate run against a baseline run; returns a JSON-serialisable result (see module doc)."""
    from .metrics.fidelity import image_gate, psnr_db, ssim
    from .scoring import load_scores

    metric_list = parse_metrics(metrics)
    margin_map = parse_margins(margins)
    for k in margin_map:
        if k not in metric_list:
            raise EvalsuiteError(f"--margin {k}=...: '{k}' is not among --metrics ({', '.join(metric_list)})")
    allowed = parse_allow_missing(allow_missing, metric_list)
    pair_map = parse_pairs(pairs)
    ceiling_margin_db = _check_threshold("ceiling-margin-db", ceiling_margin_db, 0.0)
    min_psnr = _check_threshold("min-psnr", min_psnr, 0.0)
    min_ssim = _check_threshold("min-ssim", min_ssim, -1.0, 1.0)

    brf, crf = RunFolder(baseline_run), RunFolder(candidate_run)
    binfo, cinfo = brf.info, crf.info
    pair_map = resolve_pairs(list(binfo.backends), list(cinfo.backends), pair_map)
    bprompts, cprompts = brf.prompts(), crf.prompts()
    brecs = {(e.backend, e.prompt_id, e.seed): (e, r) for e, r in brf.records()}
    crecs = {(e.backend, e.prompt_id, e.seed): (e, r) for e, r in crf.records()}
    bdf, cdf = load_scores(brf.path), load_scores(crf.path)

    warnings = stack_warnings(binfo, cinfo, pair_map)
    bps, cps = binfo.prompt_set, cinfo.prompt_set
    if bps.get("sha256") != cps.get("sha256"):
        warnings.append(f"different prompt sets: baseline {bps.get('name')} ({bps.get('count')} prompts, "
                        f"sha256 {str(bps.get('sha256'))[:12]}), candidate {cps.get('name')} ({cps.get('count')} "
                        f"prompts, sha256 {str(cps.get('sha256'))[:12]}); only shared prompts are compared")
    if binfo.seeds != cinfo.seeds:
        warnings.append(f"different seeds: baseline {binfo.seeds}, candidate {cinfo.seeds}")

    result: dict[str, Any] = {
        "version": COMPARE_VERSION, "baseline": {"run": str(brf.path), "prompt_set": bps, "seeds": binfo.seeds},
        "candidate": {"run": str(crf.path), "prompt_set": cps, "seeds": cinfo.seeds},
        "pairs": [], "warnings": warnings, "decision_confidence": DECISION_CONFIDENCE, "allow_missing": allowed,
    }
    clip_state: dict[str, Any] = {}
    for bl, cl in pair_map.items():
        result["pairs"].append(_compare_pair(
            brf, crf, bl, cl, brecs, crecs, bprompts, cprompts, bdf, cdf, metric_list, margin_map,
            ceiling_margin_db, min_psnr, min_ssim, clip_model, fidelity_clip, clip_state, progress,
            image_gate, psnr_db, ssim, allowed))
    result["verdict"] = overall_verdict(result)
    return result


def _compare_pair(brf, crf, bl, cl, brecs, crecs, bprompts, cprompts, bdf, cdf, metric_list, margin_map,
                  ceiling_margin_db, min_psnr, min_ssim, clip_model, fidelity_clip, clip_state, progress,
                  image_gate, psnr_db, ssim, allowed=()) -> dict[str, Any]:
    from tqdm.auto import tqdm

    bkeys = {(p, s) for (b, p, s) in brecs if b == bl}
    ckeys = {(p, s) for (b, p, s) in crecs if b == cl}
    unmatched: list[dict[str, Any]] = []
    for p, s in sorted(bkeys - ckeys, key=str):
        unmatched.append({"prompt_id": p, "seed": s, "side": "baseline", "reason": "no candidate item"})
    for p, s in sorted(ckeys - bkeys, key=str):
        unmatched.append({"prompt_id": p, "seed": s, "side": "candidate", "reason": "no baseline item"})
    matched: list[tuple[str, int]] = []
    gate_fail: list[dict[str, Any]] = []
    images: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
    n_checked = 0
    for p, s in sorted(bkeys & ckeys, key=str):
        be, br = brecs[(bl, p, s)]
        ce, cr = crecs[(cl, p, s)]
        bp, cp = bprompts.get(p), cprompts.get(p)
        if bp is not None and cp is not None and (bp.prompt != cp.prompt or bp.target_text != cp.target_text):
            unmatched.append({"prompt_id": p, "seed": s, "side": "both", "reason": "the prompt differs between the runs"})
            continue
        if br is None:
            unmatched.append({"prompt_id": p, "seed": s, "side": "baseline", "reason": "baseline item not generated yet"})
            continue
        if br.status != "ok":
            unmatched.append({"prompt_id": p, "seed": s, "side": "baseline",
                              "reason": f"baseline item {br.status}: {br.error or ''}".rstrip(": ")})
            continue
        if cr is None:
            unmatched.append({"prompt_id": p, "seed": s, "side": "candidate", "reason": "candidate item not generated yet"})
            continue
        n_checked += 1
        if cr.status != "ok" or not cr.image:
            gate_fail.append({"prompt_id": p, "seed": s, "reason": f"candidate item {cr.status}: {cr.error or 'no image'}"})
            continue
        cimg = _load_image(crf.path, cr.image)
        why = image_gate(cimg)
        if why:
            gate_fail.append({"prompt_id": p, "seed": s, "reason": why})
            continue
        matched.append((p, s))
        images[(p, s)] = (_load_image(brf.path, br.image), cimg)

    out: dict[str, Any] = {
        "baseline_backend": bl, "candidate_backend": cl,
        "baseline_spec": brf.info.backends[bl].spec, "candidate_spec": crf.info.backends[cl].spec,
        "labelled_noise": bool(brf.info.backends[bl].labelled_noise or crf.info.backends[cl].labelled_noise),
        "n_pairs": len(matched), "n_prompts": len({p for p, _ in matched}), "unmatched": unmatched,
        "hard_gates": {"checked": n_checked, "failed": gate_fail,
                       "decision": "fail" if gate_fail else ("pass" if n_checked else "inconclusive")},
    }

    # per metric deltas
    mres: dict[str, Any] = {}
    mset = set(matched)
    for m in metric_list:
        variant, default_margin, unit, scale = METRICS[m]
        margin = margin_map.get(m, default_margin)
        rate_scale = scale if unit == "pp" or m == "text_similarity" else None
        applies = [k for k in sorted(mset, key=str) if _applies(m, bprompts.get(k[0]) or cprompts.get(k[0]))]
        sid, why = _pick_scorer(bdf, cdf, bl, cl, m, variant)
        entry: dict[str, Any] = {"metric": m, "variant": variant, "unit": unit, "margin": margin,
                                 "gated": margin is not None, "scorer_id": sid, "n_applicable": len(applies),
                                 "allowed_missing": m in allowed}
        if not mset:
            entry.update(decision="missing", missing_reason="no paired items (every candidate item failed a hard gate "
                                                            "or has no counterpart)")
            mres[m] = entry
            continue
        if not applies:
            entry.update(decision="not applicable", missing_reason=f"no paired item's prompt has {_NEEDS[m]}")
            mres[m] = entry
            continue
        if sid is None:
            # a gated metric that was not measured makes the verdict inconclusive (unless --allow-missing names it)
            entry.update(decision="missing", missing_reason=why)
            mres[m] = entry
            continue
        bv = _scores_by_item(bdf, bl, m, variant, sid)
        cv = _scores_by_item(cdf, cl, m, variant, sid)
        both = [k for k in applies if k in bv and k in cv]
        per_b: dict[str, list[float]] = {}
        per_c: dict[str, list[float]] = {}
        for p, s in both:
            per_b.setdefault(p, []).append(bv[(p, s)] * scale)
            per_c.setdefault(p, []).append(cv[(p, s)] * scale)
        deltas = {p: float(np.mean(per_c[p]) - np.mean(per_b[p])) for p in per_b}
        entry["n_items"] = len(both)
        entry["n_unscored_baseline"] = len([k for k in applies if k not in bv])
        entry["n_unscored_candidate"] = len([k for k in applies if k not in cv])
        entry["n_items_missing"] = len(applies) - len(both)
        if not deltas:
            entry.update(decision="missing", missing_reason=f"none of the {len(applies)} paired items has a value in "
                                                            "both runs")
            mres[m] = entry
            continue
        entry["baseline_mean"] = float(np.mean([np.mean(v) for v in per_b.values()]))
        entry["candidate_mean"] = float(np.mean([np.mean(v) for v in per_c.values()]))
        summ = _summary(deltas, -margin if margin is not None else None, rate_scale=rate_scale)
        entry.update({"delta": summ["mean"], "ci90": summ["ci90"], "ci95": summ["ci95"], "sd": summ["sd"],
                      "n_prompts": summ["n_prompts"], "ci_method": summ["ci_method"], "per_prompt_delta": deltas})
        if margin is not None:
            entry["min_prompts"] = min_paired_prompts(margin, rate_scale)
            entry["decision"] = summ["decision"]
            if summ.get("too_few"):
                entry["inconclusive_reason"] = summ["too_few"]
            elif summ["decision"] == "inconclusive" and summ["n_prompts"] < entry["min_prompts"]:
                entry["inconclusive_reason"] = (f"too few paired prompts for a margin of {margin:g} {unit}: n="
                                                f"{summ['n_prompts']}, it needs >= {entry['min_prompts']} to pass")
            if entry["n_items_missing"] and summ["decision"] != "fail":
                entry["decision"] = "inconclusive"
                entry["inconclusive_reason"] = (
                    f"{entry['n_items_missing']} of {len(applies)} paired items unscored (baseline "
                    f"{entry['n_unscored_baseline']}, candidate {entry['n_unscored_candidate']})")
            if entry["decision"] == "inconclusive":
                entry["prompts_needed"] = max(prompts_needed(summ["sd"], margin) or 0, entry["min_prompts"])
        else:
            entry["decision"] = "reported"
        if m == "text_exact":
            entry["mcnemar"] = mcnemar([(bv[k], cv[k]) for k in both])
        mres[m] = entry
    out["metrics"] = mres

    # fidelity to the baseline and the seed ceiling
    fid: dict[str, dict[tuple[str, int], float]] = {"psnr": {}, "ssim": {}}
    identical = 0
    maxp: dict[tuple[str, int], float] = {}
    size_mismatch = []
    it = tqdm(matched, desc=f"fidelity {cl}", unit="pair", disable=not progress, leave=False)
    for k in it:
        a, b = images[k]
        if a.shape != b.shape:
            size_mismatch.append(k)
            continue
        maxp[k] = 10 * math.log10(255.0**2 * a.size)
        v = psnr_db(a, b)
        identical += math.isinf(v)
        fid["psnr"][k] = v
        fid["ssim"][k] = ssim(a, b)
    ceil: dict[str, dict[tuple[str, int], float]] = {"psnr": {}, "ssim": {}}
    ceil_pairs: list[tuple[str, int, int]] = []
    bseeds: dict[str, list[int]] = {}
    for (b, p, s), (e, r) in brecs.items():
        if b == bl and r is not None and r.status == "ok" and r.image:
            bseeds.setdefault(p, []).append(s)
    for p in sorted({p for p, _ in matched}):
        ss = sorted(bseeds.get(p, []))
        for s0, s1 in zip(ss, ss[1:]):
            r0, r1 = brecs[(bl, p, s0)][1], brecs[(bl, p, s1)][1]
            a, b = _load_image(brf.path, r0.image), _load_image(brf.path, r1.image)
            if a.shape != b.shape:
                continue
            v = psnr_db(a, b)
            ceil["psnr"][(p, s0)] = min(v, 10 * math.log10(255.0**2 * a.size))
            ceil["ssim"][(p, s0)] = ssim(a, b)
            ceil_pairs.append((p, s0, s1))

    def per_prompt(d: Mapping[tuple[str, int], float], cap: Mapping[tuple[str, int], float] | None = None):
        acc: dict[str, list[float]] = {}
        for (p, s), v in d.items():
            acc.setdefault(p, []).append(min(v, cap[(p, s)]) if cap is not None else v)
        return {p: float(np.mean(v)) for p, v in acc.items()}

    fres: dict[str, Any] = {"n_pairs": len(fid["psnr"]), "identical_pairs": identical,
                            "size_mismatch": [list(k) for k in size_mismatch], "ceiling_pairs": len(ceil_pairs)}
    pp_psnr = per_prompt(fid["psnr"], maxp)
    pp_ssim = per_prompt(fid["ssim"])
    if fid["psnr"]:
        vals = list(fid["psnr"].values())
        fres["psnr"] = {**_summary(pp_psnr), "median_item": float(np.median(vals)), "min_item": float(min(vals)),
                        "all_identical": identical == len(vals), "max_psnr_db": max(maxp.values()),
                        "per_prompt": pp_psnr}
        fres["ssim"] = {**_summary(pp_ssim), "min_item": float(min(fid["ssim"].values())), "per_prompt": pp_ssim}
    else:
        fres["psnr"] = fres["ssim"] = {"missing_reason": "no paired images"}
    cp_psnr, cp_ssim = per_prompt(ceil["psnr"]), per_prompt(ceil["ssim"])
    if ceil_pairs:
        fres["ceiling"] = {"psnr": _summary(cp_psnr), "ssim": _summary(cp_ssim), "per_prompt_psnr": cp_psnr,
                           "what": "baseline vs itself, consecutive seeds of the same prompt"}
    else:
        fres["ceiling"] = {"missing_reason": "the baseline has fewer than 2 seeds per prompt: no seed ceiling"}
    fres["clip_cosine"] = _clip_fidelity(matched, images, clip_model, clip_state) if fidelity_clip else \
        {"missing_reason": "not requested"}
    fres["lpips"] = _lpips_fidelity(matched, images)

    gates: dict[str, Any] = {}
    if ceiling_margin_db is not None and ceiling_margin_db > 0:
        excess = {p: pp_psnr[p] - cp_psnr[p] for p in pp_psnr if p in cp_psnr}
        g = {"threshold": ceiling_margin_db, "unit": "dB above the seed ceiling", "gated": True}
        if excess:
            s = _summary(excess, ceiling_margin_db, "threshold")
            g.update(value=s["mean"], ci90=s["ci90"], ci95=s["ci95"], n_prompts=s["n_prompts"],
                     decision=s["decision"], **({"prompts_needed": s["prompts_needed"]} if "prompts_needed" in s else {}),
                     **({"inconclusive_reason": s["too_few"]} if "too_few" in s else {}))
        else:
            g.update(decision="missing", missing_reason=fres["ceiling"].get("missing_reason") or "no paired images")
        gates["psnr_over_ceiling"] = g
    for name, thr, pp, unit in (("psnr", min_psnr, pp_psnr, "dB"), ("ssim", min_ssim, pp_ssim, "")):
        if thr is None:
            continue
        g = {"threshold": thr, "unit": unit, "gated": True}
        if pp:
            s = _summary(pp, thr, "threshold")
            g.update(value=s["mean"], ci90=s["ci90"], ci95=s["ci95"], n_prompts=s["n_prompts"], decision=s["decision"],
                     **({"prompts_needed": s["prompts_needed"]} if "prompts_needed" in s else {}),
                     **({"inconclusive_reason": s["too_few"]} if "too_few" in s else {}))
        else:
            g.update(decision="missing", missing_reason="no paired images")
        gates[name] = g
    fres["gates"] = gates
    out["fidelity"] = fres
    out["costs"] = {"baseline": variant_costs(brf, bl), "candidate": variant_costs(crf, cl)}
    out["regressed"] = _most_regressed(out, images, matched, gate_fail, brecs, crecs, bl, cl)
    return out


def _clip_fidelity(matched, images, clip_model, state) -> dict[str, Any]:
    """CLIP image-image cosine per pair, when the CLIP weights load (never downloaded into a missing number)."""
    from PIL import Image

    from .scoring.clip import ClipUnavailable, load_clip, parse_clip_model

    if not matched:
        return {"missing_reason": "no paired images"}
    spec = parse_clip_model(clip_model)
    if "error" in state:
        return {"missing_reason": state["error"], "model": spec.identity}
    try:
        cm = load_clip(spec)
    except ClipUnavailable as e:
        state["error"] = str(e)
        return {"missing_reason": str(e), "model": spec.identity}
    cos: dict[tuple[str, int], float] = {}
    for i in range(0, len(matched), 16):
        chunk = matched[i:i + 16]
        ea = cm.encode_images([Image.fromarray(images[k][0]) for k in chunk])
        eb = cm.encode_images([Image.fromarray(images[k][1]) for k in chunk])
        for k, v in zip(chunk, (ea * eb).sum(dim=-1).tolist()):
            cos[k] = float(v)
    acc: dict[str, list[float]] = {}
    for (p, _), v in cos.items():
        acc.setdefault(p, []).append(v)
    return {**_summary({p: float(np.mean(v)) for p, v in acc.items()}), "model": spec.identity}


LPIPS_BACKBONE = "alexnet-owt-7be5be79.pth"


def _lpips_fidelity(matched, images) -> dict[str, Any]:
    """LPIPS (torchmetrics, AlexNet) only when torchvision's AlexNet weights are already on disk."""
    try:
        import torch

        ckpt = Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONE
    except ImportError:
        return {"missing_reason": "torch is not installed"}
    if not ckpt.is_file():
        return {"missing_reason": f"LPIPS weights unavailable: torchvision's AlexNet backbone ({ckpt}) is not on "
                                  "disk and is never downloaded during a comparison; no substitute is computed"}
    if not matched:
        return {"missing_reason": "no paired images"}
    try:
        from torchmetrics.functional.image.lpips import learned_perceptual_image_patch_similarity as lpips
    except ImportError as e:
        return {"missing_reason": f"LPIPS unavailable: {e}"}
    acc: dict[str, list[float]] = {}
    for p, s in matched:
        a, b = images[(p, s)]
        if a.shape != b.shape:
            continue
        ta = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 127.5 - 1
        tb = torch.from_numpy(b).permute(2, 0, 1)[None].float() / 127.5 - 1
        acc.setdefault(p, []).append(float(lpips(ta, tb, net_type="alex")))
    return {**_summary({p: float(np.mean(v)) for p, v in acc.items()}), "net": "alex",
            "note": "lower is more faithful"}


def _most_regressed(pair, images, matched, gate_fail, brecs, crecs, bl, cl, top: int = 8) -> list[dict[str, Any]]:
    """Prompts ranked worst first: hard-gate failures, then the lowest delta/margin over gated metrics,
    then the lowest PSNR. Each with its deltas and the relative image paths of one seed."""
    rows: dict[str, dict[str, Any]] = {}
    for g in gate_fail:
        r = rows.setdefault(g["prompt_id"], {"prompt_id": g["prompt_id"], "seed": g["seed"], "gate": g["reason"],
                                             "deltas": {}})
        r.setdefault("gate", g["reason"])
    psnr_pp = (pair["fidelity"].get("psnr") or {}).get("per_prompt", {})
    for m, e in pair["metrics"].items():
        for p, d in (e.get("per_prompt_delta") or {}).items():
            rows.setdefault(p, {"prompt_id": p, "deltas": {}})["deltas"][m] = d
    for p in psnr_pp:
        rows.setdefault(p, {"prompt_id": p, "deltas": {}})
    for p, r in rows.items():
        r["psnr"] = psnr_pp.get(p)
        worst = [d / pair["metrics"][m]["margin"] for m, d in r["deltas"].items() if pair["metrics"][m].get("margin")]
        r["worst_relative_delta"] = min(worst) if worst else None
        if "seed" not in r:
            r["seed"] = min(s for q, s in matched if q == p) if any(q == p for q, _ in matched) else None
        be = brecs.get((bl, p, r["seed"]))
        ce = crecs.get((cl, p, r["seed"]))
        r["baseline_image"] = be[1].image if be and be[1] is not None else None
        r["candidate_image"] = ce[1].image if ce and ce[1] is not None else None

    def key(r):
        return (0 if r.get("gate") else 1, r["worst_relative_delta"] if r["worst_relative_delta"] is not None else 0.0,
                r["psnr"] if r["psnr"] is not None else math.inf)

    return sorted(rows.values(), key=key)[:top]


def gated_decisions(result: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(backend pair, what, decision) for every gate that counts in the overall verdict. A gated metric that
    was not measured, rests on unscored items or on too few prompts is inconclusive (with the reason in
    `what`), unless --allow-missing names a metric that is missing."""
    out = []
    for pr in result["pairs"]:
        where = f"{pr['baseline_backend']} -> {pr['candidate_backend']}"
        out.append((where, "hard gates", pr["hard_gates"]["decision"]))
        ng = [u for u in pr["unmatched"] if u["side"] == "candidate" and "not generated" in u["reason"]]
        if ng:
            out.append((where, f"{len(ng)} candidate item(s) not generated yet", "inconclusive"))
        for m, e in pr["metrics"].items():
            if not e.get("gated") or e["decision"] == "not applicable":
                continue
            if e["decision"] == "missing":
                if not e.get("allowed_missing"):
                    out.append((where, f"{m} (missing: {_gist(e['missing_reason'])})", "inconclusive"))
            elif e["decision"] == "inconclusive" and e.get("inconclusive_reason"):
                out.append((where, f"{m} ({e['inconclusive_reason']})", "inconclusive"))
            elif e["decision"] in DECISIONS:
                out.append((where, m, e["decision"]))
        for g, e in pr["fidelity"]["gates"].items():
            if e["decision"] in DECISIONS:
                what = f"{g} ({e['inconclusive_reason']})" if e.get("inconclusive_reason") else g
                out.append((where, what, e["decision"]))
    return out


def rests_on(result: Mapping[str, Any]) -> dict[str, list[str]]:
    """What the verdict rests on: the gated metrics measured with their pairs and prompts, the gated metrics
    missing (with the reason), those allowed missing, and the reported-only metrics."""
    gated, missing, allowed, na = [], [], [], []
    for pr in result["pairs"]:
        pre = f"{pr['candidate_backend']}: " if len(result["pairs"]) > 1 else ""
        for m, e in pr["metrics"].items():
            if not e.get("gated"):
                continue
            if e["decision"] == "not applicable":
                na.append(f"{pre}{m}")
            elif e["decision"] == "missing":
                (allowed if e.get("allowed_missing") else missing).append(f"{pre}{m} ({_gist(e['missing_reason'])})")
            else:
                gated.append(f"{pre}{m} ({e.get('n_items', 0)} pairs over {e.get('n_prompts', 0)} prompts"
                             + (f", {e['n_items_missing']} unscored" if e.get("n_items_missing") else "") + ")")
        for g, e in pr["fidelity"]["gates"].items():
            if e["decision"] == "missing":
                missing.append(f"{pre}{g} ({_gist(e['missing_reason'])})")
            else:
                gated.append(f"{pre}{g} ({e.get('n_prompts', 0)} prompts)")
    return {"gated": gated, "missing": missing, "allowed_missing": allowed, "not_applicable": na}


def overall_verdict(result: Mapping[str, Any]) -> dict[str, Any]:
    dec = gated_decisions(result)
    failed = [f"{w}: {what}" for w, what, d in dec if d == "fail"]
    inconclusive = [f"{w}: {what}" for w, what, d in dec if d == "inconclusive"]
    measured = [d for w, what, d in dec if what != "hard gates" and d in ("pass", "fail")]
    if failed:
        v = "fail"
    elif inconclusive or not measured:
        v = "inconclusive"
    else:
        v = "pass"
    reason = ("failed: " + ", ".join(failed)) if failed else (
        ("inconclusive: " + ", ".join(inconclusive)) if inconclusive else
        ("no gated metric could be measured (score the runs, or give the baseline 2+ seeds)" if not measured
         else "every gated metric passed"))
    basis = rests_on(result)
    parts = [f"gated: {', '.join(basis['gated']) or 'none measured'}"]
    if basis["missing"]:
        parts.append(f"missing: {', '.join(basis['missing'])}")
    if basis["allowed_missing"]:
        parts.append(f"allowed missing (--allow-missing): {', '.join(basis['allowed_missing'])}")
    if basis["not_applicable"]:
        parts.append(f"not applicable to these prompts: {', '.join(basis['not_applicable'])}")
    return {"decision": v, "exit_code": {"pass": 0, "fail": 1, "inconclusive": 3}[v], "reason": reason,
            "failed": failed, "inconclusive": inconclusive, "rests_on": basis, "basis": "; ".join(parts)}


def exit_code(result: Mapping[str, Any]) -> int:
    return int(result["verdict"]["exit_code"])


# ---------------------------------------------------------------- output

def _f(x, nd=1, signed=False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:+.{nd}f}" if signed else f"{x:.{nd}f}"


def _bytes(n) -> str:
    if n is None:
        return "-"
    for unit, k in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= k:
            return f"{n / k:.2f} {unit}"
    return f"{n} B"


def _table(header: list[str], rows: list[list[str]], md: bool) -> list[str]:
    if md:
        return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"] + \
            ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + rows]


def format_verdict(result: Mapping[str, Any], md: bool = False) -> str:
    """The verdict table (plain text for the terminal, Markdown for compare.md)."""
    L: list[str] = []
    h = (lambda s: f"## {s}") if md else (lambda s: f"-- {s}")
    if md:
        L.append(f"# Paired comparison\n\nbaseline `{result['baseline']['run']}` -> candidate `{result['candidate']['run']}`\n")
    else:
        L.append(f"compare: baseline {result['baseline']['run']} -> candidate {result['candidate']['run']}")
    for pr in result["pairs"]:
        seeds = sorted({s for s in result["baseline"]["seeds"]})
        unscored = {m: e["n_items_missing"] for m, e in pr["metrics"].items() if e.get("n_items_missing")}
        L.append(h(f"{pr['baseline_backend']} ({pr['baseline_spec']}) -> {pr['candidate_backend']} ({pr['candidate_spec']}): "
                   f"{pr['n_pairs']} pairs over {pr['n_prompts']} prompts, seeds {','.join(map(str, seeds))}"
                   + ("; unscored paired items: " + ", ".join(f"{m} {n}" for m, n in unscored.items()) if unscored
                      else "")))
        if pr["labelled_noise"]:
            L.append("random-weight miniature model: its images are noise; these numbers test the plumbing, not quality")
        hg = pr["hard_gates"]
        if hg["failed"]:
            ex = "; ".join(f"{g['prompt_id']} s{g['seed']}: {g['reason']}" for g in hg["failed"][:3])
            L.append(f"hard gates: FAIL: {len(hg['failed'])} of {hg['checked']} candidate items ({ex})")
        else:
            L.append(f"hard gates: {hg['decision']} ({hg['checked']} candidate items checked: none failed, none blank)")
        rows = []
        for m, e in pr["metrics"].items():
            unit = f" ({e['unit']})" if e["unit"] else ""
            scored = f"{e.get('n_items', 0)}/{e.get('n_applicable', 0)}"
            if e["decision"] in ("missing", "not applicable"):
                note = " (allowed by --allow-missing)" if e.get("allowed_missing") and e["decision"] == "missing" else ""
                rows.append([m + unit, scored, "-", "-", "-", "-", "-", _f(e["margin"], 2) if e["margin"] else "-",
                             f"{e['decision']}: {e['missing_reason']}{note}"])
                continue
            dec = e["decision"].upper() if e["decision"] in ("pass", "fail") else e["decision"]
            if e["decision"] == "inconclusive" and e.get("inconclusive_reason"):
                dec += f": {e['inconclusive_reason']}"
            if e["decision"] == "inconclusive" and e.get("prompts_needed"):
                dec += f" (~{e['prompts_needed']} prompts to decide)"
            if e["decision"] == "reported":
                dec = "reported (no margin)"
            extra = ""
            if "mcnemar" in e:
                mc = e["mcnemar"]
                extra = f"; McNemar {mc['baseline_only']} lost / {mc['candidate_only']} gained, p={mc['p_value']:.2g}"
            rows.append([m + unit, scored, _f(e["baseline_mean"], 2), _f(e["candidate_mean"], 2), _f(e["delta"], 2, True),
                         f"[{_f(e['ci90'][0], 2, True)}, {_f(e['ci90'][1], 2, True)}]",
                         f"[{_f(e['ci95'][0], 2, True)}, {_f(e['ci95'][1], 2, True)}]",
                         _f(e["margin"], 2) if e["margin"] else "-", dec + extra])
        fd = pr["fidelity"]
        for g, e in fd["gates"].items():
            dec = e["decision"].upper() if e["decision"] in ("pass", "fail") else e["decision"]
            if e["decision"] == "missing":
                dec = f"missing: {e['missing_reason']}"
            elif e["decision"] == "inconclusive":
                if e.get("inconclusive_reason"):
                    dec += f": {e['inconclusive_reason']}"
                if e.get("prompts_needed"):
                    dec += f" (~{e['prompts_needed']} prompts to decide)"
            label = {"psnr_over_ceiling": "psnr_over_ceiling (dB)", "psnr": "psnr (dB)", "ssim": "ssim"}[g]
            ci90 = e.get("ci90") or [None, None]
            ci95 = e.get("ci95") or [None, None]
            rows.append([label, str(e.get("n_prompts", 0)), "-", _f(e.get("value"), 2), "-", f"[{_f(ci90[0], 2)}, {_f(ci90[1], 2)}]",
                         f"[{_f(ci95[0], 2)}, {_f(ci95[1], 2)}]", f">= {e['threshold']:g}", dec])
        L += _table(["metric", "scored pairs", "baseline", "candidate", "delta", "90% CI", "95% CI", "margin",
                     "decision"], rows, md)
        # fidelity beside the ceiling
        ps, ss = fd.get("psnr", {}), fd.get("ssim", {})
        if "mean" in ps:
            pstr = ("inf (all pairs identical)" if ps["all_identical"] else
                    f"{_f(ps['mean'])} dB mean [95% CI {_f(ps['ci95'][0])}, {_f(ps['ci95'][1])}], median "
                    f"{_f(ps['median_item'])}, min {_f(ps['min_item'])}"
                    + (f"; {fd['identical_pairs']} identical pairs counted at the max PSNR {_f(ps['max_psnr_db'])} dB"
                       if fd["identical_pairs"] else ""))
            L.append(f"fidelity to the baseline ({fd['n_pairs']} pairs): PSNR {pstr}; SSIM {_f(ss['mean'], 3)} "
                     f"(min {_f(ss['min_item'], 3)})")
        else:
            L.append(f"fidelity to the baseline: {ps.get('missing_reason')}")
        c = fd["ceiling"]
        if "psnr" in c:
            L.append(f"seed ceiling (baseline vs another seed, {fd['ceiling_pairs']} pairs): PSNR {_f(c['psnr']['mean'])} dB, "
                     f"SSIM {_f(c['ssim']['mean'], 3)}: what unrelated images score")
        else:
            L.append(f"seed ceiling: {c['missing_reason']}")
        for k, name in (("clip_cosine", "CLIP image-image cosine"), ("lpips", "LPIPS")):
            e = fd[k]
            L.append(f"{name}: " + (f"missing: {e['missing_reason']}" if "missing_reason" in e else
                                    f"{_f(e['mean'], 3)} [95% CI {_f(e['ci95'][0], 3)}, {_f(e['ci95'][1], 3)}]"))
        # memory and speed
        rows = []
        for side in ("baseline", "candidate"):
            cst = pr["costs"][side]
            rows.append([side, cst["spec"], cst["quantization"] or "-", _bytes(cst["weight_bytes"]),
                         _f(cst["peak_vram_gb"], 2), _f(cst["peak_rss_gb"], 2),
                         f"{_f(cst['median_s'], 3)} (n={cst['n_timed']})", _f(cst["load_s"], 1), cst["hardware"] or "-"])
        L.append("memory and speed (median seconds per image, warm-up items excluded; peak RSS is the process's):")
        L += _table(["", "spec", "quant", "weights", "peak VRAM GB", "peak RSS GB", "median s", "load s", "hardware"],
                    rows, md)
        if pr["unmatched"]:
            ex = "; ".join(f"{u['side']} {u['prompt_id']} s{u['seed']}: {u['reason']}" for u in pr["unmatched"][:8])
            more = f" (+{len(pr['unmatched']) - 8} more in compare.json)" if len(pr["unmatched"]) > 8 else ""
            L.append(f"unmatched items ({len(pr['unmatched'])}): {ex}{more}")
        else:
            L.append("unmatched items: none")
    for w in result["warnings"]:
        L.append(f"warning: {w}")
    v = result["verdict"]
    if v.get("basis"):
        L.append(f"the verdict rests on: {v['basis']}")
    L.append(("**verdict: " if md else "verdict: ") + f"{v['decision'].upper()} (exit {v['exit_code']}): {v['reason']}"
             + ("**" if md else ""))
    return "\n".join(L) + "\n"


def _jsonable(x):
    if isinstance(x, float):
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return _jsonable(x.item())
    return x


def chart_png(result: Mapping[str, Any]) -> bytes | None:
    """Deltas with their 90% (thick) and 95% (thin) CIs, in units of each metric's margin; the dashed
    line at -1 is the margin (left of it: fail). None when there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for pr in result["pairs"]:
        for m, e in pr["metrics"].items():
            if e.get("margin") and e["decision"] in DECISIONS and all(math.isfinite(x) for x in e["ci95"]):
                k = e["margin"]
                lbl = m if len(result["pairs"]) == 1 else f"{pr['candidate_backend']}: {m}"
                lbl += f"\n{e['n_items']}/{e['n_applicable']} pairs, n={e['n_prompts']}"     # what it rests on
                rows.append((lbl, e["delta"] / k, [x / k for x in e["ci90"]], [x / k for x in e["ci95"]], e["decision"]))
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 0.6 * len(rows) + 1.4))
    colors = {"pass": "#2a7d2a", "fail": "#b22222", "inconclusive": "#c88a00"}
    for i, (lbl, d, c90, c95, dec) in enumerate(rows):
        ax.plot(c95, [i, i], color=colors[dec], lw=1)
        ax.plot(c90, [i, i], color=colors[dec], lw=4, solid_capstyle="butt")
        ax.plot([d], [i], "o", color="black", ms=4)
    ax.axvline(0, color="grey", lw=0.8)
    ax.axvline(-1, color="#b22222", lw=1, ls="--")
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("delta / margin (candidate - baseline); dashed: -margin")
    ax.set_title("paired deltas: 90% CI (thick), 95% CI (thin)", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_outputs(result: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """compare.md, compare.json, deltas.png (when there are gated deltas) and regressed.html into out_dir."""
    from .compare_html import regressed_html

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    png = chart_png(result)
    md = format_verdict(result, md=True)
    if png is not None:
        atomic_write_bytes(out / "deltas.png", png)
        files["chart"] = out / "deltas.png"
        md += "\n![paired deltas with CIs](deltas.png)\n"
    md += "\nMost regressed prompts side by side: [regressed.html](regressed.html)\n"
    atomic_write_text(out / "compare.md", md)
    atomic_write_json(out / "compare.json", _jsonable(result))
    atomic_write_text(out / "regressed.html", regressed_html(result, png))
    files.update(markdown=out / "compare.md", json=out / "compare.json", html=out / "regressed.html")
    return files


def default_out_dir(baseline_run: str | Path, candidate_run: str | Path) -> Path:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(baseline_run).resolve().name) or "baseline"
    return Path(candidate_run) / f"compare-{name}"


def thumbnail_data_uri(path: Path, max_side: int = 256) -> str | None:
    from PIL import Image

    if not path.is_file():
        return None
    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = max_side / max(im.size)
        if scale < 1:
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))))
        elif max(im.size) < 128:   # tiny images (flux-tiny 64x64): enlarge without smoothing so pixels stay visible
            f = 128 // max(im.size) or 1
            im = im.resize((im.width * f, im.height * f), Image.NEAREST)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
