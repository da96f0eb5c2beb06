"""Report tables: pure functions from the score table (`load_scores`), its aggregates (`aggregate`) and
the run folders' item records to pandas DataFrames; `to_markdown` / `format_compact` render them.

Numbers come only from the run folders: a metric that could not be computed is shown as
"missing (reason)", a backend whose images are noise (random-weight miniatures) says so in `note`.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Sequence

import numpy as np

from ..metrics import registry as R

NOISE_NOTE = "random weights: numbers are noise, not quality"
CEILING_NOTE = "renders the targets legibly: OCR ceiling"

# (metric, variant, title) in the order the report shows them; titles from the metric registry
HEADLINE = tuple((m, v, R.title(m, v)) for m, v in (
    ("prompt_following", ""), ("text_exact", "lenient"), ("text_exact", "strict"), ("word_recall", "lenient"),
    ("text_similarity", "lenient"), ("clip_score", "")))


# published text protocols (metrics/text_protocols.py): (metric, column title), all in [0, 1] but ED
PROTOCOLS = tuple((m, R.info(m).title) for m in (
    "cvtg_word_acc", "cvtg_ned", "oneig_text_score_set", "oneig_ed", "oneig_cr", "oneig_wac", "mario_precision",
    "mario_recall", "mario_f", "mario_acc", "longtext_word_acc_pooled", "longtext_word_acc"))


def protocol_table(agg, backends: dict | None = None, ocr_id: str | None = None):
    """Backend -> each published text protocol's figure (mean with 95% CI over prompts; the pooled and
    set-level ones as their protocols define them), on the primary OCR scorer identity."""
    import pandas as pd

    cols = ["backend"] + [t for _, t in PROTOCOLS] + ["engine"]
    if agg is None or agg.empty:
        return pd.DataFrame(columns=cols)
    a = agg[agg.scorer_id == ocr_id] if ocr_id else agg
    a = a[a.metric.isin([m for m, _ in PROTOCOLS])]
    rows = []
    for b in _backend_order(a["backend"], backends):
        row = {"backend": b}
        for metric, title in PROTOCOLS:
            r = a[(a.backend == b) & (a.metric == metric)]
            row[title] = "-" if r.empty else (_missing_text(r.iloc[0]) if r.iloc[0]["n_items"] == 0 else
                                              fmt_value(r.iloc[0]["mean"], r.iloc[0]["ci_low"], r.iloc[0]["ci_high"], ""))
        row["engine"] = a.loc[a.backend == b, "model"].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def _nan(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def primary_scorers(scores) -> dict[str, str | None]:
    """The scorer identity each table uses per scorer kind ('clip', 'ocr'): the identity with values for
    the most backends (several runs may have been scored with different OCR engine sets: the one they share
    keeps their numbers comparable); then, for OCR, the best-of combination of several engines; then the
    identity with the most computed values (ties: alphabetical). Other identities stay in the full metric
    table; `backend_scorers` gives a backend that lacks this identity its own, named in the tables."""
    out: dict[str, str | None] = {"clip": None, "ocr": None, "vqa": None}
    if scores is None or scores.empty:
        return out
    for kind in out:
        s = scores[scores["scorer"] == kind]
        if s.empty:
            continue
        stats = []
        for sid, g in s.groupby("scorer_id"):
            combined = "+" in str(g["model"].iloc[0])
            ok = g[g["missing_reason"].isna()]
            stats.append((-ok["backend"].nunique(), -int(combined), -len(ok), sid))
        out[kind] = sorted(stats)[0][-1]
    return out


def backend_scorers(scores, ids: dict[str, str | None] | None = None) -> dict[tuple[str, str], str]:
    """(backend, scorer kind) -> the identity its headline numbers come from: the report-wide one
    (`primary_scorers`) when the backend has values under it, else the backend's own best (combined engines
    first, then most values). Every backend keeps a row in every table this way."""
    out: dict[tuple[str, str], str] = {}
    if scores is None or scores.empty:
        return out
    ids = ids if ids is not None else primary_scorers(scores)
    for (b, kind), g in scores.groupby(["backend", "scorer"], sort=False):
        ok = g[g["missing_reason"].isna()]
        if ids.get(kind) in set(ok["scorer_id"]) or (ok.empty and ids.get(kind) in set(g["scorer_id"])):
            out[(b, kind)] = ids[kind]
            continue
        pool = ok if not ok.empty else g
        stats = [(-int("+" in str(x["model"].iloc[0])), -len(x), sid) for sid, x in pool.groupby("scorer_id")]
        out[(b, kind)] = sorted(stats)[0][-1]
    return out


def identity_notes(choice: dict[tuple[str, str], str], scores) -> list[str]:
    """A note when the headline numbers of different backends come from different scorer identities (runs
    scored with other OCR engine sets or another CLIP): each backend's identity is named in the tables."""
    if scores is None or scores.empty:
        return []
    names = dict(zip(scores["scorer_id"], scores["model"]))
    out = []
    for kind, what in (("ocr", "OCR"), ("clip", "CLIP")):
        by_id: dict[str, list[str]] = {}
        for (b, k), sid in choice.items():
            if k == kind:
                by_id.setdefault(str(names.get(sid, sid)), []).append(b)
        if len(by_id) > 1:
            out.append(f"{what} numbers come from different {what} identities: " + "; ".join(
                f"{m}: {', '.join(bs)}" for m, bs in sorted(by_id.items()))
                + " (each backend's own; compare across identities with care, every identity is in metrics.csv)")
    return out


def primary_rows(agg, choice: dict[tuple[str, str], str]):
    """The aggregate rows of each backend's chosen scorer identities (see backend_scorers)."""
    if agg is None or agg.empty:
        return agg
    keep = [choice.get((b, k)) == sid for b, k, sid in zip(agg["backend"], agg["scorer"], agg["scorer_id"])]
    return agg[keep].reset_index(drop=True)


def metric_applies(metric: str, prompt, variant: str = "") -> bool:
    """Whether a metric applies to a prompt's items (metrics/registry.py `needs`: text metrics need target text,
    prompt following needs hard negatives, question metrics questions (a per-category one a question of that
    category); the others apply to every item)."""
    if prompt is None:
        return False
    info = R.info(metric)
    if info.needs == "questions" and info.variant_title and variant:
        return any(q.category == variant for q in prompt.questions)
    return bool(getattr(prompt, info.needs)) if info.needs else True


def add_coverage(agg, records, prompts: dict, by: Sequence[str] = ("backend",)):
    """agg plus `n_planned` (items planned for the group where the metric applies, from the plan: failed and
    not generated items count), `n_planned_prompts` and `coverage` ("scored/planned")."""
    if agg is None or agg.empty:
        return agg
    out = agg.copy()
    rec = records[["backend", "prompt_id"]].copy() if records is not None and len(records) else None
    counts: dict[tuple, tuple[int, int]] = {}
    if rec is not None:
        rec["category"] = [getattr(prompts.get(p), "category", None) for p in rec["prompt_id"]]
        for metric, variant in set(zip(out["metric"], out["variant"])):
            ok = rec[[metric_applies(metric, prompts.get(p), variant) for p in rec["prompt_id"]]]
            for key, g in ok.groupby(list(by), sort=False):
                key = key if isinstance(key, tuple) else (key,)
                counts[(metric, variant) + key] = (len(g), g["prompt_id"].nunique())
    planned = [counts.get((r["metric"], r["variant"]) + tuple(r[c] for c in by), (0, 0)) for _, r in out.iterrows()]
    out["n_planned"] = [p[0] for p in planned]
    out["n_planned_prompts"] = [p[1] for p in planned]
    out["coverage"] = [f"{int(n)}/{p[0]}" for n, p in zip(out["n_items"], planned)]
    return out


def _gap(r) -> str:
    """' (2 of 3 prompts)' when a backend was scored on fewer prompts than planned: never silently averaged
    over fewer prompts."""
    npp = r.get("n_planned_prompts")
    if npp is None or _nan(npp) or not npp or int(r["n_prompts"]) >= int(npp):
        return ""
    return f" ({int(r['n_prompts'])} of {int(npp)} prompts)"


class Footnotes:
    """Missing values are shown as '- [k]'; the reasons go below the table (df.attrs['footnotes'])."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def mark(self, reason: str) -> str:
        # one note per reason (the counts differ per backend; scored/planned beside the cell gives them)
        text = f"missing: {re.sub(r' [(][0-9]+[)]$', '', short_reason(reason))}" if reason else \
            "missing: nothing was computed"
        if text not in self.notes:
            self.notes.append(text)
        return f"- [{self.notes.index(text) + 1}]"

    def attach(self, df):
        df.attrs["footnotes"] = [f"[{i + 1}] {n}" for i, n in enumerate(self.notes)]
        return df


def _missing_mark(row, notes: Footnotes) -> str:
    reasons = row.get("missing_reasons")
    return notes.mark("" if _nan(reasons) or not reasons else str(reasons))


def short_reason(reason: str, n: int = 100) -> str:
    """The gist of a missing reason for a table cell: up to the first '): ' (the details follow it), cut at n
    characters. The failures table keeps the full reasons."""
    reason = str(reason)
    cut = reason.find("): ")
    if cut > 0:
        tail = re.search(r" \(\d+\)$", reason)
        reason = reason[: cut + 1] + (tail.group(0) if tail and "; " not in reason else "")
    return _short(reason, n)


def _missing_text(row) -> str:
    reasons = row.get("missing_reasons")
    if _nan(reasons) or not reasons:
        return "missing"
    return f"missing ({short_reason(reasons)})"


def fmt_value(mean, low, high, unit: str) -> str:
    if _nan(mean):
        return "-"
    if unit == "%":
        return f"{mean:.0f}% [{low:.0f}, {high:.0f}]"
    if unit == "points":
        return f"{mean:.1f} [{low:.1f}, {high:.1f}]"
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"


def metric_table(agg, backends: dict | None = None):
    """Per backend x metric (every scorer identity): mean with 95% CI, counts, missing with reasons.

    `value` is the formatted cell: "71% [60, 80]", or "missing (reason (n))" when nothing was computed."""
    import pandas as pd

    cols = ["backend", "backend_name", "scorer", "model", "metric", "variant", "unit", "mean", "ci_low", "ci_high",
            "n_prompts", "n_items", "n_missing", "coverage", "ci_method", "missing_reasons", "value", "note"]
    if agg is None or agg.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for _, r in agg.iterrows():
        d = {c: r.get(c) for c in cols if c in r}
        if r["n_items"] == 0:
            d["value"] = _missing_text(r)
        else:
            d["value"] = fmt_value(r["mean"], r["ci_low"], r["ci_high"], r["unit"])
            if r["n_missing"]:
                d["value"] += f" ({int(r['n_missing'])} missing)"
        d["note"] = _note(r["backend"], backends)
        rows.append(d)
    return pd.DataFrame(rows, columns=cols)


def _note(label: str, backends: dict | None) -> str:
    if not backends or label not in backends:
        return ""
    b = backends[label]
    if b.labelled_noise:
        return NOISE_NOTE
    if b.name == "reference":
        return CEILING_NOTE
    return ""


def summary_table(agg, backends: dict | None = None, scorer_ids: dict[str, str | None] | None = None):
    """One row per backend, one column per headline metric (primary scorer identities), formatted cells."""
    import pandas as pd

    if agg is None or agg.empty:
        return pd.DataFrame(columns=["backend"])
    scorer_ids = scorer_ids or {}
    ids = {v for v in scorer_ids.values() if v}
    a = agg[agg["scorer_id"].isin(ids)] if ids else agg
    rows = []
    notes = Footnotes()
    for b in _backend_order(list(a["backend"]) + list(backends or []), backends):
        row = {"backend": b}
        for metric, variant, title in HEADLINE:
            r = a[(a.backend == b) & (a.metric == metric) & (a.variant == variant)]
            if r.empty:
                row[title] = "n/a"
            else:
                r = r.iloc[0]
                row[title] = _missing_mark(r, notes) if r["n_items"] == 0 else fmt_value(
                    r["mean"], r["ci_low"], r["ci_high"], r["unit"]) + _gap(r)
        row["items scored/planned"] = _coverage_cell(a[a.backend == b])
        row["scorers"] = ", ".join(dict.fromkeys(str(m) for m in a.loc[a.backend == b, "model"])) or "-"
        row["note"] = _note(b, backends) or ("no scores" if a[a.backend == b].empty else "")
        rows.append(row)
    return notes.attach(pd.DataFrame(rows))


def _coverage_cell(rows) -> str:
    """'ocr 6/6, clip 0/12': items scored / planned per scorer kind (text metrics: items with target text)."""
    parts = []
    for kind, metric in (("ocr", "text_exact"), ("clip", "clip_score")):
        r = rows[(rows.scorer == kind) & (rows.metric == metric)]
        if len(r) and "coverage" in r:
            parts.append(f"{kind} {r.iloc[0]['coverage']}")
    return ", ".join(parts) or "-"


def _backend_order(labels: Iterable[str], backends: dict | None) -> list[str]:
    present = list(dict.fromkeys(labels))
    if backends:
        return [b for b in backends if b in present] + [b for b in present if b not in backends]
    return present


def category_table(agg_cat, backends: dict | None = None, scorer_ids: dict[str, str | None] | None = None,
                   metrics: Sequence[tuple[str, str]] = (("prompt_following", ""), ("text_exact", "lenient"),
                                                         ("clip_score", ""))):
    """Per backend x category for the headline metrics (long format): mean, CI, counts, formatted value."""
    import pandas as pd

    cols = ["backend", "category", "metric", "variant", "unit", "mean", "ci_low", "ci_high", "n_prompts", "n_items",
            "n_missing", "coverage", "value"]
    if agg_cat is None or agg_cat.empty:
        return pd.DataFrame(columns=cols)
    ids = {v for v in (scorer_ids or {}).values() if v}
    a = agg_cat[agg_cat["scorer_id"].isin(ids)] if ids else agg_cat
    a = a[[(m, v) in set(metrics) for m, v in zip(a.metric, a.variant)]]
    from ..metrics.stats import MIN_PROMPTS

    rows = []
    notes = Footnotes()
    order = _backend_order(a["backend"], backends)
    for _, r in a.iterrows():
        d = {c: r[c] for c in cols if c in r}
        if r["n_items"] == 0:
            d["value"] = _missing_mark(r, notes)
        else:
            d["value"] = fmt_value(r["mean"], r["ci_low"], r["ci_high"], r["unit"]) + _gap(r)
            if r["n_prompts"] < MIN_PROMPTS:
                d["value"] += f" too few prompts (n={int(r['n_prompts'])})"
        rows.append(d)
    out = pd.DataFrame(rows, columns=cols)
    out["_o"] = out["backend"].map({b: i for i, b in enumerate(order)})
    out = out.sort_values(["metric", "variant", "_o", "category"]).drop(columns="_o").reset_index(drop=True)
    return notes.attach(out)


def category_pivot(cat, metric: str, variant: str):
    """backend x category grid of formatted values for one metric (for Markdown)."""
    sub = cat[(cat.metric == metric) & (cat.variant == variant)]
    if sub.empty:
        return None
    order = list(dict.fromkeys(sub["backend"]))
    p = sub.pivot(index="backend", columns="category", values="value").reindex(order).fillna("n/a")
    return p.reset_index()


def failures_table(records, scores, backends: dict | None = None):
    """Per backend: planned items, ok / failed / filtered / not generated, and per scorer the items whose
    metrics are missing, with the reasons counted."""
    import pandas as pd

    rows = []
    if records is None or records.empty:
        return pd.DataFrame(columns=["backend", "planned", "ok", "failed", "filtered", "not generated",
                                     "missing metrics"])
    for b in _backend_order(records["backend"], backends):
        r = records[records.backend == b]
        st = r["status"].value_counts()
        row = {"backend": b, "planned": len(r), "ok": int(st.get("ok", 0)), "failed": int(st.get("failed", 0)),
               "filtered": int(st.get("filtered", 0)), "not generated": int(st.get("missing", 0))}
        parts = []
        if scores is not None and not scores.empty:
            s = scores[(scores.backend == b) & scores["missing_reason"].notna()]
            # one count per item and scorer identity (an item misses several metrics for one reason)
            s = s.drop_duplicates(["prompt_id", "seed", "scorer_id", "missing_reason"])
            for (model, reason), g in s.groupby(["model", "missing_reason"], sort=True):
                parts.append(f"{model}: {len(g)} item(s), {reason}")
        row["missing metrics"] = "; ".join(parts) if parts else "none"
        errs = r.loc[r["status"].isin(["failed", "filtered"]), "error"] if "error" in r else []
        msgs = list(dict.fromkeys(str(e) for e in errs if not _nan(e)))
        row["errors"] = "; ".join(msgs[:3]) + (" ..." if len(msgs) > 3 else "")
        rows.append(row)
    return pd.DataFrame(rows)


# --- the article's three tables ---------------------------------------------------------------------------

def prompt_following_table(agg, backends: dict | None = None, clip_id: str | None = None):
    """Backend -> "% accurate (CI)", like "Flux.1 Dev: 95% accurate"."""
    import pandas as pd

    cols = ["backend", "accurate", "mean", "ci_low", "ci_high", "n_prompts", "n_items", "scored/planned", "model",
            "note"]
    if agg is None or agg.empty:
        return pd.DataFrame(columns=cols)
    a = agg[(agg.metric == "prompt_following")]
    if clip_id:
        a = a[a.scorer_id == clip_id]
    rows = []
    notes = Footnotes()
    for b in _backend_order(list(a["backend"]) + list(backends or []), backends):
        if a[a.backend == b].empty:
            rows.append({"backend": b, "accurate": "n/a", "n_prompts": 0, "n_items": 0, "scored/planned": "-",
                         "note": _note(b, backends) or "no prompt-following rows (not scored, or no prompt has "
                                                         "hard negatives)"})
            continue
        r = a[a.backend == b].iloc[0]
        if r["n_items"] == 0:
            acc = _missing_mark(r, notes)
        else:
            acc = f"{r['mean']:.0f}% accurate (95% CI {r['ci_low']:.0f}-{r['ci_high']:.0f})" + _gap(r)
        rows.append({"backend": b, "accurate": acc, "mean": r["mean"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                     "n_prompts": int(r["n_prompts"]), "n_items": int(r["n_items"]),
                     "scored/planned": r.get("coverage", "-"), "model": r["model"], "note": _note(b, backends)})
    return notes.attach(pd.DataFrame(rows, columns=cols))


VQA_COLUMNS = (("vqa_score", "VQAScore"), ("question_score", "questions yes"),
               ("prompt_following_vqa", "every question yes"), ("judge_text_answers", "answers from text"))


def _vqa_cell(r, notes) -> str:
    if r is None:
        return "-"
    if r["n_items"] == 0:
        return _missing_mark(r, notes)
    return fmt_value(r["mean"], r["ci_low"], r["ci_high"], r["unit"]) + _gap(r)


def vqa_table(agg, backends: dict | None = None):
    """Backend -> the VQA judge's figures (VQAScore, questions answered yes, every question yes; 95% CIs over
    prompts) and question accuracy per question category, one column each; the judge named per row."""
    import pandas as pd

    a = agg[agg.scorer == "vqa"] if agg is not None and not agg.empty else None
    if a is None or a.empty:
        return pd.DataFrame(columns=["backend"] + [t for _, t in VQA_COLUMNS] + ["judge"])
    cats = sorted(set(a.loc[a.metric == "question_acc", "variant"]))
    cols = ["backend"] + [t for _, t in VQA_COLUMNS] + [R.title("question_acc", c) for c in cats] + \
        ["n_prompts", "scored/planned", "judge", "note"]
    rows, notes = [], Footnotes()
    for b in _backend_order(a["backend"], backends):
        sub = a[a.backend == b]

        def get(metric, variant=""):
            r = sub[(sub.metric == metric) & (sub.variant == variant)]
            return r.iloc[0] if len(r) else None
        row = {"backend": b, **{t: _vqa_cell(get(m), notes) for m, t in VQA_COLUMNS}}
        row.update({R.title("question_acc", c): _vqa_cell(get("question_acc", c), notes) for c in cats})
        head = get("vqa_score")
        row.update({"n_prompts": int(head["n_prompts"]) if head is not None else 0,
                    "scored/planned": head.get("coverage", "-") if head is not None else "-",
                    "judge": sub["model"].iloc[0], "note": _note(b, backends)})
        rows.append(row)
    return notes.attach(pd.DataFrame(rows, columns=cols))


VQA_MAIN = ["backend"] + [t for _, t in VQA_COLUMNS] + ["n_prompts", "scored/planned", "judge", "note"]


def vqa_category_table(vqa):
    """The question-accuracy columns of `vqa_table` on their own (backend -> one column per question category,
    named by the category), so the judge's headline table stays narrow; footnotes carried over."""
    prefix, suffix = R.title("question_acc", "\0").split("\0")
    cats = [c for c in vqa.columns if c.startswith(prefix) and c.endswith(suffix)]
    out = vqa[["backend"] + cats].rename(columns={c: c[len(prefix):len(c) - len(suffix)] for c in cats})
    out.attrs = dict(vqa.attrs)
    return out


def text_table(agg, backends: dict | None = None, ocr_id: str | None = None):
    """Backend -> verdict ("usually correct", "often garbled", "mixed") with the text accuracy behind it,
    strict accuracy, garbled share, and the reference backend's accuracy (the OCR ceiling)."""
    import pandas as pd

    cols = ["backend", "verdict", "text accuracy", "mean", "ci_low", "ci_high", "strict", "garbled targets",
            "ceiling", "n_prompts", "n_items", "scored/planned", "engine", "note"]
    if agg is None or agg.empty:
        return pd.DataFrame(columns=cols)
    a = agg[agg.scorer_id == ocr_id] if ocr_id else agg
    rows = []
    notes = Footnotes()
    te = a[(a.metric == "text_exact") & (a.variant == "lenient")]
    for b in _backend_order(list(te["backend"]) + list(backends or []), backends):
        if te[te.backend == b].empty:
            rows.append({"backend": b, "verdict": "-", "text accuracy": "n/a", "n_prompts": 0, "n_items": 0,
                         "scored/planned": "-", "note": _note(b, backends) or "no text rows (not OCR-scored, or no "
                                                                               "prompt has target text)"})
            continue
        r = te[te.backend == b].iloc[0]

        def pct(metric, variant):
            x = a[(a.backend == b) & (a.metric == metric) & (a.variant == variant)]
            return f"{x.iloc[0]['mean']:.0f}%" if len(x) and not _nan(x.iloc[0]["mean"]) else "-"

        if r["n_items"] == 0:
            verdict, acc = "-", _missing_mark(r, notes)
        else:
            verdict = r["label"] or "-"
            acc = fmt_value(r["mean"], r["ci_low"], r["ci_high"], "%") + _gap(r)
        ceil = r.get("ceiling")
        rows.append({"backend": b, "verdict": verdict, "text accuracy": acc, "mean": r["mean"], "ci_low": r["ci_low"],
                     "ci_high": r["ci_high"], "strict": pct("text_exact", "strict"),
                     "garbled targets": pct("text_garbled", "lenient"),
                     "ceiling": "-" if _nan(ceil) else fmt_value(ceil, r["ceiling_ci_low"], r["ceiling_ci_high"], "%"),
                     "n_prompts": int(r["n_prompts"]), "n_items": int(r["n_items"]),
                     "scored/planned": r.get("coverage", "-"), "engine": r["model"], "note": _note(b, backends)})
    return notes.attach(pd.DataFrame(rows, columns=cols))


def speed_table(records, backends: dict | None = None):
    """Backend -> steps, resolution, median seconds per image (warm-up items excluded), load time, peak
    VRAM, peak RSS, and the hardware it ran on (from run.json). Timings from different hardware are never
    compared: `hardware` says where each number comes from."""
    import pandas as pd

    cols = ["backend", "steps", "resolution", "median s/image", "n timed", "load s", "peak VRAM GB", "peak RSS GB",
            "hardware", "note"]
    if records is None or records.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for b in _backend_order(records["backend"], backends):
        r = records[(records.backend == b) & (records.status == "ok")]
        meta = backends.get(b) if backends else None
        timed = r[(r["warmup"] == False) & r["latency_s"].notna()] if "warmup" in r else r.iloc[0:0]  # noqa: E712
        med = float(np.median(timed["latency_s"])) if len(timed) else math.nan
        steps = sorted({int(s) for s in r["steps"].dropna()}) if "steps" in r else []
        sizes = sorted({f"{int(w)}x{int(h)}" for w, h in zip(r["width"], r["height"]) if not _nan(w)}) \
            if "width" in r else []
        load = meta.load_s if meta and meta.load_s is not None else (
            float(r["load_s"].dropna().max()) if "load_s" in r and r["load_s"].notna().any() else math.nan)
        vram = r["peak_vram_gb"].dropna() if "peak_vram_gb" in r else []
        rss = r["peak_rss_gb"].dropna() if "peak_rss_gb" in r else []
        note = _note(b, backends)
        if len(r) and not len(timed):
            note = "; ".join(x for x in [note, "no timed item (only the warm-up)"] if x)
        rows.append({"backend": b, "steps": ",".join(map(str, steps)) or "-", "resolution": ",".join(sizes) or "-",
                     "median s/image": med, "n timed": len(timed), "load s": load,
                     "peak VRAM GB": float(max(vram)) if len(vram) else math.nan,
                     "peak RSS GB": float(max(rss)) if len(rss) else math.nan,
                     "hardware": meta.hardware if meta else None, "note": note})
    return pd.DataFrame(rows, columns=cols)


# --- rendering ------------------------------------------------------------------------------------------------

def _cell(x: Any, col: str = "") -> str:
    if _nan(x):
        if col == "peak VRAM GB":
            return "n/a (no CUDA)"
        return "-"
    if isinstance(x, (float, np.floating)):
        if col in ("median s/image", "load s"):
            return f"{x:.3f}" if x < 10 else f"{x:.1f}"
        if col.startswith("peak"):
            return f"{x:.2f}"
        return f"{x:.3g}"
    return str(x).replace("|", "\\|").replace("\n", " ")


def display_frame(df, columns: Sequence[str] | None = None):
    """The columns a reader sees (no raw mean/ci helper columns unless asked), as strings."""
    cols = list(columns) if columns else [c for c in df.columns if c not in ("mean", "ci_low", "ci_high")]
    return [[_cell(row[c], c) for c in cols] for _, row in df[cols].iterrows()], cols


def to_markdown(df, columns: Sequence[str] | None = None) -> str:
    if df is None or df.empty:
        return "_(no rows)_\n"
    rows, cols = display_frame(df, columns)
    out = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    notes = df.attrs.get("footnotes") or []
    return "\n".join(out) + "\n" + ("\n" + "\n".join(f"{n}  " for n in notes) + "\n" if notes else "")


def format_compact(df, columns: Sequence[str] | None = None, max_width: int | None = None) -> str:
    """Aligned plain-text table for the terminal (cells cut at max_width characters)."""
    if df is None or df.empty:
        return "(no rows)"
    rows, cols = display_frame(df, columns)
    if max_width:
        rows = [[c if len(c) <= max_width else c[: max_width - 3] + "..." for c in r] for r in rows]
    return "\n".join(align(cols, rows) + list(df.attrs.get("footnotes") or []))


def align(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """The one plain-text table layout: columns left-aligned, two spaces apart, no trailing blanks."""
    widths = [max(len(str(x)) for x in [c] + [r[i] for r in rows]) for i, c in enumerate(header)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return [line(header)] + [line(r) for r in rows]


def _short(s: Any, n: int) -> str:
    s = "" if s is None else str(s)
    return s if len(s) <= n else s[: n - 3] + "..."


def _fmt_ci_short(mean, low, high, pct=True) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if pct:
        return f"{mean:.0f}% [{low:.0f}, {high:.0f}]"
    return f"{mean:.1f} [{low:.1f}, {high:.1f}]"


def score_summary(agg, scorer_ids: Sequence[str] | None = None) -> str:
    """The terminal table of `evalsuite score` / `run` (`ScoreResult.text()`): per backend, text accuracy with
    CI and verdict, strict accuracy, word recall, clip_score, prompt following, missing counts with reasons;
    the reference backend marked as the ceiling. scorer_ids: the identities just scored, in their order (the
    last OCR one, the best-of combination when several engines, and the first CLIP one are shown)."""
    if agg.empty:
        return "no scores"
    a = agg[agg["scorer_id"].isin(set(scorer_ids))] if scorer_ids else agg
    kinds = dict(zip(a["scorer_id"], a["scorer"]))
    ids = list(scorer_ids) if scorer_ids else sorted(kinds)
    ocr_ids = [s for s in ids if kinds.get(s) == "ocr"]
    ocr_id = ocr_ids[-1] if ocr_ids else None
    clip_ids = [s for s in ids if kinds.get(s) == "clip"]
    clip_id = clip_ids[0] if clip_ids else None

    def get(b, sid, metric, variant):
        r = a[(a.backend == b) & (a.scorer_id == sid) & (a.metric == metric) & (a.variant == variant)]
        return r.iloc[0] if len(r) else None

    header = ["backend", "text acc [95% CI]", "verdict", "strict", "word recall", "clip_score", "prompt following",
              "missing items"]
    lines = []
    backends = list(dict.fromkeys(a["backend"]))
    missing_notes: dict[str, int] = {}
    for b in backends:
        cells = [b]
        te = get(b, ocr_id, "text_exact", "lenient")
        cells.append(_fmt_ci_short(te["mean"], te["ci_low"], te["ci_high"]) if te is not None else "n/a")
        cells.append((te["label"] or "-") if te is not None else "-")
        st = get(b, ocr_id, "text_exact", "strict")
        cells.append(f"{st['mean']:.0f}%" if st is not None and not math.isnan(st["mean"]) else "-")
        wr = get(b, ocr_id, "word_recall", "lenient")
        cells.append(f"{wr['mean']:.0f}%" if wr is not None and not math.isnan(wr["mean"]) else "-")
        cs = get(b, clip_id, "clip_score", "")
        cells.append(_fmt_ci_short(cs["mean"], cs["ci_low"], cs["ci_high"], pct=False) if cs is not None and cs["n_items"]
                     else ("missing" if cs is not None else "n/a"))
        pf = get(b, clip_id, "prompt_following", "")
        cells.append(_fmt_ci_short(pf["mean"], pf["ci_low"], pf["ci_high"]) if pf is not None and pf["n_items"]
                     else ("missing" if pf is not None else "n/a"))
        # items missing per scorer: clip_score and ocr_chars exist for every scored item
        sub = a[(a.backend == b) & (a.n_missing > 0) & (((a.scorer_id == clip_id) & (a.metric == "clip_score")) |
                                                         ((a.scorer_id == ocr_id) & (a.metric == "ocr_chars")))]
        cells.append(str(int(sub["n_missing"].sum())))
        for rs in sub["missing_reasons"].dropna():
            for part in rs.split("; "):
                m = re.match(r"^(.*) \((\d+)\)$", part)
                if m:
                    missing_notes[m.group(1)] = missing_notes.get(m.group(1), 0) + int(m.group(2))
        lines.append(cells)
    out = align(header, lines)
    ref_names = sorted(set(a.loc[a["backend_name"] == "reference", "backend"])) if "backend_name" in a else []
    if ref_names:
        out.append(f"{', '.join(ref_names)}: renders the targets legibly; its text accuracy is the OCR ceiling")
    if ocr_id:
        out.append(f"text metrics: {a.loc[a.scorer_id == ocr_id, 'model'].iloc[0]} (lenient; strict beside it)")
    for reason, n in missing_notes.items():
        out.append(f"missing ({n} items): {reason}")
    out += _vqa_lines(a, backends, [s for s in ids if kinds.get(s) == "vqa"])
    return "\n".join(out)


def _vqa_lines(a, backends: list[str], vqa_ids: list[str]) -> list[str]:
    """The terminal lines of each VQA judge just scored: per backend VQAScore, questions yes, every question yes."""
    out = []
    for sid in vqa_ids:
        rows = []
        for b in backends:
            sub = a[(a.backend == b) & (a.scorer_id == sid)]

            def cell(metric, pct=True):
                r = sub[sub.metric == metric]
                if not len(r):
                    return "n/a"
                r = r.iloc[0]
                if not r["n_items"]:
                    return "missing"
                return _fmt_ci_short(r["mean"], r["ci_low"], r["ci_high"], pct) if pct else \
                    f"{r['mean']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
            rows.append([b, cell("vqa_score", False), cell("question_score"), cell("prompt_following_vqa")])
        model = a.loc[a.scorer_id == sid, "model"].iloc[0]
        out.append(f"VQA judge {model}:")
        out += align(["backend", "VQAScore [95% CI]", "questions yes", "every question yes"], rows)
    return out
