"""A comparison as text and pages: the verdict table printed by `evalsuite compare` (and compare.md), the
delta chart (deltas.png) and the self-contained HTML page of the most regressed prompts side by side
(baseline vs candidate thumbnails embedded as data URIs). Reads only the typed result
(evalsuite.compare.result.CompareResult, or the same layout as a mapping loaded from compare.json)."""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any, Mapping

from ..compare.facts import DECISIONS
from ..compare.result import CompareResult

Result = CompareResult | Mapping[str, Any]   # the typed result, or compare.json loaded


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


def text_table(header: list[str], rows: list[list[str]], md: bool) -> list[str]:
    if md:
        return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"] + \
            ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + rows]


def format_verdict(result: Result, md: bool = False) -> str:
    """The verdict table (plain text for the terminal, Markdown for compare.md)."""
    L: list[str] = []
    if md:
        L.append(f"# Paired comparison\n\nbaseline `{result['baseline']['run']}` -> candidate `{result['candidate']['run']}`\n")
    else:
        L.append(f"compare: baseline {result['baseline']['run']} -> candidate {result['candidate']['run']}")
    for pr in result["pairs"]:
        L += _pair_lines(pr, sorted(set(result["baseline"]["seeds"])), md)
    for w in result["warnings"]:
        L.append(f"warning: {w}")
    v = result["verdict"]
    if v.get("basis"):
        L.append(f"the verdict rests on: {v['basis']}")
    L.append(("**verdict: " if md else "verdict: ") + f"{v['decision'].upper()} (exit {v['exit_code']}): {v['reason']}"
             + ("**" if md else ""))
    return "\n".join(L) + "\n"


def _pair_lines(pr, seeds: list[int], md: bool) -> list[str]:
    """One backend pair: heading, hard gates, the metric and gate table, fidelity, memory and speed, unmatched."""
    L: list[str] = []
    unscored = {m: e["n_items_missing"] for m, e in pr["metrics"].items() if e.get("n_items_missing")}
    head = (f"{pr['baseline_backend']} ({pr['baseline_spec']}) -> {pr['candidate_backend']} ({pr['candidate_spec']}): "
            f"{pr['n_pairs']} pairs over {pr['n_prompts']} prompts, seeds {','.join(map(str, seeds))}"
            + ("; unscored paired items: " + ", ".join(f"{m} {n}" for m, n in unscored.items()) if unscored else ""))
    L.append(f"## {head}" if md else f"-- {head}")
    if pr["labelled_noise"]:
        L.append("random-weight miniature model: its images are noise; these numbers test the plumbing, not quality")
    hg = pr["hard_gates"]
    if hg["failed"]:
        ex = "; ".join(f"{g['prompt_id']} s{g['seed']}: {g['reason']}" for g in hg["failed"][:3])
        L.append(f"hard gates: FAIL: {len(hg['failed'])} of {hg['checked']} candidate items ({ex})")
    else:
        L.append(f"hard gates: {hg['decision']} ({hg['checked']} candidate items checked: none failed, none blank)")
    fd = pr["fidelity"]
    rows = [_metric_row(m, e) for m, e in pr["metrics"].items()] + [_gate_row(g, e) for g, e in fd["gates"].items()]
    L += text_table(["metric", "scored pairs", "baseline", "candidate", "delta", "90% CI", "95% CI", "margin",
                     "decision"], rows, md)
    L += _fidelity_lines(fd)
    L += _cost_lines(pr["costs"], md)
    if pr["unmatched"]:
        ex = "; ".join(f"{u['side']} {u['prompt_id']} s{u['seed']}: {u['reason']}" for u in pr["unmatched"][:8])
        more = f" (+{len(pr['unmatched']) - 8} more in compare.json)" if len(pr["unmatched"]) > 8 else ""
        L.append(f"unmatched items ({len(pr['unmatched'])}): {ex}{more}")
    else:
        L.append("unmatched items: none")
    return L


def _metric_row(m: str, e) -> list[str]:
    unit = f" ({e['unit']})" if e["unit"] else ""
    scored = f"{e.get('n_items', 0)}/{e.get('n_applicable', 0)}"
    margin = _f(e["margin"], 2) if e["margin"] else "-"
    if e["decision"] in ("missing", "not applicable"):
        note = " (allowed by --allow-missing)" if e.get("allowed_missing") and e["decision"] == "missing" else ""
        return [m + unit, scored, "-", "-", "-", "-", "-", margin, f"{e['decision']}: {e['missing_reason']}{note}"]
    dec = e["decision"].upper() if e["decision"] in ("pass", "fail") else e["decision"]
    if e["decision"] == "inconclusive" and e.get("inconclusive_reason"):
        dec += f": {e['inconclusive_reason']}"
    if e["decision"] == "inconclusive" and e.get("prompts_needed"):
        dec += f" (~{e['prompts_needed']} prompts to decide)"
    if e["decision"] == "reported":
        dec = "reported (no margin)"
    if "mcnemar" in e:
        mc = e["mcnemar"]
        dec += f"; McNemar {mc['baseline_only']} lost / {mc['candidate_only']} gained, p={mc['p_value']:.2g}"
    return [m + unit, scored, _f(e["baseline_mean"], 2), _f(e["candidate_mean"], 2), _f(e["delta"], 2, True),
            f"[{_f(e['ci90'][0], 2, True)}, {_f(e['ci90'][1], 2, True)}]",
            f"[{_f(e['ci95'][0], 2, True)}, {_f(e['ci95'][1], 2, True)}]", margin, dec]


def _gate_row(g: str, e) -> list[str]:
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
    return [label, str(e.get("n_prompts", 0)), "-", _f(e.get("value"), 2), "-", f"[{_f(ci90[0], 2)}, {_f(ci90[1], 2)}]",
            f"[{_f(ci95[0], 2)}, {_f(ci95[1], 2)}]", f">= {e['threshold']:g}", dec]


def _fidelity_lines(fd) -> list[str]:
    """Fidelity to the baseline beside the seed ceiling, then CLIP cosine and LPIPS."""
    L: list[str] = []
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
    return L


def _cost_lines(costs, md: bool) -> list[str]:
    rows = []
    for side in ("baseline", "candidate"):
        cst = costs[side]
        rows.append([side, cst["spec"], cst["quantization"] or "-", _bytes(cst["weight_bytes"]),
                     _f(cst["peak_vram_gb"], 2), _f(cst["peak_rss_gb"], 2),
                     f"{_f(cst['median_s'], 3)} (n={cst['n_timed']})", _f(cst["load_s"], 1), cst["hardware"] or "-"])
    return ["memory and speed (median seconds per image, warm-up items excluded; peak RSS is the process's):",
            *text_table(["", "spec", "quant", "weights", "peak VRAM GB", "peak RSS GB", "median s", "load s",
                         "hardware"], rows, md)]


def chart_png(result: Result) -> bytes | None:
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


def regressed_html(result: Result, chart_png: bytes | None = None) -> str:
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
