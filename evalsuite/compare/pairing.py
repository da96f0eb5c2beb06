"""Pairing two runs and deciding per metric: backends mapped, items paired by (prompt id, seed), hard gates,
the paired deltas per metric with their CIs and decisions (metrics.stats), fidelity to the baseline against
the seed ceiling with its gates, costs per variant and the most regressed prompts. See evalsuite.compare.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import EvalsuiteError
from ..metrics.stats import DECISION_CONFIDENCE, mcnemar, min_paired_prompts, paired_summary, prompts_needed
from ..runfolder import RunFolder
from .facts import COMPARE_VERSION, DEFAULT_CEILING_MARGIN_DB, METRICS, NEEDS, applies
from .fidelity import clip_fidelity, lpips_fidelity
from .options import check_threshold, parse_allow_missing, parse_margins, parse_metrics, parse_pairs
from .result import CompareResult
from .verdict import overall_verdict


def load_image(root: Path, rel: str) -> np.ndarray:
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
    """Differences in hardware and software that change images for the same seed (docs/compare.md)."""
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


@dataclass
class _Options:
    """What compare() was asked, parsed and checked."""

    metrics: list[str]
    margins: dict[str, float]
    allowed: list[str]
    ceiling_margin_db: float | None
    min_psnr: float | None
    min_ssim: float | None
    clip_model: str | None
    fidelity_clip: bool
    progress: bool
    clip_state: dict[str, Any] = field(default_factory=dict)   # a CLIP load failure is tried once per compare


@dataclass
class _Runs:
    """The two run folders as compare reads them: records by (backend, prompt id, seed), prompts, scores."""

    brf: RunFolder
    crf: RunFolder
    brecs: dict[tuple[str, str, int], tuple[Any, Any]]
    crecs: dict[tuple[str, str, int], tuple[Any, Any]]
    bprompts: dict[str, Any]
    cprompts: dict[str, Any]
    bdf: Any
    cdf: Any

    @classmethod
    def load(cls, baseline_run: str | Path, candidate_run: str | Path) -> "_Runs":
        from ..scoring import load_scores

        brf, crf = RunFolder(baseline_run), RunFolder(candidate_run)
        return cls(brf, crf, {(e.backend, e.prompt_id, e.seed): (e, r) for e, r in brf.records()},
                   {(e.backend, e.prompt_id, e.seed): (e, r) for e, r in crf.records()},
                   brf.prompts(), crf.prompts(), load_scores(brf.path), load_scores(crf.path))


@dataclass
class _Paired:
    """Items of one backend pair: paired (both ok, candidate passed the hard gates), unmatched, gate failures."""

    matched: list[tuple[str, int]] = field(default_factory=list)
    images: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    gate_fail: list[dict[str, Any]] = field(default_factory=list)
    n_checked: int = 0


def _options(metrics, margins, allow_missing, ceiling_margin_db, min_psnr, min_ssim, clip_model, fidelity_clip,
             progress) -> _Options:
    metric_list = parse_metrics(metrics)
    margin_map = parse_margins(margins)
    for k in margin_map:
        if k not in metric_list:
            raise EvalsuiteError(f"--margin {k}=...: '{k}' is not among --metrics ({', '.join(metric_list)})")
    return _Options(metric_list, margin_map, parse_allow_missing(allow_missing, metric_list),
                    check_threshold("ceiling-margin-db", ceiling_margin_db, 0.0),
                    check_threshold("min-psnr", min_psnr, 0.0), check_threshold("min-ssim", min_ssim, -1.0, 1.0),
                    clip_model, fidelity_clip, progress)


def compare(baseline_run: str | Path, candidate_run: str | Path, *, metrics: str | Iterable[str] | None = None,
            margins: str | Iterable[str] | Mapping[str, float] | None = None,
            pairs: str | Iterable[str] | Mapping[str, str] | None = None,
            ceiling_margin_db: float | None = DEFAULT_CEILING_MARGIN_DB, min_psnr: float | None = None,
            min_ssim: float | None = None, clip_model: str | None = None, fidelity_clip: bool = True,
            progress: bool = False, allow_missing: str | Iterable[str] | None = None) -> CompareResult:
    """Compare a candidate run against a baseline run; returns the typed result (compare.json: its to_json())."""
    opts = _options(metrics, margins, allow_missing, ceiling_margin_db, min_psnr, min_ssim, clip_model,
                    fidelity_clip, progress)
    pair_map = parse_pairs(pairs)
    runs = _Runs.load(baseline_run, candidate_run)
    binfo, cinfo = runs.brf.info, runs.crf.info
    pair_map = resolve_pairs(list(binfo.backends), list(cinfo.backends), pair_map)
    result: dict[str, Any] = {
        "version": COMPARE_VERSION,
        "baseline": {"run": str(runs.brf.path), "prompt_set": binfo.prompt_set, "seeds": binfo.seeds},
        "candidate": {"run": str(runs.crf.path), "prompt_set": cinfo.prompt_set, "seeds": cinfo.seeds},
        "pairs": [_compare_pair(runs, bl, cl, opts) for bl, cl in pair_map.items()],
        "warnings": _run_warnings(binfo, cinfo, pair_map), "decision_confidence": DECISION_CONFIDENCE,
        "allow_missing": opts.allowed,
    }
    result["verdict"] = overall_verdict(result)
    return CompareResult.model_validate(result)


def _run_warnings(binfo, cinfo, pair_map: Mapping[str, str]) -> list[str]:
    warnings = stack_warnings(binfo, cinfo, pair_map)
    bps, cps = binfo.prompt_set, cinfo.prompt_set
    if bps.get("sha256") != cps.get("sha256"):
        warnings.append(f"different prompt sets: baseline {bps.get('name')} ({bps.get('count')} prompts, "
                        f"sha256 {str(bps.get('sha256'))[:12]}), candidate {cps.get('name')} ({cps.get('count')} "
                        f"prompts, sha256 {str(cps.get('sha256'))[:12]}); only shared prompts are compared")
    if binfo.seeds != cinfo.seeds:
        warnings.append(f"different seeds: baseline {binfo.seeds}, candidate {cinfo.seeds}")
    return warnings


def _compare_pair(runs: _Runs, bl: str, cl: str, opts: _Options) -> dict[str, Any]:
    items = _pair_items(runs, bl, cl)
    gate_fail, n_checked = items.gate_fail, items.n_checked
    binfo, cinfo = runs.brf.info.backends[bl], runs.crf.info.backends[cl]
    out: dict[str, Any] = {
        "baseline_backend": bl, "candidate_backend": cl, "baseline_spec": binfo.spec, "candidate_spec": cinfo.spec,
        "labelled_noise": bool(binfo.labelled_noise or cinfo.labelled_noise),
        "n_pairs": len(items.matched), "n_prompts": len({p for p, _ in items.matched}), "unmatched": items.unmatched,
        "hard_gates": {"checked": n_checked, "failed": gate_fail,
                       "decision": "fail" if gate_fail else ("pass" if n_checked else "inconclusive")},
    }
    mset = set(items.matched)
    out["metrics"] = {m: _metric_entry(runs, bl, cl, m, opts, mset) for m in opts.metrics}
    out["fidelity"] = _fidelity(runs, bl, cl, items, opts)
    out["costs"] = {"baseline": variant_costs(runs.brf, bl), "candidate": variant_costs(runs.crf, cl)}
    out["regressed"] = _most_regressed(out, items.images, items.matched, gate_fail, runs.brecs, runs.crecs, bl, cl)
    return out


def _pair_items(runs: _Runs, bl: str, cl: str) -> _Paired:
    """Pair by (prompt id, seed); a candidate item that failed, was filtered or is blank fails a hard gate."""
    from ..metrics.fidelity import image_gate

    bkeys = {(p, s) for (b, p, s) in runs.brecs if b == bl}
    ckeys = {(p, s) for (b, p, s) in runs.crecs if b == cl}
    out = _Paired()
    for p, s in sorted(bkeys - ckeys, key=str):
        out.unmatched.append({"prompt_id": p, "seed": s, "side": "baseline", "reason": "no candidate item"})
    for p, s in sorted(ckeys - bkeys, key=str):
        out.unmatched.append({"prompt_id": p, "seed": s, "side": "candidate", "reason": "no baseline item"})
    for p, s in sorted(bkeys & ckeys, key=str):
        br, cr = runs.brecs[(bl, p, s)][1], runs.crecs[(cl, p, s)][1]
        why = _unpaired_reason(runs, p, br, cr)
        if why is not None:
            out.unmatched.append({"prompt_id": p, "seed": s, "side": why[0], "reason": why[1]})
            continue
        out.n_checked += 1
        if cr.status != "ok" or not cr.image:
            out.gate_fail.append({"prompt_id": p, "seed": s,
                                  "reason": f"candidate item {cr.status}: {cr.error or 'no image'}"})
            continue
        cimg = load_image(runs.crf.path, cr.image)
        blank = image_gate(cimg)
        if blank:
            out.gate_fail.append({"prompt_id": p, "seed": s, "reason": blank})
            continue
        out.matched.append((p, s))
        out.images[(p, s)] = (load_image(runs.brf.path, br.image), cimg)
    return out


def _unpaired_reason(runs: _Runs, p: str, br, cr) -> tuple[str, str] | None:
    """(side, reason) when an item present in both runs cannot be paired; None when it can be checked."""
    bp, cp = runs.bprompts.get(p), runs.cprompts.get(p)
    if bp is not None and cp is not None and (bp.prompt != cp.prompt or bp.target_text != cp.target_text):
        return "both", "the prompt differs between the runs"
    if br is None:
        return "baseline", "baseline item not generated yet"
    if br.status != "ok":
        return "baseline", f"baseline item {br.status}: {br.error or ''}".rstrip(": ")
    if cr is None:
        return "candidate", "candidate item not generated yet"
    return None


def _metric_entry(runs: _Runs, bl: str, cl: str, m: str, opts: _Options, mset: set[tuple[str, int]]) -> dict[str, Any]:
    """One metric of one pair: the paired per-prompt deltas, their CIs and the decision against the margin."""
    variant, default_margin, unit, scale = METRICS[m]
    margin = opts.margins.get(m, default_margin)
    applies_to = [k for k in sorted(mset, key=str) if applies(m, runs.bprompts.get(k[0]) or runs.cprompts.get(k[0]))]
    sid, why = _pick_scorer(runs.bdf, runs.cdf, bl, cl, m, variant)
    entry: dict[str, Any] = {"metric": m, "variant": variant, "unit": unit, "margin": margin,
                             "gated": margin is not None, "scorer_id": sid, "n_applicable": len(applies_to),
                             "allowed_missing": m in opts.allowed}
    if not mset:
        return {**entry, "decision": "missing", "missing_reason": "no paired items (every candidate item failed a "
                                                                  "hard gate or has no counterpart)"}
    if not applies_to:
        return {**entry, "decision": "not applicable", "missing_reason": f"no paired item's prompt has {NEEDS[m]}"}
    if sid is None:
        # a gated metric that was not measured makes the verdict inconclusive (unless --allow-missing names it)
        return {**entry, "decision": "missing", "missing_reason": why}
    bv = _scores_by_item(runs.bdf, bl, m, variant, sid)
    cv = _scores_by_item(runs.cdf, cl, m, variant, sid)
    both = [k for k in applies_to if k in bv and k in cv]
    per_b: dict[str, list[float]] = {}
    per_c: dict[str, list[float]] = {}
    for p, s in both:
        per_b.setdefault(p, []).append(bv[(p, s)] * scale)
        per_c.setdefault(p, []).append(cv[(p, s)] * scale)
    deltas = {p: float(np.mean(per_c[p]) - np.mean(per_b[p])) for p in per_b}
    entry.update(n_items=len(both), n_unscored_baseline=len([k for k in applies_to if k not in bv]),
                 n_unscored_candidate=len([k for k in applies_to if k not in cv]),
                 n_items_missing=len(applies_to) - len(both))
    if not deltas:
        return {**entry, "decision": "missing",
                "missing_reason": f"none of the {len(applies_to)} paired items has a value in both runs"}
    entry["baseline_mean"] = float(np.mean([np.mean(v) for v in per_b.values()]))
    entry["candidate_mean"] = float(np.mean([np.mean(v) for v in per_c.values()]))
    rate_scale = scale if unit == "pp" or m == "text_similarity" else None
    summ = paired_summary(deltas, -margin if margin is not None else None, rate_scale=rate_scale)
    entry.update({"delta": summ["mean"], "ci90": summ["ci90"], "ci95": summ["ci95"], "sd": summ["sd"],
                  "n_prompts": summ["n_prompts"], "ci_method": summ["ci_method"], "per_prompt_delta": deltas})
    if margin is not None:
        _decide_metric(entry, summ, margin, unit, rate_scale, len(applies_to))
    else:
        entry["decision"] = "reported"
    if m == "text_exact":
        entry["mcnemar"] = mcnemar([(bv[k], cv[k]) for k in both])
    return entry


def _decide_metric(entry: dict[str, Any], summ: dict[str, Any], margin: float, unit: str,
                   rate_scale: float | None, n_applicable: int) -> None:
    """A gated metric's decision: its CI90 against -margin, inconclusive on too few prompts or unscored items."""
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
            f"{entry['n_items_missing']} of {n_applicable} paired items unscored (baseline "
            f"{entry['n_unscored_baseline']}, candidate {entry['n_unscored_candidate']})")
    if entry["decision"] == "inconclusive":
        entry["prompts_needed"] = max(prompts_needed(summ["sd"], margin) or 0, entry["min_prompts"])


def _per_prompt(d: Mapping[tuple[str, int], float], cap: Mapping[tuple[str, int], float] | None = None):
    acc: dict[str, list[float]] = {}
    for (p, s), v in d.items():
        acc.setdefault(p, []).append(min(v, cap[(p, s)]) if cap is not None else v)
    return {p: float(np.mean(v)) for p, v in acc.items()}


def _pair_fidelity(items: _Paired, cl: str, progress: bool):
    """PSNR and SSIM of each paired image against the baseline's; the image's maximum PSNR caps +inf."""
    from tqdm.auto import tqdm

    from ..metrics.fidelity import psnr_db, ssim

    fid: dict[str, dict[tuple[str, int], float]] = {"psnr": {}, "ssim": {}}
    maxp: dict[tuple[str, int], float] = {}
    identical, size_mismatch = 0, []
    for k in tqdm(items.matched, desc=f"fidelity {cl}", unit="pair", disable=not progress, leave=False):
        a, b = items.images[k]
        if a.shape != b.shape:
            size_mismatch.append(k)
            continue
        maxp[k] = 10 * math.log10(255.0**2 * a.size)
        v = psnr_db(a, b)
        identical += math.isinf(v)
        fid["psnr"][k] = v
        fid["ssim"][k] = ssim(a, b)
    return fid, maxp, identical, size_mismatch


def _seed_ceiling(runs: _Runs, bl: str, matched: list[tuple[str, int]]):
    """The baseline against itself: consecutive seeds of the same prompt (PSNR capped at the image maximum)."""
    from ..metrics.fidelity import psnr_db, ssim

    ceil: dict[str, dict[tuple[str, int], float]] = {"psnr": {}, "ssim": {}}
    ceil_pairs: list[tuple[str, int, int]] = []
    bseeds: dict[str, list[int]] = {}
    for (b, p, s), (e, r) in runs.brecs.items():
        if b == bl and r is not None and r.status == "ok" and r.image:
            bseeds.setdefault(p, []).append(s)
    for p in sorted({p for p, _ in matched}):
        ss = sorted(bseeds.get(p, []))
        for s0, s1 in zip(ss, ss[1:]):
            r0, r1 = runs.brecs[(bl, p, s0)][1], runs.brecs[(bl, p, s1)][1]
            a, b = load_image(runs.brf.path, r0.image), load_image(runs.brf.path, r1.image)
            if a.shape != b.shape:
                continue
            ceil["psnr"][(p, s0)] = min(psnr_db(a, b), 10 * math.log10(255.0**2 * a.size))
            ceil["ssim"][(p, s0)] = ssim(a, b)
            ceil_pairs.append((p, s0, s1))
    return ceil, ceil_pairs


def _fidelity(runs: _Runs, bl: str, cl: str, items: _Paired, opts: _Options) -> dict[str, Any]:
    """Fidelity to the baseline (PSNR, SSIM, CLIP cosine, LPIPS), the seed ceiling and the fidelity gates."""
    fid, maxp, identical, size_mismatch = _pair_fidelity(items, cl, opts.progress)
    ceil, ceil_pairs = _seed_ceiling(runs, bl, items.matched)
    fres: dict[str, Any] = {"n_pairs": len(fid["psnr"]), "identical_pairs": identical,
                            "size_mismatch": [list(k) for k in size_mismatch], "ceiling_pairs": len(ceil_pairs)}
    pp_psnr, pp_ssim = _per_prompt(fid["psnr"], maxp), _per_prompt(fid["ssim"])
    if fid["psnr"]:
        vals = list(fid["psnr"].values())
        fres["psnr"] = {**paired_summary(pp_psnr), "median_item": float(np.median(vals)), "min_item": float(min(vals)),
                        "all_identical": identical == len(vals), "max_psnr_db": max(maxp.values()),
                        "per_prompt": pp_psnr}
        fres["ssim"] = {**paired_summary(pp_ssim), "min_item": float(min(fid["ssim"].values())), "per_prompt": pp_ssim}
    else:
        fres["psnr"] = fres["ssim"] = {"missing_reason": "no paired images"}
    cp_psnr, cp_ssim = _per_prompt(ceil["psnr"]), _per_prompt(ceil["ssim"])
    if ceil_pairs:
        fres["ceiling"] = {"psnr": paired_summary(cp_psnr), "ssim": paired_summary(cp_ssim),
                           "per_prompt_psnr": cp_psnr, "what": "baseline vs itself, consecutive seeds of the same prompt"}
    else:
        fres["ceiling"] = {"missing_reason": "the baseline has fewer than 2 seeds per prompt: no seed ceiling"}
    fres["clip_cosine"] = clip_fidelity(items.matched, items.images, opts.clip_model, opts.clip_state) \
        if opts.fidelity_clip else {"missing_reason": "not requested"}
    fres["lpips"] = lpips_fidelity(items.matched, items.images)
    fres["gates"] = _fidelity_gates(opts, pp_psnr, pp_ssim, cp_psnr, fres["ceiling"].get("missing_reason"))
    return fres


def _gate(per_prompt: Mapping[str, float], threshold: float, unit: str, missing: str) -> dict[str, Any]:
    """A fidelity gate decided like a metric: the CI90 of its per-prompt values against the threshold."""
    g: dict[str, Any] = {"threshold": threshold, "unit": unit, "gated": True}
    if not per_prompt:
        return {**g, "decision": "missing", "missing_reason": missing}
    s = paired_summary(per_prompt, threshold, "threshold")
    g.update(value=s["mean"], ci90=s["ci90"], ci95=s["ci95"], n_prompts=s["n_prompts"], decision=s["decision"],
             **({"prompts_needed": s["prompts_needed"]} if "prompts_needed" in s else {}),
             **({"inconclusive_reason": s["too_few"]} if "too_few" in s else {}))
    return g


def _fidelity_gates(opts: _Options, pp_psnr, pp_ssim, cp_psnr, ceiling_missing: str | None) -> dict[str, Any]:
    gates: dict[str, Any] = {}
    if opts.ceiling_margin_db is not None and opts.ceiling_margin_db > 0:
        excess = {p: pp_psnr[p] - cp_psnr[p] for p in pp_psnr if p in cp_psnr}
        gates["psnr_over_ceiling"] = _gate(excess, opts.ceiling_margin_db, "dB above the seed ceiling",
                                           ceiling_missing or "no paired images")
    for name, thr, pp, unit in (("psnr", opts.min_psnr, pp_psnr, "dB"), ("ssim", opts.min_ssim, pp_ssim, "")):
        if thr is not None:
            gates[name] = _gate(pp, thr, unit, "no paired images")
    return gates


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
