"""Reports: tables (CSV + Markdown), charts (PNG + SVG) and one self-contained HTML file from run folders.

    write_report(run_dirs, out_dir=None) -> Report      (paths of everything written, the tables, notes)

Reports read only the run folders (run.json, prompts.jsonl, plan.jsonl, item records, scores/).
Layout of OUT (default: the first run folder's `report/`):

    report.html                  summary tables, charts, gallery per prompt, worst items (self-contained)
    tables.md                    every table in Markdown, ready to paste
    tables/<name>.csv|.md        summary, metrics, categories, failures, prompt_following, text, speed
    charts/<name>.png|.svg       bars_*, heatmap_*, speed_vs_quality, dist_*
    thumbs/                      JPEG thumbnails, only when they are not embedded (see html.py)
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EvalsuiteError
from ..metrics import registry as R
from ..store import atomic_write_text
from . import tables as T
from .data import ReportData, load_runs

__all__ = ["write_report", "build_tables", "load_runs", "Report", "ReportData"]

CHART_METRICS = (("prompt_following", ""), ("text_exact", "lenient"), ("clip_score", ""), ("word_recall", "lenient"))
DIST_METRICS = (("text_similarity", "lenient"), ("clip_score", ""), ("ocr_chars", "lenient"))
TITLES = {(m, v): R.title(m, v) for m, v in CHART_METRICS + DIST_METRICS}   # the metric registry's


@dataclass
class Report:
    out_dir: Path
    html: Path | None
    paths: dict[str, list[Path]] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cached_text: str | None = None   # up to date already (nothing rewritten): the text written with it
    up_to_date: bool = False

    def text(self) -> str:
        """The article's tables, compactly, for the terminal."""
        if self.cached_text is not None:
            return self.cached_text
        out = []
        for name, title, cols in (
            ("prompt_following", "Prompt following", ["backend", "accurate", "n_prompts", "scored/planned", "note"]),
            ("text", "Text in images", ["backend", "verdict", "text accuracy", "strict", "ceiling", "scored/planned",
                                        "engine", "note"]),
            ("speed", "Speed", ["backend", "steps", "median s/image", "load s", "peak VRAM GB", "peak RSS GB",
                                "hardware"]),
        ):
            df = self.tables.get(name)
            out.append(f"{title}:\n" + T.format_compact(df, cols if df is not None and not df.empty else None,
                                                        max_width=70))
        out += [f"note: {n}" for n in self.notes]
        return "\n\n".join(out)

    def summary(self) -> str:
        n_charts = len([p for k, v in self.paths.items() if k.startswith("chart:") for p in v if p.suffix == ".png"])
        return (f"report: {self.html} ({len([k for k in self.paths if k.startswith('table:')])} tables in "
                f"{self.out_dir / 'tables'}, {n_charts} charts in {self.out_dir / 'charts'})"
                + ("; up to date, nothing rewritten" if self.up_to_date else ""))


def build_tables(data: ReportData) -> dict[str, Any]:
    """Every report table as a DataFrame (pure: reads nothing, writes nothing)."""
    from ..scoring import aggregate

    agg = aggregate(data.scores) if not data.scores.empty else None
    agg_cat = aggregate(data.scores, by=("backend", "category")) if not data.scores.empty else None
    agg = T.add_coverage(agg, data.records, data.prompts)
    agg_cat = T.add_coverage(agg_cat, data.records, data.prompts, by=("backend", "category"))
    ids = T.primary_scorers(data.scores)
    choice = T.backend_scorers(data.scores, ids)
    pagg, pcat = T.primary_rows(agg, choice), T.primary_rows(agg_cat, choice)
    b = data.backends
    vqa = T.vqa_table(pagg, b)
    return {
        "summary": T.summary_table(pagg, b),
        "prompt_following": T.prompt_following_table(pagg, b),
        "vqa": vqa,
        "vqa_categories": T.vqa_category_table(vqa),
        "text": T.text_table(pagg, b),
        "protocols": T.protocol_table(pagg, b),
        "speed": T.speed_table(data.records, b),
        "categories": T.category_table(pcat, b),
        "failures": T.failures_table(data.records, data.scores, b),
        "metrics": T.metric_table(agg, b),
        "_agg": agg, "_agg_cat": agg_cat, "_scorer_ids": ids, "_primary": pagg, "_primary_cat": pcat,
        "_choice": choice,
    }


MD_SECTIONS = (
    ("prompt_following", "Prompt following (CLIP contrastive: own prompt ranked above every hard negative)",
     ["backend", "accurate", "n_prompts", "scored/planned", "model", "note"]),
    ("vqa", "Prompt following judged by a VLM (VQAScore; atomic questions with dependency gating; question "
            "accuracy by question category below; docs/scores.md)", T.VQA_MAIN),
    ("vqa_categories", "Question accuracy (%) by question category (VQA judge, dependency-gated)", None),
    ("text", "Text in images (OCR; reference = ceiling)",
     ["backend", "verdict", "text accuracy", "strict", "garbled targets", "ceiling", "n_prompts", "scored/planned",
      "engine", "note"]),
    ("protocols", "Published text protocols (CVTG-2K, OneIG-Bench, MARIO-Eval, LongText-Bench; our OCR, their "
                  "normalisation and formulas: docs/scores.md)", None),
    ("speed", "Speed (median over images, warm-up excluded; never compare across hardware)", None),
    ("summary", "Summary per backend (95% CIs over prompts: Wilson-t for rates, Student-t for means; "
                "items scored/planned beside them)", None),
    ("failures", "Failures and missing metrics", None),
    ("metrics", "Every metric per backend", ["backend", "scorer", "model", "metric", "variant", "value", "n_prompts",
                                             "n_items", "n_missing", "note"]),
)


def _write_tables(tabs: dict[str, Any], out: Path, data: ReportData) -> dict[str, list[Path]]:
    tdir = out / "tables"
    tdir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, list[Path]] = {}
    md_all = ["# evalsuite report tables\n", _runs_line(data) + "\n"]
    if data.noise_backends:
        md_all.append(f"**{', '.join(data.noise_backends)}: {T.NOISE_NOTE}.**\n")
    md_all += [f"- {n}\n" for n in data.notes]
    for name, title, cols in MD_SECTIONS:
        df = tabs[name]
        csv = tdir / f"{name}.csv"
        atomic_write_text(csv, df.to_csv(index=False))
        md = T.to_markdown(df, cols if not df.empty else None)
        mdp = tdir / f"{name}.md"
        atomic_write_text(mdp, md)
        paths[f"table:{name}"] = [csv, mdp]
        md_all.append(f"\n## {title}\n\n{md}")
    cat = tabs["categories"]
    atomic_write_text(tdir / "categories.csv", cat.to_csv(index=False))
    cat_md = []
    for metric, variant, title in T.HEADLINE:
        p = T.category_pivot(cat, metric, variant)
        if p is not None:
            cat_md.append(f"\n### {title}\n\n{T.to_markdown(p)}")
    if cat.attrs.get("footnotes"):
        cat_md.append("\n" + "\n".join(f"{n}  " for n in cat.attrs["footnotes"]) + "\n")
    atomic_write_text(tdir / "categories.md", "".join(cat_md) or "_(no rows)_\n")
    paths["table:categories"] = [tdir / "categories.csv", tdir / "categories.md"]
    md_all.append("\n## Per category\n" + ("".join(cat_md) or "\n_(no rows)_\n"))
    atomic_write_text(out / "tables.md", "".join(md_all))
    paths["tables.md"] = [out / "tables.md"]
    return paths


def _runs_line(data: ReportData) -> str:
    parts = []
    for name, path, info in data.runs:
        hw = info.environment.get("hardware")
        parts.append(f"run {name} ({path}): prompt set {info.prompt_set.get('name')}, "
                     f"{len(info.backends)} backend(s), seeds {info.seeds}, hardware {hw}")
    return "; ".join(parts)


def _write_charts(tabs, data: ReportData, out: Path) -> dict[str, list[Path]]:
    from . import charts as C

    cdir = out / "charts"
    agg, agg_cat = tabs["_primary"], tabs["_primary_cat"]      # each backend's headline scorer identities
    paths: dict[str, list[Path]] = {}
    if agg is None:
        return paths
    order = list(data.backends)
    colours = C.backend_colours(order)
    noise = data.noise_backends
    choice = tabs["_choice"]
    for metric, variant in CHART_METRICS:
        rows = agg[(agg.metric == metric) & (agg.variant == variant)]
        if (rows.n_items > 0).any():      # all missing: the tables say so, a chart of nothing would not
            key = f"bars_{metric}"
            paths["chart:" + key] = C.bar_chart(agg, metric, variant, TITLES[(metric, variant)], cdir, colours=colours,
                                                noise=noise, order=order, stem=key)
        sub = agg_cat[(agg_cat.metric == metric) & (agg_cat.variant == variant)]
        if len(sub) and (sub.n_items > 0).any():
            key = f"heatmap_{metric}"
            paths["chart:" + key] = C.heatmap(agg_cat, metric, variant, TITLES[(metric, variant)], cdir,
                                              order=order, noise=noise, stem=key)
    paths["chart:speed_vs_quality"] = C.speed_quality_scatter(tabs["speed"], agg, cdir, colours=colours,
                                                              scorer_ids={}, noise=noise)
    s = data.scores
    if not s.empty:
        s = s[[choice.get((b, k)) == i for b, k, i in zip(s["backend"], s["scorer"], s["scorer_id"])]]
    for metric, variant in DIST_METRICS:
        if ((s.metric == metric) & (s.variant == variant) & s.value.notna()).any():
            key = f"dist_{metric}"
            rows = agg[(agg.metric == metric) & (agg.variant == variant)]
            paths["chart:" + key] = C.distribution(s, metric, variant, TITLES[(metric, variant)], cdir,
                                                   colours=colours, order=order, noise=noise, stem=key,
                                                   planned=dict(zip(rows.backend, rows.n_planned.astype(int))))
    return paths


def _report_files(out: Path) -> dict[Path, int]:
    """The report's own files in its own sub-folders (charts, thumbnails), each with its inode."""
    found: dict[Path, int] = {}
    for sub, exts in (("charts", (".png", ".svg")), ("thumbs", (".jpg",))):
        d = out / sub
        if d.is_dir():
            for p in d.iterdir():
                if p.is_file() and p.suffix in exts:
                    found[p] = p.stat().st_ino
    return found


def _remove_stale(out: Path, before: dict[Path, int]) -> None:
    """Charts and thumbnails of an earlier report in the same folder would mislead: once the new report is
    written, remove those it did not rewrite (every write replaces the file, so a rewritten one has a new inode).
    Until then the old report stays complete: a killed report never links to missing files."""
    for p, ino in before.items():
        try:
            if p.stat().st_ino == ino:
                p.unlink()
        except FileNotFoundError:
            pass


def write_report(run_dirs, out_dir: str | Path | None = None, *, embed: str | bool = "auto", thumb_size: int = 192,
                 worst_n: int = 12, progress: bool = True, log=None, reuse: bool = False) -> Report:
    """Write tables, charts and report.html for one or several run folders into out_dir
    (default: FIRST_RUN_DIR/report). embed: True (thumbnails as data URIs inside the HTML), False
    (JPEG files in OUT/thumbs/), "auto" (embedded up to html.EMBED_MAX_ITEMS images).
    reuse=True (what `run` passes): when OUT holds a report made from exactly these inputs (report.stamp.json:
    a hash of the run files, item files, options and report code), nothing is read or rewritten and the
    returned Report is up_to_date, with its terminal text but no tables (call again without reuse for them)."""
    from .html import write_html

    log = log or (lambda msg: print(msg, file=sys.stderr))
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    run_dirs = [Path(p) for p in run_dirs]
    if thumb_size < 16:
        raise EvalsuiteError(f"report: thumbnail size must be at least 16 px, got {thumb_size}")
    out = Path(out_dir) if out_dir else run_dirs[0] / "report"
    stamp = _inputs_stamp(run_dirs, out, embed=embed, thumb_size=thumb_size, worst_n=worst_n)
    done = _up_to_date(out, stamp) if reuse else None
    if done is not None:
        return done
    data = load_runs(run_dirs)
    if out.exists() and not out.is_dir():
        raise EvalsuiteError(f"report: {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    (out / STAMP).unlink(missing_ok=True)   # a report being rewritten is not up to date until it is done
    before = _report_files(out)
    tabs = build_tables(data)
    data.notes.extend(T.identity_notes(tabs["_choice"], data.scores))
    for n in data.notes:
        log(f"report: {n}")
    paths = _write_tables(tabs, out, data)
    paths.update(_write_charts(tabs, data, out))
    html = write_html(data, tabs, paths, out, embed=embed, thumb_size=thumb_size, worst_n=worst_n,
                      progress=progress)
    paths["html"] = [html]
    _remove_stale(out, before)
    rep = Report(out_dir=out, html=html, paths=paths,
                 tables={k: v for k, v in tabs.items() if not k.startswith("_")}, notes=data.notes)
    atomic_write_text(out / STAMP, json.dumps({
        "stamp": stamp, "html": str(html), "paths": {k: [str(p) for p in v] for k, v in paths.items()},
        "notes": list(data.notes), "text": rep.text()}, ensure_ascii=False))
    return rep


STAMP = "report.stamp.json"


def _inputs_stamp(run_dirs: list[Path], out: Path, **options) -> str:
    """A hash of everything a report is made from: each run's run.json, plan, prompts, score table and
    scorers, every item file's name, size and mtime, the options, the output folder and the report code."""
    import hashlib
    import os

    from ..store import ScoreStore, code_stamp

    h = hashlib.sha256(json.dumps({"options": {k: str(v) for k, v in options.items()}, "out": str(out.resolve()),
                                   "runs": [str(d.resolve()) for d in run_dirs]}).encode())
    h.update(code_stamp("report/__init__.py", "report/charts.py", "report/data.py", "report/html.py",
                        "report/tables.py", "scoring/__init__.py", "metrics/aggregate.py", "metrics/registry.py",
                        "metrics/stats.py", "metrics/text.py", "metrics/text_protocols.py", "store/scores.py").encode())
    for d in run_dirs:
        files = [(n, d / n) for n in ("run.json", "plan.jsonl", "prompts.jsonl")] + ScoreStore(d).files()
        for name, p in files:
            h.update(name.encode() + (p.read_bytes() if p.is_file() else b"-"))
        stack = [d / "items"]
        while stack:
            folder = stack.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    stack.append(Path(e.path))
                else:
                    st = e.stat(follow_symlinks=False)
                    h.update(f"{e.path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _up_to_date(out: Path, stamp: str) -> "Report | None":
    """The report already in `out` when it was made from exactly these inputs and all its files are there."""
    try:
        saved = json.loads((out / STAMP).read_text(encoding="utf-8"))
        if saved.get("stamp") != stamp:
            return None
        paths = {k: [Path(p) for p in v] for k, v in saved["paths"].items()}
        if not all(p.is_file() for v in paths.values() for p in v):
            return None
        return Report(out_dir=out, html=Path(saved["html"]), paths=paths, notes=list(saved.get("notes", [])),
                      cached_text=saved["text"], up_to_date=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None
