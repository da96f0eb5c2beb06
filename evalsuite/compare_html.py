"""A small self-contained HTML page for a paired comparison: the verdict table, the delta chart and the
most regressed prompts side by side (baseline vs candidate thumbnails embedded as data URIs)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any, Mapping

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1100px}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:12px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;font-size:13px}
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


def regressed_html(result: Mapping[str, Any], chart_png: bytes | None = None) -> str:
    from .compare import format_verdict, thumbnail_data_uri

    v = result["verdict"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>evalsuite compare: {_esc(v['decision'])}</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>Paired comparison: <span class='{_esc(v['decision'])}'>{_esc(v['decision'].upper())}</span></h1>",
             f"<p>baseline <code>{_esc(result['baseline']['run'])}</code> &rarr; candidate "
             f"<code>{_esc(result['candidate']['run'])}</code><br>{_esc(v['reason'])}</p>",
             f"<pre>{_esc(format_verdict(result))}</pre>"]
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
