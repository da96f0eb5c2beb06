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
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store import atomic_write_bytes, atomic_write_text
from ..metrics import registry as R
from . import tables as T

EMBED_MAX_ITEMS = 400
ITEM_METRICS = tuple((m, v, R.info(m).short) for m, v in (
    ("text_exact", "lenient"), ("text_similarity", "lenient"), ("word_recall", "lenient"), ("clip_score", ""),
    ("prompt_following", ""), ("vqa_score", ""), ("question_score", ""), ("prompt_following_vqa", "")))
WORST_METRICS = (("text_similarity", "lenient", R.info("text_similarity").short + " (lenient)"),
                 ("clip_score", "", R.info("clip_score").short),
                 ("prompt_following", "", R.info("prompt_following").short
                  + " (0 = a negative ranked at or above the prompt)"))

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;
 padding:0 1.2em 3em;color:#1a1a1a;background:#fff;line-height:1.4}
.narrow{max-width:1400px}
h1{font-size:1.6em;margin:.8em 0 .2em} h2{border-bottom:2px solid #0072B2;padding-bottom:.2em;margin-top:1.8em}
h3{margin:.2em 0} .muted{color:#555} .small{font-size:.85em}
.banner{background:#fff3cd;border:1px solid #e0b000;padding:.6em .9em;margin:.8em 0;border-radius:4px}
.notes{background:#eef5fb;border:1px solid #9cc3e0;padding:.4em .9em;border-radius:4px}
table.t{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}
table.t th,table.t td{border:1px solid #ccc;padding:.25em .55em;text-align:left;vertical-align:top}
table.t th{background:#f2f2f2} table.t tr.noise td{background:#fffaf0}
.charts{display:flex;flex-wrap:wrap;gap:1em} .charts figure{margin:0;border:1px solid #ddd;padding:.4em;background:#fff}
.charts img{max-width:100%;height:auto;display:block} figcaption{font-size:.8em;color:#555}
nav.toc a{margin-right:1em} .filter{position:sticky;top:0;background:#fff;padding:.5em 0;z-index:2;border-bottom:1px solid #ddd;
 display:flex;flex-wrap:wrap;gap:.4em 1.2em;align-items:center}
.filter label{white-space:nowrap} .filter input[type=search]{min-width:16em}
section.prompt{border:1px solid #ddd;border-radius:6px;padding:.6em .8em;margin:1em 0;display:grid;
 grid-template-columns:minmax(14em,22em) 1fr;gap:.4em 1.2em;align-items:start}
section.prompt .phead{min-width:0} section.prompt .pgrid{min-width:0;overflow-x:auto}
@media (max-width:900px){section.prompt{grid-template-columns:1fr}}
.cat{display:inline-block;background:#e8e8e8;border-radius:3px;padding:0 .4em;font-size:.8em;margin-left:.4em}
table.grid{border-collapse:collapse;width:100%;table-layout:fixed} table.grid td,table.grid th{padding:.3em;
 vertical-align:top;border-top:1px solid #eee} table.grid th{font-size:.85em;text-align:left}
table.grid th.seed{width:3.2em}
.item{font-size:.78em;min-width:0} .item img{display:block;width:100%;max-width:320px;height:auto;aspect-ratio:1/1;
 object-fit:contain;background:#f4f4f4;image-rendering:auto;border:1px solid #ccc}
.item img.px{image-rendering:pixelated}
.ph{width:100%;max-width:320px;aspect-ratio:1/1;display:flex;align-items:center;justify-content:center;text-align:center;
 background:repeating-linear-gradient(45deg,#f6f6f6,#f6f6f6 8px,#ececec 8px,#ececec 16px);border:1px dashed #999;
 color:#333;font-size:.95em;padding:.3em;box-sizing:border-box;overflow:hidden}
.st{display:inline-block;border-radius:3px;padding:0 .35em;font-weight:600;color:#fff}
.st-ok{background:#009E73}.st-failed{background:#D55E00}.st-filtered{background:#E69F00;color:#000}
.st-missing{background:#777}
.ocr{font-family:"DejaVu Sans Mono",monospace;background:#f7f7f7;border:1px solid #e4e4e4;padding:.15em .3em;
 word-break:break-word;margin-top:.2em} .ok{color:#00734f} .bad{color:#b03a00} .miss{color:#777}
.qs ul{margin:.2em 0 0;padding-left:1.1em} .qs li{margin:.05em 0}
.worst{display:flex;flex-wrap:wrap;gap:.6em} .worst-item{width:140px;font-size:.75em}
.worst-item img{width:128px;height:128px;object-fit:contain;background:#f4f4f4;border:1px solid #ccc;display:block}
.na{color:#777;font-size:.8em}
"""

JS = """
(function(){
  function el(id){ return document.getElementById(id); }
  var cat=el('cat-filter'), be=el('backend-filter'), st=el('status-filter'), fail=el('failures-only'),
      q=el('search'), sort=el('sort-by'), box=el('gallery-items');
  var sections=Array.prototype.slice.call(document.querySelectorAll('section.prompt'));
  function itemOn(s, i, text){
    if(be.value!=='all' && i.getAttribute('data-backend')!==be.value) return false;
    if(st.value!=='all' && i.getAttribute('data-status')!==st.value) return false;
    if(fail.checked && i.getAttribute('data-fail')!=='1') return false;
    if(text && s.getAttribute('data-search').indexOf(text)<0 && i.textContent.toLowerCase().indexOf(text)<0) return false;
    return true;
  }
  function apply(){
    var shown=0, text=q.value.trim().toLowerCase();
    document.querySelectorAll('[data-col]').forEach(function(c){
      c.style.display=(be.value==='all' || c.getAttribute('data-col')===be.value) ? '' : 'none';
    });
    sections.forEach(function(s){
      var catOn=(cat.value==='all' || s.getAttribute('data-category')===cat.value), n=0;
      s.querySelectorAll('tr.seedrow').forEach(function(r){
        var m=0;
        r.querySelectorAll('.item').forEach(function(i){
          var on=catOn && itemOn(s, i, text);
          i.style.display=on ? '' : 'none';
          if(on){ m++; }
        });
        r.style.display=m ? '' : 'none';
        n+=m;
      });
      s.style.display=n ? '' : 'none';
      shown+=n;
    });
    el('shown-count').textContent=shown;
  }
  function key(s){
    var v=sort.value;
    if(v==='order') return [parseInt(s.getAttribute('data-order'),10)];
    if(v==='id') return [s.getAttribute('data-id')];
    var parts=v.split(':'), attr='data-m-'+parts[0], vals=[];
    s.querySelectorAll('.item').forEach(function(i){
      if(be.value!=='all' && i.getAttribute('data-backend')!==be.value) return;
      var x=i.getAttribute(attr);
      if(x!==null && x!=='') vals.push(parseFloat(x));
    });
    if(!vals.length) return [null];
    var mean=vals.reduce(function(a,b){return a+b;},0)/vals.length;
    return [parts[1]==='desc' ? -mean : mean];
  }
  function resort(){
    var keyed=sections.map(function(s, i){ return [key(s)[0], i, s]; });
    keyed.sort(function(a, b){
      if(a[0]===b[0]) return a[1]-b[1];
      if(a[0]===null) return 1;
      if(b[0]===null) return -1;
      return a[0]<b[0] ? -1 : 1;
    });
    keyed.forEach(function(k){ box.appendChild(k[2]); });
  }
  [cat, be, st, fail].forEach(function(x){ x.addEventListener('change', apply); });
  q.addEventListener('input', apply);
  sort.addEventListener('change', function(){ resort(); apply(); });
  be.addEventListener('change', function(){ if(sort.value.indexOf(':')>0){ resort(); } });
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


def _stored_details(data, scores, scorer_id: str | None):
    """((backend, prompt_id, seed), the scorer's `details` dict) of every scored item with a readable detail file."""
    from ..store import ScoreStore

    if not scorer_id or scores.empty:
        return
    runs = {n: p for n, p, _ in data.runs}
    s = scores[(scores.scorer_id == scorer_id) & scores["cache_key"].notna()].drop_duplicates(
        ["backend", "prompt_id", "seed"])
    for _, r in s.iterrows():
        stored = ScoreStore(runs[r["run"]]).read_detail(scorer_id, r["cache_key"])
        d = stored.get("details") if isinstance(stored, dict) else None
        if isinstance(d, dict):
            yield (r["backend"], r["prompt_id"], r["seed"]), d


def _ocr_details(data, scores, ocr_id: str | None) -> dict[tuple, dict]:
    """(backend, prompt_id, seed) -> {"text": raw OCR text, "targets": [(target, outcome)]} from detail files."""
    out: dict[tuple, dict] = {}
    for key, d in _stored_details(data, scores, ocr_id):
        eng = d.get("main_engine")
        per = d.get("per_engine", {}).get(eng) or next(iter(d.get("per_engine", {}).values()), {})
        text = per.get("raw_text")
        if text is None:
            text = " ".join(b.get("text", "") for b in d.get("boxes", []))
        out[key] = {"text": text, "targets": [(t.get("target"), (t.get("lenient") or {}).get("outcome"))
                                             for t in d.get("targets", [])]}
    return out


def _vqa_details(data, scores, vqa_id: str | None) -> dict[tuple, list[dict]]:
    """(backend, prompt_id, seed) -> the judge's answers to the prompt's atomic questions (vqa detail files)."""
    return {key: d["questions"] for key, d in _stored_details(data, scores, vqa_id) if d.get("questions")}


def _questions_html(questions: list[dict], judge: str | None) -> str:
    """Each atomic question with the judge's yes/no and P(yes); a gated one (its parent answered no) says so."""
    lines = []
    for q in questions:
        ans, p = q.get("answer"), q.get("p_yes")
        cls = "miss" if ans is None else ("ok" if q.get("score") == 1.0 else "bad")
        said = "no answer" if ans is None else f"{ans} (p={p:.2f})"
        gated = " [gated: a parent is no]" if q.get("gated") and ans == "yes" else ""
        lines.append(f'<li class="{cls}" title="{esc(q.get("category"))}">{esc(q.get("text"))}: '
                     f"<b>{esc(said)}</b>{esc(gated)}</li>")
    n_yes = sum(q.get("score") == 1.0 for q in questions)
    return (f'<details class="small qs" open><summary title="judge: {esc(judge)}">questions: {n_yes}/{len(questions)} '
            f"yes</summary><ul>" + "".join(lines) + "</ul></details>")


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
    """An item card's value, from the metric registry: a verdict as yes/no, a rate in percent, points to one
    decimal, anything else to two."""
    info = R.info(metric)
    if info.verdict:
        return "yes" if value >= 0.5 else "no"
    if info.is_rate:
        return f"{100 * value:.0f}%"
    if info.unit == "points":
        return f"{value:.1f}"
    return f"{value:.2f}"


def _screen_size(png: Path) -> str:
    """width/height attributes showing a 300 dpi chart at about screen size (110 px per inch), not 3x larger."""
    from PIL import Image

    from .charts import PNG_DPI

    try:
        with Image.open(png) as im:
            w, h = im.size
    except OSError:
        return ""
    return f' width="{round(w * 110 / PNG_DPI)}" height="{round(h * 110 / PNG_DPI)}"'


def _is_failure(status: str, vals: dict) -> bool:
    """For the gallery's failures view: the image failed or was filtered, its text is not exact, or a hard
    negative ranked at or above its prompt."""
    if status != "ok":
        return True
    for metric in ("text_exact", "prompt_following"):
        for (m, _), (v, _) in vals.items():
            if m == metric and not _nan(v) and v < 0.5:
                return True
    return False


def _anchor(backend: str, pid: str, seed) -> str:
    h = hashlib.sha1(f"{backend}|{pid}|{seed}".encode()).hexdigest()[:10]
    return f"i-{h}"


def write_html(data, tabs: dict[str, Any], paths: dict[str, list[Path]], out: Path, *, embed: str | bool = "auto",
               thumb_size: int = 192, worst_n: int = 12, progress: bool = True) -> Path:
    rec = data.records
    n_images = int((rec["status"] == "ok").sum()) if len(rec) else 0
    embedded = (n_images <= EMBED_MAX_ITEMS) if embed == "auto" else bool(embed)
    choice = tabs["_choice"]          # each backend's headline scorer identities (report.tables.backend_scorers)
    noise = set(data.noise_backends)
    chosen = data.scores
    if not chosen.empty:
        chosen = chosen[[choice.get((b, k)) == i for b, k, i in zip(chosen["backend"], chosen["scorer"],
                                                                     chosen["scorer_id"])]]
    ocr: dict[tuple, dict] = {}
    for oid in sorted({i for (b, k), i in choice.items() if k == "ocr"}):
        ocr.update(_ocr_details(data, chosen[chosen.scorer_id == oid], oid))
    questions: dict[tuple, list[dict]] = {}
    for vid in sorted({i for (b, k), i in choice.items() if k == "vqa"}):
        questions.update(_vqa_details(data, chosen[chosen.scorer_id == vid], vid))
    backends = list(data.backends)

    ok = rec[rec["status"] == "ok"] if len(rec) else rec
    thumbs = _thumbnails(ok, out, thumb_size, embedded, progress)
    page = _Page(scores=_item_scores(chosen, {i: i for i in set(choice.values())}), thumbs=thumbs, ocr=ocr,
                 noise=noise, choice=choice, out=out, questions=questions)
    gallery, n_items = _gallery(data, rec, backends, page)
    cats = sorted({p.category for p in data.prompts.values()})

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
    body += _tables_html(tabs, noise)
    body.append('<h2 id="charts">Charts</h2><div class="charts">' + "".join(_charts_html(paths, out)) + "</div>")
    body.append(_gallery_filter(rec, cats, backends, n_items))
    body.append('<div id="gallery-items">' + "".join(gallery) + "</div>")
    worst = _worst_html(chosen, thumbs, noise, worst_n)
    body.append('<h2 id="worst">Worst items per metric</h2>' + ("".join(worst) or '<p class="muted">no scores</p>'))
    doc = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
           "<link rel=\"icon\" href=\"data:,\">"
           f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
           + "\n".join(body) + f"<script>{JS}</script></body></html>\n")
    path = out / "report.html"
    atomic_write_text(path, doc)
    return path




@dataclass
class _Page:
    """What every item card of one report reads."""

    scores: dict
    thumbs: dict
    ocr: dict
    noise: set
    choice: dict
    out: Path
    questions: dict = field(default_factory=dict)


def _thumbnails(ok, out: Path, thumb_size: int, embedded: bool, progress: bool) -> dict[tuple, tuple]:
    """(backend, prompt_id, seed) -> (url, width, height, smaller than the thumbnail size) for each ok image."""
    from tqdm.auto import tqdm

    thumbs: dict[tuple, tuple[str, int, int, bool]] = {}
    tdir = out / "thumbs"
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
    return thumbs


def _item_html(r, page: _Page) -> str:
    scores, thumbs, ocr, noise, choice, out = page.scores, page.thumbs, page.ocr, page.noise, page.choice, page.out
    key = (r["backend"], r["prompt_id"], r["seed"])
    status = r["status"]
    vals = scores.get(key, {})
    metric_attrs = "".join(f' data-m-{esc(m)}="{float(vals[(m, v)][0]):.6g}"' for m, v, _ in ITEM_METRICS
                           if (m, v) in vals and not _nan(vals[(m, v)][0]))
    parts = [f'<div class="item" id="{_anchor(*key)}" data-backend="{esc(r["backend"])}" '
             f'data-status="{esc(status)}" data-fail="{"1" if _is_failure(status, vals) else "0"}"{metric_attrs}>']
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
    lines, missing = [], {}
    for metric, variant, title in ITEM_METRICS:
        if (metric, variant) not in vals:
            continue
        v, reason = vals[(metric, variant)]
        if _nan(v):
            missing.setdefault(str(reason), []).append(title)
        else:
            good = (v >= 0.5) if R.info(metric).verdict else None
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
    qs = page.questions.get(key)
    if qs:
        parts.append(_questions_html(qs, choice.get((key[0], "vqa"))))
    parts.append("</div>")
    return "".join(parts)


def _gallery(data, rec, backends: list[str], page: _Page) -> tuple[list[str], int]:
    """One section per prompt: a row per seed, a column per backend (same seed side by side)."""
    noise = page.noise
    by_key = {(r["backend"], r["prompt_id"], r["seed"]): r for _, r in rec.iterrows()} if len(rec) else {}
    gallery = []
    n_items = 0
    for pid, p in data.prompts.items():
        present = [b for b in backends if any((b, pid, s) in by_key for s in data.seeds)]
        seeds = sorted({k[2] for k in by_key if k[1] == pid and not _nan(k[2])}) or data.seeds
        if not present:
            continue
        search = " ".join([pid, p.prompt, *p.target_text, p.category]).lower()
        head = (f'<section class="prompt" id="p-{esc(pid)}" data-category="{esc(p.category)}" data-id="{esc(pid)}" '
                f'data-order="{len(gallery)}" data-search="{esc(search)}"><div class="phead">'
                f'<h3>{esc(pid)}<span class="cat">{esc(p.category)}</span></h3><div>{esc(p.prompt)}</div>')
        if p.target_text:
            head += f'<div class="small">target text: {" / ".join("<b>" + esc(t) + "</b>" for t in p.target_text)}</div>'
        if p.negatives:
            head += ('<details class="small"><summary>hard negatives (' + str(len(p.negatives)) + ')</summary><ul>'
                     + "".join(f"<li>{esc(n)}</li>" for n in p.negatives) + "</ul></details>")
        rows = ['</div><div class="pgrid"><table class="grid"><tr><th class="seed">seed</th>' + "".join(
            f'<th data-col="{esc(b)}">{esc(b)}{" (noise)" if b in noise else ""}</th>' for b in backends) + "</tr>"]
        for s in seeds:
            cells = []
            for b in backends:
                r = by_key.get((b, pid, s))
                if r is None:
                    cells.append(f'<td data-col="{esc(b)}"><div class="na">not planned for this backend'
                                 + (" (it skips prompts without target text)" if data.backends[b].name == "reference"
                                    else "") + "</div></td>")
                else:
                    n_items += 1
                    cells.append(f'<td data-col="{esc(b)}">{_item_html(r, page)}</td>')
            rows.append(f'<tr class="seedrow"><th class="seed">{esc(s)}</th>' + "".join(cells) + "</tr>")
        gallery.append(head + "".join(rows) + "</table></div></section>")
    return gallery, n_items


def _worst_html(chosen, thumbs: dict, noise: set, worst_n: int) -> list[str]:
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
    return worst


def _charts_html(paths: dict[str, list[Path]], out: Path) -> list[str]:
    charts = []
    for k, ps in paths.items():
        if not k.startswith("chart:"):
            continue
        png = next((p for p in ps if p.suffix == ".png"), None)
        svg = next((p for p in ps if p.suffix == ".svg"), None)
        if png is None:
            continue
        charts.append(f'<figure><img src="{_data_uri(png.read_bytes(), "image/png")}" alt="{esc(k[6:])}"{_screen_size(png)}>'
                      f'<figcaption>{esc(k[6:])} (<a href="{esc(os.path.relpath(svg, out))}">SVG</a>)</figcaption></figure>')
    return charts


def _tables_html(tabs: dict[str, Any], noise: set) -> list[str]:
    body: list[str] = []
    body.append('<h2 id="tables">Tables</h2>')
    for name, heading, cols in (
        ("prompt_following", "Prompt following", ["backend", "accurate", "n_prompts", "scored/planned", "model",
                                                         "note"]),
        ("vqa", "Prompt following judged by a VLM (VQAScore; atomic questions, dependency-gated)", T.VQA_MAIN),
        ("vqa_categories", "Question accuracy (%) by question category (VQA judge)", None),
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
    return body


def _gallery_filter(rec, cats: list[str], backends: list[str], n_items: int) -> str:
    def options(values):
        return '<option value="all">all</option>' + "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)

    statuses = [s for s in ("ok", "failed", "filtered", "missing") if len(rec) and (rec["status"] == s).any()]
    sorts = '<option value="order">prompt set order</option><option value="id">prompt id</option>' + "".join(
        f'<option value="{esc(m)}:{d}">{esc(t)}, {"lowest" if d == "asc" else "highest"} first</option>'
        for m, _, t in ITEM_METRICS for d in ("asc", "desc"))
    return ('<h2 id="gallery">Gallery</h2><div class="filter">'
            f'<label>category <select id="cat-filter">{options(cats)}</select></label>'
            f'<label>backend <select id="backend-filter">{options(backends)}</select></label>'
            f'<label>status <select id="status-filter">{options(statuses)}</select></label>'
            '<label title="failed or filtered images, text not exact, or a negative ranked at or above the prompt">'
            '<input type="checkbox" id="failures-only"> failures only</label>'
            '<label>search <input type="search" id="search" placeholder="prompt, id, target or OCR text"></label>'
            f'<label>sort <select id="sort-by">{sorts}</select></label>'
            f'<span class="small"><span id="shown-count">{n_items}</span> of <span id="total-count">{n_items}'
            '</span> items shown; same seed side by side; thumbnails link to the full images</span></div>')


def _runs_text(data) -> str:
    parts = []
    for name, path, info in data.runs:
        parts.append(f"{name}: prompt set {info.prompt_set.get('name')} ({len(data.prompts)} prompts compared), "
                     f"seeds {info.seeds}, backends {', '.join(info.backends)}, hardware "
                     f"{info.environment.get('hardware')}, updated {info.updated}")
    return " | ".join(parts)
