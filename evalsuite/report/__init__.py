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

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EvalsuiteError
from ..runfolder import atomic_write_text
from . import tables as T
from .data import ReportData, load_runs

__all__ = ["write_report", "build_tables", "load_runs", "Report", "ReportData"]

CHART_METRICS = (("prompt_following", ""), ("text_exact", "lenient"), ("clip_score", ""), ("word_recall", "lenient"))
DIST_METRICS = (("text_similarity", "lenient"), ("clip_score", ""), ("ocr_chars", "lenient"))
TITLES = {(m, v): t for m, v, t in T.HEADLINE} | {("ocr_chars", "lenient"): "OCR characters read (confidence >= 0.5)"}


@dataclass
class Report:
    out_dir: Path
    html: Path | None
    paths: dict[str, list[Path]] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The article's tables, compactly, for the terminal."""
        out = []
        for name, title, cols in (
            ("prompt_following", "Prompt following", ["backend", "accurate", "n_prompts", "note"]),
            ("text", "Text in images", ["backend", "verdict", "text accuracy", "strict", "ceiling", "note"]),
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
                f"{self.out_dir / 'tables'}, {n_charts} charts in {self.out_dir / 'charts'})")


def build_tables(data: ReportData) -> dict[str, Any]:
    """Every report table as a DataFrame (pure: reads nothing, writes nothing)."""
    from ..scoring import aggregate

    agg = aggregate(data.scores) if not data.scores.empty else None
    agg_cat = aggregate(data.scores, by=("backend", "category")) if not data.scores.empty else None
    ids = T.primary_scorers(data.scores)
    b = data.backends
    return {
        "summary": T.summary_table(agg, b, ids),
        "prompt_following": T.prompt_following_table(agg, b, ids["clip"]),
        "text": T.text_table(agg, b, ids["ocr"]),
        "speed": T.speed_table(data.records, b),
        "categories": T.category_table(agg_cat, b, ids),
        "failures": T.failures_table(data.records, data.scores, b),
        "metrics": T.metric_table(agg, b),
        "_agg": agg, "_agg_cat": agg_cat, "_scorer_ids": ids,
    }


MD_SECTIONS = (
    ("prompt_following", "Prompt following (CLIP contrastive: own prompt ranked above every hard negative)",
     ["backend", "accurate", "n_prompts", "n_items", "model", "note"]),
    ("text", "Text in images (OCR; reference = ceiling)",
     ["backend", "verdict", "text accuracy", "strict", "garbled targets", "ceiling", "n_prompts", "engine", "note"]),
    ("speed", "Speed (median over images, warm-up excluded; never compare across hardware)", None),
    ("summary", "Summary per backend (95% bootstrap CIs over prompts)", None),
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
    agg, agg_cat, ids = tabs["_agg"], tabs["_agg_cat"], tabs["_scorer_ids"]
    paths: dict[str, list[Path]] = {}
    if agg is None:
        return paths
    order = list(data.backends)
    colours = C.backend_colours(order)
    noise = data.noise_backends
    sid = lambda metric: ids["clip"] if metric in ("clip_score", "clip_s", "prompt_following") else ids["ocr"]  # noqa: E731
    for metric, variant in CHART_METRICS:
        rows = agg[(agg.metric == metric) & (agg.variant == variant) & (agg.scorer_id == sid(metric))]
        if (rows.n_items > 0).any():      # all missing: the tables say so, a chart of nothing would not
            key = f"bars_{metric}"
            paths["chart:" + key] = C.bar_chart(agg, metric, variant, TITLES[(metric, variant)], cdir, colours=colours,
                                                noise=noise, scorer_id=sid(metric), order=order, stem=key)
        sub = agg_cat[(agg_cat.metric == metric) & (agg_cat.variant == variant) & (agg_cat.scorer_id == sid(metric))]
        if len(sub) and (sub.n_items > 0).any():
            key = f"heatmap_{metric}"
            paths["chart:" + key] = C.heatmap(agg_cat, metric, variant, TITLES[(metric, variant)], cdir,
                                              scorer_id=sid(metric), order=order, noise=noise, stem=key)
    paths["chart:speed_vs_quality"] = C.speed_quality_scatter(tabs["speed"], agg, cdir, colours=colours,
                                                              scorer_ids=ids, noise=noise)
    for metric, variant in DIST_METRICS:
        s = data.scores
        if ((s.metric == metric) & (s.variant == variant) & s.value.notna() & (s.scorer_id == sid(metric))).any():
            key = f"dist_{metric}"
            paths["chart:" + key] = C.distribution(s, metric, variant, TITLES[(metric, variant)], cdir,
                                                   colours=colours, scorer_id=sid(metric), order=order, noise=noise,
                                                   stem=key)
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
                 worst_n: int = 12, progress: bool = True, log=None) -> Report:
    """Write tables, charts and report.html for one or several run folders into out_dir
    (default: FIRST_RUN_DIR/report). embed: True (thumbnails as data URIs inside the HTML), False
    (JPEG files in OUT/thumbs/), "auto" (embedded up to html.EMBED_MAX_ITEMS images)."""
    from .html import write_html

    log = log or (lambda msg: print(msg, file=sys.stderr))
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    run_dirs = [Path(p) for p in run_dirs]
    if thumb_size < 16:
        raise EvalsuiteError(f"report: thumbnail size must be at least 16 px, got {thumb_size}")
    data = load_runs(run_dirs)
    out = Path(out_dir) if out_dir else run_dirs[0] / "report"
    if out.exists() and not out.is_dir():
        raise EvalsuiteError(f"report: {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    before = _report_files(out)
    for n in data.notes:
        log(f"report: {n}")
    tabs = build_tables(data)
    paths = _write_tables(tabs, out, data)
    paths.update(_write_charts(tabs, data, out))
    html = write_html(data, tabs, paths, out, embed=embed, thumb_size=thumb_size, worst_n=worst_n,
                      progress=progress)
    paths["html"] = [html]
    _remove_stale(out, before)
    return Report(out_dir=out, html=html, paths=paths,
                  tables={k: v for k, v in tabs.items() if not k.startswith("_")}, notes=data.notes)
