"""The protocol figures of a run folder and the table "beside the published numbers" (docs/protocols.md).

    geneval_rows(run_dir)   per backend: each tag's accuracy (mean over images, as GenEval) and the overall (mean
                            of the six tags), 95% intervals over prompts
    dpg_rows(run_dir)       per backend and vqa judge: DPG-Bench overall, L1 and L2 category scores from its details
    protocol_summary(run_dir) -> {"protocol", "rows", "settings", "published", ...}; `markdown(summary)` its table
    write_summary(run_dir)  RUN_DIR/protocol/summary.json and summary.md (atomic)

Nothing is filled in: a tag or category without a scored image is missing with the reason, and the overall is
missing when a tag is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .metrics import dpg as D
from .metrics import geneval as G
from .protocols import PROTOCOLS, read_record
from .scoring.geneval import DEFAULT_DETECTOR

SUMMARY_DIR = "protocol"
NOISE_NOTE = "random weights: numbers are noise, not quality"


def _image_mean(arrays) -> float:
    """GenEval's tag accuracy: the mean over images (summary_scores.py's `task_df['correct'].mean()`)."""
    import numpy as np

    return float(np.concatenate(list(arrays)).mean())


def _stratified_overall_ci(per_tag: dict[str, list]) -> tuple[float, float]:
    """95% interval of the mean of tag accuracies (each the mean over its images): the percentile bootstrap
    resampling prompts (each with all its images) within each tag (fixed RNG seed), widened to at least the
    continuity-corrected Wilson bounds with the number of prompts as the sample size, so it never collapses at
    small n or at 0 / 1 (as the pooled protocol figures, docs/scores.md)."""
    import numpy as np

    from .metrics.stats import CONFIDENCE, N_RESAMPLES, RNG_SEED, t_quantile, wilson_bounds

    rng = np.random.default_rng(RNG_SEED)
    tags = [[np.asarray(v, dtype=float) for v in prompts] for prompts in per_tag.values()]
    boot = np.mean([[_image_mean([t[i] for i in rng.integers(0, len(t), len(t))]) for t in tags]
                    for _ in range(N_RESAMPLES)], axis=1)
    alpha = (1 - CONFIDENCE) / 2
    lo, hi = float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha))
    n = sum(len(t) for t in tags)
    mean = float(np.mean([_image_mean(t) for t in tags]))
    wlo, whi = wilson_bounds(np.clip(mean, 0.0, 1.0), n, t_quantile(CONFIDENCE, n - 1))
    return min(lo, float(wlo), mean), max(hi, float(whi), mean)


def geneval_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """One row per backend: {backend, tags: {tag: {mean, low, high, n_prompts, n_images}}, overall, missing}.
    A tag's mean is GenEval's, over images; its interval the prompt-clustered Wilson-t one (seeds of a prompt
    are not independent), widened to hold the mean when images are missing."""
    from .metrics.stats import rate_ci
    from .scoring import load_scores

    df = load_scores(run_dir)
    df = df[df["metric"] == "geneval"]
    rows = []
    for backend, g in df.groupby("backend", sort=True):
        ok = g[g["missing_reason"].isna()]
        tags, per_prompt, missing = {}, {}, {}
        for tag in G.TAGS:
            t = ok[ok["variant"] == tag]
            miss = g[(g["variant"] == tag) & g["missing_reason"].notna()]
            if not miss.empty:
                missing[tag] = f"{len(miss)} image(s) missing: " + "; ".join(miss["missing_reason"].unique()[:2])
            if t.empty:
                continue
            per = {pid: s["value"].to_numpy(dtype=float) for pid, s in t.groupby("prompt_id")}
            ci, mean = rate_ci(per), _image_mean(per.values())
            tags[tag] = {"mean": mean, "low": min(ci.low, mean), "high": max(ci.high, mean), "n_prompts": ci.n,
                         "n_images": len(t)}
            per_prompt[tag] = list(per.values())
        absent = [t for t in G.TAGS if t not in tags]
        overall = None
        if not absent:
            lo, hi = _stratified_overall_ci(per_prompt)
            overall = {"mean": G.overall({t: v["mean"] for t, v in tags.items()}), "low": lo, "high": hi}
        rows.append({"backend": backend, "tags": tags, "overall": overall, "missing": missing,
                     "overall_missing": None if overall else f"no scored image for tag(s) {', '.join(absent)}"})
    return rows


def _vqa_index(store) -> dict[str, dict[tuple[str, str], dict[str, Any]]]:
    """vqa scorer id -> (image sha256, prompt text) -> that identity's latest detail (for details not in the score
    table: written by hand or by a vqa scorer this installation does not register). Judges are never mixed."""
    out: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for slug, entry in store.read_registry().items():
        if entry.get("scorer") != "vqa":
            continue
        index = out.setdefault(slug, {})
        for d in store.iter_details(slug):
            k = (d.get("image_sha256"), (d.get("inputs") or {}).get("prompt"))
            if k not in index or str(d.get("scored_at", "")) > str(index[k].get("scored_at", "")):
                index[k] = d
    return out


def _vqa_keys(run_dir) -> dict[tuple, str]:
    """(vqa scorer id, backend, prompt id, seed) -> cache key from the score table, where the vqa scorer is
    registered (scoring/registry.py); empty otherwise (the detail scan of `_vqa_index` answers then)."""
    from .scoring import load_scores

    df = load_scores(run_dir)
    df = df[(df["scorer"] == "vqa") & df["cache_key"].notna()]
    return {(r.scorer_id, r.backend, r.prompt_id, r.seed): r.cache_key for r in df.itertuples()}


def judge_label(entry: dict[str, Any], details: dict[tuple, dict[str, Any]] | None = None) -> str:
    """The judge of a vqa scorer identity as "MODEL @ REVISION": the model and revision asked for (its registry
    identity), else the revision a detail recorded as resolved, else "revision not recorded"."""
    j = (entry.get("identity") or {}).get("judge") or {}
    rev = j.get("revision")
    for d in (details or {}).values():
        rec = (d.get("details") or {}).get("judge") or {}
        rev = rev or rec.get("resolved_revision") or rec.get("revision")
        break
    return f"{j.get('model') or entry.get('model') or 'unknown judge'} @ {rev or 'revision not recorded'}"


def _answers(detail: dict[str, Any] | None, prompt) -> tuple[dict[str, str] | None, str | None]:
    if detail is None:
        return None, "not judged by the vqa scorer (run `evalsuite score RUN_DIR --scorers vqa`)"
    got = {str(q.get("id")): q.get("answer") for q in (detail.get("details") or {}).get("questions", [])}
    lacking = [q.id for q in prompt.questions if got.get(q.id) not in ("yes", "no")]
    if lacking:
        return None, f"the judge gave no yes/no answer to question(s) {', '.join(lacking[:5])}"
    return got, None


def _image_answers(store, keyed, index, slug, entry, rec, p):
    """(answers, reason) of one image by one vqa scorer identity (slug None: no identity judged anything)."""
    if rec is None or rec.status != "ok" or not rec.image_sha256:
        return None, "image not generated" if rec is None else f"image {rec.status}"
    k = keyed.get((slug, entry.backend, entry.prompt_id, entry.seed))
    detail = store.read_detail(slug, k) if k else index.get(slug, {}).get((rec.image_sha256, p.prompt))
    return _answers(detail, p)


def _dpg_items(run_dir: str | Path) -> dict[tuple[str, str | None], dict[str, Any]]:
    """(backend, vqa scorer id) -> {"images": {prompt_id: [(seed, image score, answers, prompt)]}, "missing":
    {reason: count}}: one entry per backend and judge that answered anything (scorer id None when none did)."""
    from .runfolder import RunFolder
    from .store.scores import ScoreStore

    rf = RunFolder(run_dir)
    prompts = rf.prompts()
    store = ScoreStore(rf.path)
    keyed, index = _vqa_keys(rf.path), _vqa_index(store)
    slugs = sorted({s for s, ix in index.items() if ix} | {s for s, *_ in keyed}) or [None]
    out: dict[tuple[str, str | None], dict[str, Any]] = {}
    for entry, rec in rf.records():
        p = prompts.get(entry.prompt_id)
        if p is None or not p.questions:
            continue
        for slug in slugs:
            b = out.setdefault((entry.backend, slug), {"images": {}, "missing": {}})
            answers, reason = _image_answers(store, keyed, index, slug, entry, rec, p)
            if answers is None:
                b["missing"][reason] = b["missing"].get(reason, 0) + 1
                continue
            b["images"].setdefault(p.id, []).append((entry.seed, D.image_score(p.questions, answers), answers, p))
    return out


def _judge_labels(run_dir: str | Path, answered_only: bool = False) -> dict[str, str]:
    """vqa scorer id -> its judge label; answered_only: only the identities with a detail in the run."""
    from .store.scores import ScoreStore

    store = ScoreStore(run_dir)
    index = _vqa_index(store)
    return {slug: judge_label(e, index.get(slug)) for slug, e in store.read_registry().items()
            if e.get("scorer") == "vqa" and (index.get(slug) or not answered_only)}


def dpg_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """One row per backend and vqa judge (scorer identity; judges are never mixed): overall (x 100) with a 95%
    interval over prompts, L1 and L2 scores, what is missing, and the judge ("MODEL @ REVISION")."""
    from .metrics.stats import rate_ci

    rows, labels = [], _judge_labels(run_dir)
    for (backend, slug), b in sorted(_dpg_items(run_dir).items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        per = {pid: [s for _, s, _, _ in imgs] for pid, imgs in b["images"].items()}
        last = [(imgs[-1][3].questions, imgs[-1][2])
                for imgs in (sorted(v, key=lambda x: (x[0] is None, x[0])) for v in b["images"].values())]
        row: dict[str, Any] = {"backend": backend, "scorer_id": slug,
                               "judge": labels.get(slug, "not judged") if slug else "not judged",
                               "n_prompts": len(per), "n_images": sum(map(len, per.values())),
                               "missing": b["missing"], "overall": None, "l1": {}, "l2": {}}
        if per:
            ci = rate_ci(per)
            row["overall"] = {"mean": 100 * ci.mean, "low": 100 * ci.low, "high": 100 * ci.high}
            row["l1"], row["l2"] = D.category_scores(last)
        rows.append(row)
    return rows


def _fmt(x: dict | None, digits: int) -> str:
    if not x:
        return "missing"
    return f"{x['mean']:.{digits}f} [{x['low']:.{digits}f}, {x['high']:.{digits}f}]"


def _settings(run_dir: str | Path, name: str) -> list[dict[str, str]]:
    """(setting, the original's, this run's, matches: yes / no / partly / unknown) rows."""
    from .importers import import_file
    from .runfolder import RunFolder

    proto, info, rec = PROTOCOLS[name], RunFolder(run_dir).info, read_record(run_dir) or {}
    rows = []
    if proto.prompts:
        full = import_file(proto.prompt_format, proto.prompts.split(":", 1)[1], warn=None)
        same = info.prompt_set.get("sha256") == full.sha256
        ours = f"{info.prompt_set.get('count')} prompts" + ("" if same else " (not the whole shipped set)")
    else:
        same, ours = None, f"{info.prompt_set.get('count')} prompts from {info.prompt_set.get('source')}"
    rows.append(("prompts", ours, "yes" if same else "unknown" if same is None else "no"))
    rows.append(("samples per prompt", str(len(info.seeds)), "yes" if len(info.seeds) == 4 else "no"))
    rows.append(("seeds", ",".join(map(str, info.seeds)), "n/a"))
    sizes = sorted({str(b.config.get("size") or info.size or "backend default") for b in info.backends.values()})
    rows.append(("resolution", "; ".join(sizes), "check"))
    if name == "geneval":
        used = _identities(run_dir, "geneval")
        dets = sorted({u["detector"] for u in used}) or ["not scored yet"]
        clips = sorted({u["clip"] for u in used}) or ["not scored yet"]
        default = dets == [DEFAULT_DETECTOR]
        rows.append(("detector", f"Mask2Former through transformers: {', '.join(dets)}",
                     "partly (same architecture and training data, the transformers conversion)" if default else "no"))
        rows.append(("colour model", ", ".join(clips), "yes" if clips == ["ViT-L-14:openai"] else "no"))
    else:
        judges = sorted(set(_judge_labels(run_dir, answered_only=True).values())) or ["not judged yet"]
        rows.append(("judge", "; ".join(judges) + " (the vqa scorer; one table row per judge)", "no"))
    for d in rec.get("deviations", []):
        rows.append(("deviation", d, "no"))
    return [{"setting": s, "original": proto.original.get(s, ""), "this run": o, "matches": m} for s, o, m in rows]


def _identities(run_dir: str | Path, kind: str) -> list[dict[str, Any]]:
    from .store.scores import ScoreStore

    return [e.get("identity") or {} for e in ScoreStore(run_dir).read_registry().values() if e.get("scorer") == kind]


def protocol_summary(run_dir: str | Path, name: str | None = None) -> dict[str, Any]:
    """The protocol's figures per backend, the published values the docs cite, and which settings match."""
    from .errors import EvalsuiteError

    name = name or (read_record(run_dir) or {}).get("protocol")
    if name not in PROTOCOLS:
        raise EvalsuiteError(f"{run_dir}: no protocol recorded (RUN_DIR/protocol.json); give --protocol "
                             f"{'|'.join(PROTOCOLS)}")
    from .runfolder import RunFolder

    rows = geneval_rows(run_dir) if name == "geneval" else dpg_rows(run_dir)
    noise = {label for label, b in RunFolder(run_dir).info.backends.items() if b.labelled_noise}
    for r in rows:
        r["note"] = NOISE_NOTE if r["backend"] in noise else ""
    proto = PROTOCOLS[name]
    return {"protocol": name, "title": proto.title, "rows": rows, "settings": _settings(run_dir, name),
            "published": [{"model": p.model, "value": p.value, "source": p.source} for p in proto.published]}


def markdown(summary: dict[str, Any]) -> str:
    """The summary as Markdown: the per-backend figures beside the published ones, then the settings."""
    name = summary["protocol"]
    lines = [f"# {summary['title']}: this run beside the published numbers", ""]
    if name == "geneval":
        lines += ["| backend | overall | " + " | ".join(G.TAGS) + " | note |", "|---" * (len(G.TAGS) + 3) + "|"]
        for r in summary["rows"]:
            cells = [_fmt(r["tags"].get(t), 2) for t in G.TAGS]
            lines.append(f"| {r['backend']} | {_fmt(r['overall'], 2) if r['overall'] else r['overall_missing']} | "
                         + " | ".join(cells) + f" | {r.get('note', '')} |")
    else:
        l1 = sorted({k for r in summary["rows"] for k in r["l1"]})
        lines += ["| backend | judge | overall | " + " | ".join(l1) + " | prompts | images | note |",
                  "|---" * (len(l1) + 6) + "|"]
        for r in summary["rows"]:
            cells = [f"{r['l1'][k]:.2f}" if k in r["l1"] else "missing" for k in l1]
            lines.append(f"| {r['backend']} | {r.get('judge', '')} | {_fmt(r['overall'], 2)} | " + " | ".join(cells)
                         + f" | {r['n_prompts']} | {r['n_images']} | {r.get('note', '')} |")
    lines += _missing_lines(summary)
    lines += ["", "Published (not measured here):", ""]
    lines += [f"- {p['model']}: {p['value']} ({p['source']})" for p in summary["published"]]
    lines += ["", "| setting | original | this run | matches |", "|---|---|---|---|"]
    lines += [f"| {s['setting']} | {s['original']} | {s['this run']} | {s['matches']} |" for s in summary["settings"]]
    return "\n".join(lines) + "\n"


def _missing_lines(summary: dict[str, Any]) -> list[str]:
    out = []
    for r in summary["rows"]:
        miss, who = r.get("missing") or {}, r["backend"] + (f" ({r['judge']})" if r.get("scorer_id") else "")
        for k, v in miss.items():
            out.append(f"- {who}: {k}: {v}" if isinstance(v, str) else f"- {who}: {k} ({v} images)")
    return ["", "Missing (never filled in):", ""] + out if out else []


def write_summary(run_dir: str | Path, name: str | None = None) -> tuple[dict[str, Any], Path]:
    from .runfolder import atomic_write_json, atomic_write_text

    summary = protocol_summary(run_dir, name)
    folder = Path(run_dir) / SUMMARY_DIR
    folder.mkdir(exist_ok=True)
    atomic_write_json(folder / "summary.json", summary)
    atomic_write_text(folder / "summary.md", markdown(summary))
    return summary, folder / "summary.md"
