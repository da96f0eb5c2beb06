"""One self-contained HTML report: summary tables, charts, a gallery per prompt (backends side by side
for the same seed; each image with its scores, OCR text and status), a category filter and the worst
items per metric. No network, no external CSS or JS: it works opened from disk.

Thumbnails (choice): small JPEGs (long side `thumb_size`, 192 px by default, never upscaled), embedded
as data URIs when the report holds at most EMBED_MAX_ITEMS images (one file to send), otherwise written
to `thumbs/` beside report.html and referenced relatively (the HTML stays small for thousands of
images; send the folder). Charts are embedded PNGs. Every gallery image has loading="lazy". Each
thumbnail links to the full-size PNG in its run folder (a relative link: it works while the report
stays beside the run folders).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from ..runfolder import atomic_write_bytes, atomic_write_text
from . import tables as T

EMBED_MAX_ITEMS = 400
ITEM_METRICS = (("text_exact", "lenient", "text exact"), ("text_similarity", "lenient", "text similarity"),
                ("word_recall", "lenient", "word recall"), ("clip_score", "", "CLIP score"),
                ("prompt_following", "", "prompt following"))
WORST_METRICS = (("text_similarity", "lenient", "text similarity (lenient)"), ("clip_score", "", "CLIP score"),
                 ("prompt_following", "", "prompt following (0 = a negative ranked at or above the prompt)"))

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1400px;
 padding:0 1.2em 3em;color:#1a1a1a;background:#fff;line-height:1.4}
h1{font-size:1.6em;margin:.8em 0 .2em} h2{border-bottom:2px solid #0072B2;padding-bottom:.2em;margin-top:1.8em}
h3{margin:.2em 0} .muted{color:#555} .small{font-size:.85em}
.banner{background:#fff3cd;border:1px solid #e0b000;padding:.6em .9em;margin:.8em 0;border-radius:4px}
.notes{background:#eef5fb;border:1px solid #9cc3e0;padding:.4em .9em;border-radius:4px}
table.t{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}
table.t th,table.t td{border:1px solid #ccc;padding:.25em .55em;text-align:left;vertical-align:top}
table.t th{background:#f2f2f2} table.t tr.noise td{background:#fffaf0}
.charts{display:flex;flex-wrap:wrap;gap:1em} .charts figure{margin:0;border:1px solid #ddd;padding:.4em;background:#fff}
.charts img{max-width:100%;height:auto;display:block} figcaption{font-size:.8em;color:#555}
nav.toc a{margin-right:1em} .filter{position:sticky;top:0;background:#fff;padding:.5em 0;z-index:2;border-bottom:1px solid #ddd}
section.prompt{border:1px solid #ddd;border-radius:6px;padding:.6em .8em;margin:1em 0}
.cat{display:inline-block;background:#e8e8e8;border-radius:3px;padding:0 .4em;font-size:.8em;margin-left:.4em}
table.grid{border-collapse:collapse} table.grid td,table.grid th{padding:.3em;vertical-align:top;border-top:1px solid #eee}
table.grid th{font-size:.85em;text-align:left}
.item{width:210px;font-size:.78em} .item img{display:block;width:192px;height:192px;object-fit:contain;
 background:#f4f4f4;image-rendering:auto;border:1px solid #ccc}
.item img.px{image-rendering:pixelated}
.ph{width:192px;height:192px;display:flex;align-items:center;justify-content:center;text-align:center;
 background:repeating-linear-gradient(45deg,#f6f6f6,#f6f6f6 8px,#ececec 8px,#ececec 16px);border:1px dashed #999;
 color:#333;font-size:.95em;padding:.3em;box-sizing:border-box;overflow:hidden}
.st{display:inline-block;border-radius:3px;padding:0 .35em;font-weight:600;color:#fff}
.st-ok{background:#009E73}.st-failed{background:#D55E00}.st-filtered{background:#E69F00;color:#000}
.st-missing{background:#777}
.ocr{font-family:"DejaVu Sans Mono",monospace;background:#f7f7f7;border:1px solid #e4e4e4;padding:.15em .3em;
 word-break:break-word;margin-top:.2em} .ok{color:#00734f} .bad{color:#b03a00} .miss{color:#777}
.worst{display:flex;flex-wrap:wrap;gap:.6em} .worst-item{width:140px;font-size:.75em}
.worst-item img{width:128px;height:128px;object-fit:contain;background:#f4f4f4;border:1px solid #ccc;display:block}
.na{color:#777;font-size:.8em;width:192px}
"""

JS = """
(function(){
  var sel=document.getElementById('cat-filter');
  function apply(){
    var v=sel.value, shown=0;
    document.querySelectorAll('section.prompt').forEach(function(s){
      var on = (v==='all' || s.getAttribute('data-category')===v);
      s.style.display = on ? '' : 'none';
      if(on){ shown += s.querySelectorAll('.item').length; }
    });
    document.getElementById('shown-count').textContent = shown;
  }
  sel.addEventListener('change', apply);
  apply();
})();
"""


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _nan(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def thumbnail_bytes(path: Path, size: int) -> tuple[bytes, int, int, int]:
    """JPEG thumbnail (long side <= size, never upscaled); returns (bytes, w, h, original long side)."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        orig = max(im.size)
        im.thumbnail((size, size), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=82, optimize=True)
        return buf.getvalue(), im.width, im.height, orig


def table_html(df, columns=None, noise: set[str] | None = None) -> str:
    if df is None or df.empty:
        return '<p class="muted">(no rows)</p>'
    rows, cols = T.display_frame(df, columns)
    out = ['<table class="t"><thead><tr>' + "".join(f"<th>{esc(c)}</th>" for c in cols) + "</tr></thead><tbody>"]
    for (_, src), r in zip(df.iterrows(), rows):
        cls = ' class="noise"' if noise and src.get("backend") in noise else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>")
    out.append("</tbody></table>")
    notes = df.attrs.get("footnotes") or []          # the reasons behind "- [k]" cells, one line away
    if notes:
        out.append('<p class="muted">' + "<br>".join(esc(n) for n in notes) + "</p>")
    return "".join(out)


def _ocr_details(data, scores, ocr_id: str | None) -> dict[tuple, dict]:
    """(backend, prompt_id, seed) -> {"text": raw OCR text, "targets": [(target, outcome)]} from detail files."""
    from ..scoring import _detail_path

    out: dict[tuple, dict] = {}
    if not ocr_id or scores.empty:
        return out
    runs = {n: p for n, p, _ in data.runs}
    s = scores[(scores.scorer_id == ocr_id) & scores["cache_key"].notna()].drop_duplicates(["backend", "prompt_id",
                                                                                             "seed"])
    for _, r in s.iterrows():
        p = _detail_path(Path(runs[r["run"]]), ocr_id, r["cache_key"])
        try:
            d = json.loads(p.read_text(encoding="utf-8"))["details"]
        except (OSError, ValueError, KeyError):
            continue
        eng = d.get("main_engine")
        per = d.get("per_engine", {}).get(eng) or next(iter(d.get("per_engine", {}).values()), {})
        text = per.get("raw_text")
        if text is None:
            text = " ".join(b.get("text", "") for b in d.get("boxes", []))
        out[(r["backend"], r["prompt_id"], r["seed"])] = {
            "text": text, "targets": [(t.get("target"), (t.get("lenient") or {}).get("outcome"))
                                      for t in d.get("targets", [])]}
    return out


def _item_scores(scores, ids) -> dict[tuple, dict]:
    """(backend, prompt_id, seed) -> {(metric, variant): (value, missing_reason)} for the primary scorers."""
    out: dict[tuple, dict] = {}
    if scores.empty:
        return out
    keep = {v for v in ids.values() if v}
    s = scores[scores.scorer_id.isin(keep)]
    for r in s.itertuples(index=False):
        out.setdefault((r.backend, r.prompt_id, r.seed), {})[(r.metric, r.variant)] = (r.value, r.missing_reason)
    return out


def _fmt_metric(metric: str, value: float) -> str:
    if metric in ("text_exact", "prompt_following"):
        return "yes" if value >= 0.5 else "no"
    if metric == "word_recall":
        return f"{100 * value:.0f}%"
    if metric == "clip_score":
        return f"{value:.1f}"
    return f"{value:.2f}"


def _anchor(backend: str, pid: str, seed) -> str:
    h = hashlib.sha1(f"{backend}|{pid}|{seed}".encode()).hexdigest()[:10]
    return f"i-{h}"


def write_html(data, tabs: dict[str, Any], paths: dict[str, list[Path]], out: Path, *, embed: str | bool = "auto",
               thumb_size: int = 192, worst_n: int = 12, progress: bool = True) -> Path:
    from tqdm.auto import tqdm

    rec = data.records
    n_images = int((rec["status"] == "ok").sum()) if len(rec) else 0
    embedded = (n_images <= EMBED_MAX_ITEMS) if embed == "auto" else bool(embed)
    choice = tabs["_choice"]          # each backend's headline scorer identities (report.tables.backend_scorers)
    noise = set(data.noise_backends)
    chosen = data.scores
    if not chosen.empty:
        chosen = chosen[[choice.get((b, k)) == i for b, k, i in zip(chosen["backend"], chosen["scorer"],
                                                                     chosen["scorer_id"])]]
    scores = _item_scores(chosen, {i: i for i in set(choice.values())})
    ocr: dict[tuple, dict] = {}
    for oid in sorted({i for (b, k), i in choice.items() if k == "ocr"}):
        ocr.update(_ocr_details(data, chosen[chosen.scorer_id == oid], oid))
    backends = list(data.backends)

    # thumbnails
    thumbs: dict[tuple, tuple[str, int, int, bool]] = {}
    tdir = out / "thumbs"
    ok = rec[rec["status"] == "ok"] if len(rec) else rec
    bar = tqdm(total=len(ok), desc="report thumbnails", unit="img", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    try:
        for r in ok.itertuples(index=False):
            src = Path(r.run_dir) / r.image
            key = (r.backend, r.prompt_id, r.seed)
            try:
                data_bytes, w, h, orig = thumbnail_bytes(src, thumb_size)
            except OSError:
                bar.update(1)
                continue
            if embedded:
                url = _data_uri(data_bytes, "image/jpeg")
            else:
                name = f"{hashlib.sha1(str(src).encode()).hexdigest()[:16]}.jpg"
                atomic_write_bytes(tdir / name, data_bytes)
                url = f"thumbs/{name}"
            thumbs[key] = (url, w, h, orig < thumb_size)
            bar.update(1)
    finally:
        bar.close()

    def item_html(r) -> str:
        key = (r["backend"], r["prompt_id"], r["seed"])
        status = r["status"]
        parts = [f'<div class="item" id="{_anchor(*key)}" data-backend="{esc(r["backend"])}" '
                 f'data-status="{esc(status)}">']
        if status == "ok" and key in thumbs:
            url, w, h, small = thumbs[key]
            full = os.path.relpath(Path(r["run_dir"]) / r["image"], out)
            parts.append(f'<a href="{esc(Path(full).as_posix())}"><img src="{esc(url)}" loading="lazy" '
                         f'decoding="async" width="{w}" height="{h}" class="{"px" if small else ""}" '
                         f'alt="{esc(r["backend"])} {esc(r["prompt_id"])} seed {esc(r["seed"])}"></a>')
        else:
            msg = {"failed": "generation failed", "filtered": "refused by the service's filter",
                   "missing": "not generated yet"}.get(status, "image unreadable")
            err = r.get("error")
            parts.append(f'<div class="ph"><div><b>{esc(status)}</b><br>{esc(msg)}'
                         + (f'<br><span class="small">{esc(str(err)[:200])}</span>' if not _nan(err) else "")
                         + "</div></div>")
        parts.append(f'<div><span class="st st-{esc(status)}">{esc(status)}</span> <b>{esc(r["backend"])}</b>'
                     + (' <span class="bad">(noise)</span>' if r["backend"] in noise else "")
                     + (f' <span class="muted">{r.get("latency_s"):.3f} s</span>'
                        if not _nan(r.get("latency_s")) else "") + "</div>")
        vals = scores.get(key, {})
        lines, missing = [], {}
        for metric, variant, title in ITEM_METRICS:
            if (metric, variant) not in vals:
                continue
            v, reason = vals[(metric, variant)]
            if _nan(v):
                missing.setdefault(str(reason), []).append(title)
            else:
                good = (v >= 0.5) if metric in ("text_exact", "prompt_following") else None
                cls = "" if good is None else (' class="ok"' if good else ' class="bad"')
                lines.append(f'<span{cls} data-metric="{esc(metric)}">{esc(title)}: {esc(_fmt_metric(metric, v))}'
                             "</span>")
        for reason, titles in missing.items():   # one line per reason, the full reason on hover
            lines.append(f'<span class="miss" title="{esc(reason)}">{esc(", ".join(titles))}: missing'
                         f' ({esc(T.short_reason(reason, 48))})</span>')
        if lines:
            parts.append("<div>" + "<br>".join(lines) + "</div>")
        o = ocr.get(key)
        if o is not None:
            parts.append(f'<div class="ocr" title="OCR text ({esc(choice.get((key[0], "ocr")))})">OCR: '
                         f'{esc(o["text"]) if o["text"] else "<i>(no text read)</i>"}</div>')
        parts.append("</div>")
        return "".join(parts)

    # gallery rows: prompt -> seed -> backend
    by_key = {(r["backend"], r["prompt_id"], r["seed"]): r for _, r in rec.iterrows()} if len(rec) else {}
    cats = sorted({p.category for p in data.prompts.values()})
    gallery = []
    n_items = 0
    for pid, p in data.prompts.items():
        present = [b for b in backends if any((b, pid, s) in by_key for s in data.seeds)]
        seeds = sorted({k[2] for k in by_key if k[1] == pid and not _nan(k[2])}) or data.seeds
        if not present:
            continue
        head = (f'<section class="prompt" id="p-{esc(pid)}" data-category="{esc(p.category)}">'
                f'<h3>{esc(pid)}<span class="cat">{esc(p.category)}</span></h3><div>{esc(p.prompt)}</div>')
        if p.target_text:
            head += f'<div class="small">target text: {" / ".join("<b>" + esc(t) + "</b>" for t in p.target_text)}</div>'
        if p.negatives:
            head += ('<details class="small"><summary>hard negatives (' + str(len(p.negatives)) + ')</summary><ul>'
                     + "".join(f"<li>{esc(n)}</li>" for n in p.negatives) + "</ul></details>")
        rows = ['<table class="grid"><tr><th>seed</th>' + "".join(
            f'<th>{esc(b)}{" (noise)" if b in noise else ""}</th>' for b in backends) + "</tr>"]
        for s in seeds:
            cells = []
            for b in backends:
                r = by_key.get((b, pid, s))
                if r is None:
                    cells.append('<td><div class="na">not planned for this backend'
                                 + (" (it skips prompts without target text)" if data.backends[b].name == "reference"
                                    else "") + "</div></td>")
                else:
                    n_items += 1
                    cells.append(f"<td>{item_html(r)}</td>")
            rows.append(f"<tr><th>{esc(s)}</th>" + "".join(cells) + "</tr>")
        gallery.append(head + "".join(rows) + "</table></section>")

    # worst items
    worst = []
    for metric, variant, title in WORST_METRICS:
        s = chosen
        if s.empty:
            continue
        # only items below perfect: a list of perfect items would call them the worst
        perfect = 100.0 if metric == "clip_score" else 1.0
        s = s[(s.metric == metric) & (s.variant == variant) & s.value.notna() & (s.value < perfect)]
        if s.empty:
            continue
        s = s.sort_values(["value", "backend", "prompt_id", "seed"]).head(worst_n)
        cards = []
        for r in s.itertuples(index=False):
            key = (r.backend, r.prompt_id, r.seed)
            t = thumbs.get(key)
            img = (f'<img src="{esc(t[0])}" loading="lazy" decoding="async" alt="{esc(r.backend)} {esc(r.prompt_id)}"'
                   f' class="{"px" if t[3] else ""}">' if t else '<div class="ph">no image</div>')
            cards.append(f'<div class="worst-item"><a href="#{_anchor(*key)}">{img}</a>{esc(r.backend)}'
                         f'{" (noise)" if r.backend in noise else ""}<br>{esc(r.prompt_id)} s{esc(r.seed)}<br>'
                         f'<b>{esc(_fmt_metric(metric, r.value))}</b></div>')
        worst.append(f"<h3>{esc(title)}: lowest {len(cards)}</h3><div class=\"worst\">{''.join(cards)}</div>")

    # charts
    charts = []
    for k, ps in paths.items():
        if not k.startswith("chart:"):
            continue
        png = next((p for p in ps if p.suffix == ".png"), None)
        svg = next((p for p in ps if p.suffix == ".svg"), None)
        if png is None:
            continue
        charts.append(f'<figure><img src="{_data_uri(png.read_bytes(), "image/png")}" alt="{esc(k[6:])}">'
                      f'<figcaption>{esc(k[6:])} (<a href="{esc(os.path.relpath(svg, out))}">SVG</a>)</figcaption></figure>')

    title = "evalsuite report: " + ", ".join(n for n, _, _ in data.runs)
    body = [f"<h1>{esc(title)}</h1>", f'<p class="muted small">{esc(_runs_text(data))}</p>']
    if noise:
        body.append(f'<div class="banner"><b>{esc(", ".join(sorted(noise)))}</b>: random-weight miniature model(s). '
                    "Their images are noise and their numbers are noise, not quality: they test the plumbing only.</div>")
    if data.notes:
        body.append('<div class="notes"><b>Comparing several runs</b><ul>'
                    + "".join(f"<li>{esc(n)}</li>" for n in data.notes) + "</ul></div>")
    body.append('<nav class="toc small"><a href="#tables">tables</a><a href="#charts">charts</a>'
                '<a href="#gallery">gallery</a><a href="#worst">worst items</a></nav>')
    body.append('<h2 id="tables">Tables</h2>')
    for name, heading, cols in (
        ("prompt_following", "Prompt following", ["backend", "accurate", "n_prompts", "scored/planned", "model",
                                                         "note"]),
        ("text", "Text in images", ["backend", "verdict", "text accuracy", "strict", "garbled targets", "ceiling",
                                    "n_prompts", "scored/planned", "engine", "note"]),
        ("protocols", "Published text protocols (our OCR, their normalisation and formulas)", None),
        ("speed", "Speed (warm-up excluded; never compare timings across hardware)", None),
        ("summary", "Summary per backend (95% CIs over prompts; items scored/planned)", None),
        ("failures", "Failures and missing metrics", None),
    ):
        df = tabs[name]
        body.append(f"<h3>{esc(heading)}</h3>" + table_html(df, cols if not df.empty else None, noise))
    cat = tabs["categories"]
    for metric, variant, t in T.HEADLINE:
        pv = T.category_pivot(cat, metric, variant)
        if pv is not None:
            pv.attrs["footnotes"] = cat.attrs.get("footnotes", [])
            body.append(f"<h3>{esc(t)} by category</h3>" + table_html(pv, None, noise))
    body.append('<details><summary>every metric per backend</summary>'
                + table_html(tabs["metrics"], ["backend", "scorer", "model", "metric", "variant", "value", "n_prompts",
                                               "n_items", "n_missing", "coverage", "note"], noise) + "</details>")
    body.append('<h2 id="charts">Charts</h2><div class="charts">' + "".join(charts) + "</div>")
    opts = "".join(f'<option value="{esc(c)}">{esc(c)}</option>' for c in cats)
    body.append(f'<h2 id="gallery">Gallery</h2><div class="filter">category: <select id="cat-filter">'
                f'<option value="all">all</option>{opts}</select> <span class="small"><span id="shown-count">'
                f'{n_items}</span> of <span id="total-count">{n_items}</span> items shown; same seed side by side; '
                f'thumbnails link to the full images</span></div>')
    body += gallery
    body.append('<h2 id="worst">Worst items per metric</h2>' + ("".join(worst) or '<p class="muted">no scores</p>'))
    doc = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
           "<link rel=\"icon\" href=\"data:,\">"
           f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
           + "\n".join(body) + f"<script>{JS}</script></body></html>\n")
    path = out / "report.html"
    atomic_write_text(path, doc)
    return path


def _runs_text(data) -> str:
    parts = []
    for name, path, info in data.runs:
        parts.append(f"{name}: prompt set {info.prompt_set.get('name')} ({len(data.prompts)} prompts compared), "
                     f"seeds {info.seeds}, backends {', '.join(info.backends)}, hardware "
                     f"{info.environment.get('hardware')}, updated {info.updated}")
    return " | ".join(parts)
