"""A small self-contained HTML page for a paired comparison: the verdict table, the delta chart and the
most regressed prompts side by side (baseline vs candidate thumbnails embedded as data URIs)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any, Mapping

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;font-size:13px}
th{background:#f2f2f2;text-align:left} .verdict td:first-child{white-space:nowrap}
.verdict td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.verdict h2{font-size:1.15em;margin:1.2em 0 .3em;border-bottom:2px solid #0072B2}
.verdict p{margin:.3em 0;font-size:13px;overflow-wrap:anywhere}
img{image-rendering:pixelated;border:1px solid #999}
.fail{color:#b22222;font-weight:bold}.pass{color:#2a7d2a;font-weight:bold}.inconclusive{color:#a06b00;font-weight:bold}
.note{color:#666;font-size:12px}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _fmt(x, nd=2) -> str:
    if x is None:
        return "-"
    try:
        return f"{x:+.{nd}f}"
    except (TypeError, ValueError):
        return _esc(x)


def _decision_class(cell: str) -> str:
    low = cell.lower()
    for d in ("fail", "pass", "inconclusive"):
        if low.startswith(d):
            return d
    return ""


def _cell(c: str) -> str:
    c = c.strip()
    num = c[:1] in "+-0123456789[" and any(ch.isdigit() for ch in c) and " " not in c.replace(", ", ",")
    cls = _decision_class(c) or ("num" if num else "")
    return f"<td class='{cls}'>{_esc(c)}</td>" if cls else f"<td>{_esc(c)}</td>"


def verdict_html(markdown: str) -> str:
    """The verdict (compare.md's Markdown) as HTML: its tables as tables, headings as headings, each other
    line a paragraph; nothing is clipped (cells wrap, the page scrolls)."""
    out, table = ["<div class='verdict'>"], []

    def flush():
        if not table:
            return
        header, *rows = table
        out.append("<table><tr>" + "".join(f"<th>{_esc(h.strip())}</th>" for h in header) + "</tr>"
                   + "".join("<tr>" + "".join(_cell(c) for c in r) + "</tr>" for r in rows) + "</table>")
        table.clear()

    for line in markdown.splitlines():
        s = line.strip()
        if s.startswith("|") and s.endswith("|"):
            if set(s) <= set("|-: "):
                continue   # the separator row
            table.append(s[1:-1].split(" | "))
            continue
        flush()
        if not s or s.startswith("# ") or (s.startswith("baseline `") and len(out) == 1):
            continue   # the page has its own title and run line
        if s.startswith("## "):
            out.append(f"<h2>{_esc(s[3:])}</h2>")
        elif s.startswith("**") and s.endswith("**"):
            body = s[2:-2]
            out.append(f"<p><b class='{_decision_class(body.removeprefix('verdict: '))}'>{_esc(body)}</b></p>")
        else:
            out.append(f"<p>{_esc(s.replace('`', ''))}</p>")
    flush()
    out.append("</div>")
    return "\n".join(out)


def regressed_html(result: Mapping[str, Any], chart_png: bytes | None = None) -> str:
    from .compare import format_verdict, thumbnail_data_uri

    v = result["verdict"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>evalsuite compare: {_esc(v['decision'])}</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>Paired comparison: <span class='{_esc(v['decision'])}'>{_esc(v['decision'].upper())}</span></h1>",
             f"<p>baseline <code>{_esc(result['baseline']['run'])}</code> &rarr; candidate "
             f"<code>{_esc(result['candidate']['run'])}</code><br>{_esc(v['reason'])}</p>",
             verdict_html(format_verdict(result, md=True))]
    if chart_png:
        parts.append(f"<img alt='paired deltas' style='image-rendering:auto;border:0' "
                     f"src='data:image/png;base64,{base64.b64encode(chart_png).decode()}'>")
    broot, croot = Path(result["baseline"]["run"]), Path(result["candidate"]["run"])
    for pr in result["pairs"]:
        parts.append(f"<h2>Most regressed prompts: {_esc(pr['baseline_backend'])} &rarr; {_esc(pr['candidate_backend'])}</h2>")
        if pr["labelled_noise"]:
            parts.append("<p class='note'>random-weight miniature model: its images are noise</p>")
        parts.append("<p class='note'>worst first: hard-gate failures, then the lowest per-prompt delta relative to its "
                     "margin, then the lowest PSNR; one seed shown per prompt</p>")
        parts.append("<table><tr><th>prompt</th><th>baseline</th><th>candidate</th><th>deltas (candidate - baseline)</th></tr>")
        for r in pr["regressed"]:
            bimg = thumbnail_data_uri(broot / r["baseline_image"]) if r.get("baseline_image") else None
            cimg = thumbnail_data_uri(croot / r["candidate_image"]) if r.get("candidate_image") else None
            cell = lambda uri: f"<img src='{uri}'>" if uri else "<i>no image</i>"  # noqa: E731
            ds = "<br>".join(f"{_esc(m)}: {_fmt(d)}" for m, d in r["deltas"].items())
            if r.get("psnr") is not None:
                ds += f"<br>PSNR {r['psnr']:.1f} dB"
            if r.get("gate"):
                ds = f"<span class='fail'>hard gate: {_esc(r['gate'])}</span><br>" + ds
            parts.append(f"<tr><td>{_esc(r['prompt_id'])}<br>seed {_esc(r.get('seed'))}</td><td>{cell(bimg)}</td>"
                         f"<td>{cell(cimg)}</td><td>{ds}</td></tr>")
        parts.append("</table>")
        if pr["unmatched"]:
            parts.append(f"<h3>Unmatched items ({len(pr['unmatched'])})</h3><table><tr><th>side</th><th>prompt</th>"
                         "<th>seed</th><th>reason</th></tr>")
            for u in pr["unmatched"]:
                parts.append(f"<tr><td>{_esc(u['side'])}</td><td>{_esc(u['prompt_id'])}</td><td>{_esc(u['seed'])}</td>"
                             f"<td>{_esc(u['reason'])}</td></tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
