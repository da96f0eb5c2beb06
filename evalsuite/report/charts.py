"""Report charts (matplotlib, Agg backend), each written as PNG and SVG.

Okabe-Ito colour-blind-safe palette, in an order that keeps the first colours far apart (orange and
vermillion, the closest pair, are never the first two); each backend also has its own marker, so the
charts read in grey too. A backend keeps its colour and marker in every chart of a report (slots follow
the sorted labels: the same backends get the same colours in every report). PNGs are 300 dpi (paper and
slides), SVGs beside them. Zero-height bars and zero-width intervals stay visible (the mean is drawn as
the backend's marker, the axis starts just below zero); a panel without values is not drawn.
Backends whose images are noise (random-weight miniatures) carry "(noise)" in their labels and hatched bars.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ..metrics import registry as R

# Okabe & Ito (2008): blue, orange, bluish green, reddish purple, black, sky blue, vermillion, yellow
# (yellow last: weakest contrast on white; vermillion late: it is the one close to orange)
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#000000", "#56B4E9", "#D55E00", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
MISSING_COLOUR = "#DDDDDD"
PNG_DPI = 300


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def backend_colours(labels: Sequence[str]) -> dict[str, str]:
    """A colour per backend: slot i for the i-th label in sorted order (so the mapping does not depend on the
    order given, and distinct colours go to up to 8 backends; beyond 8 the markers tell them apart)."""
    return {label: OKABE_ITO[i % len(OKABE_ITO)] for i, label in enumerate(sorted(set(labels)))}


def backend_markers(labels: Sequence[str]) -> dict[str, str]:
    """A marker per backend, in the same slots as backend_colours."""
    return {label: MARKERS[i % len(MARKERS)] for i, label in enumerate(sorted(set(labels)))}


def _marker(b: str, colours: dict[str, str]) -> str:
    """The backend's marker: the slot of its colour (charts get the colour map only)."""
    labels = sorted(colours)
    return MARKERS[labels.index(b) % len(MARKERS)] if b in colours else MARKERS[0]


def _save(fig, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    import matplotlib

    import io

    from ..store import atomic_write_bytes

    for ext in ("png", "svg"):
        p = out_dir / f"{stem}.{ext}"
        buf = io.BytesIO()   # rendered in memory, then written atomically: a killed report leaves no half chart
        # SVG text stays text (searchable, editable, smaller); no date: the same data gives the same file
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "evalsuite"}):
            fig.savefig(buf, format=ext, dpi=PNG_DPI if ext == "png" else None, bbox_inches="tight",
                        metadata={"Date": None} if ext == "svg" else None)
        atomic_write_bytes(p, buf.getvalue())
        paths.append(p)
    _plt().close(fig)
    return paths


def _label(b: str, noise: set[str]) -> str:
    return f"{b}\n(noise)" if b in noise else b


def bar_chart(agg, metric: str, variant: str, title: str, out_dir: Path, *, colours: dict[str, str],
              noise: Sequence[str] = (), scorer_id: str | None = None, order: Sequence[str] | None = None,
              stem: str | None = None) -> list[Path]:
    """Mean per backend with 95% CI whiskers; backends without values are listed as missing."""
    plt = _plt()
    a = agg[(agg.metric == metric) & (agg.variant == variant)]
    if scorer_id:
        a = a[a.scorer_id == scorer_id]
    backends = [b for b in (order or list(dict.fromkeys(a.backend))) if b in set(a.backend)]
    noise = set(noise)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(backends) + 1.5), 3.6))
    xs, missing = np.arange(len(backends)), []
    ticks = []
    for x, b in zip(xs, backends):
        r = a[a.backend == b].iloc[0]
        # coverage beside every bar: items scored / planned (failed, not generated and unscored items count)
        ticks.append(_label(b, noise) + (f"\n{r['coverage']} items" if "coverage" in r and isinstance(r["coverage"], str)
                                         else ""))
        if r["n_items"] == 0 or math.isnan(r["mean"]):
            missing.append(b)
            ax.bar(x, 0, color=MISSING_COLOUR)
            ax.text(x, 0, "missing", ha="center", va="bottom", fontsize=9, color="#555555")
            continue
        finite = math.isfinite(r["ci_low"]) and math.isfinite(r["ci_high"])
        err = [[r["mean"] - r["ci_low"]], [r["ci_high"] - r["mean"]]] if finite else None
        colour = colours.get(b, OKABE_ITO[0])
        ax.bar(x, r["mean"], color=colour, edgecolor="#333333", linewidth=0.6, alpha=0.85,
               hatch="//" if b in noise else None)
        # whisker and mean marker on top: a 0 bar or a [0, 0] interval still shows (the axis starts below 0)
        ax.errorbar([x], [r["mean"]], yerr=err, fmt=_marker(b, colours), color="#222222", markerfacecolor=colour,
                    markeredgecolor="#222222", markersize=7, capsize=7, elinewidth=1.3, capthick=1.3, zorder=3)
        fmt = f"{r['mean']:.0f}%" if r["unit"] == "%" else f"{r['mean']:.2f}"
        y = (r["ci_high"] if finite else r["mean"]) + (2.5 if r["unit"] == "%" else 0)
        ax.text(x, y, fmt + ("" if finite else " (n=1: no CI)"), ha="center", va="bottom", fontsize=9)
        if finite and r["ci_high"] - r["ci_low"] == 0:   # a zero-width interval (a census), spelled out
            ci = f"[{r['ci_low']:.0f}, {r['ci_high']:.0f}]" if r["unit"] == "%" else "CI width 0"
            ax.annotate(ci, (x, y), xytext=(0, 11), textcoords="offset points", ha="center", va="bottom",
                        fontsize=7.5, color="#444444")
    ax.set_xticks(xs, ticks, fontsize=9)
    ax.set_title(title + "\n(mean over prompts, 95% CI)", fontsize=10)
    unit = a["unit"].iloc[0] if len(a) else ""
    if unit == "%":
        ax.set_ylim(-5, 115)
        ax.set_ylabel("%")
    else:
        lo, hi = ax.get_ylim()
        ax.set_ylim(min(lo, -0.05 * (hi - lo or 1)), hi)
    ax.axhline(0, color="#888888", linewidth=0.8, zorder=1)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    if missing and len(a):
        reasons = a.loc[a.backend.isin(missing), "missing_reasons"].dropna()
        if len(reasons):
            ax.set_xlabel("missing: " + _short(reasons.iloc[0], 90), fontsize=8, color="#555555")
    return _save(fig, out_dir, stem or f"bars_{metric}{'_' + variant if variant else ''}")


def _short(s: str, n: int) -> str:
    s = str(s)
    return s if len(s) <= n else s[: n - 1] + "…"


def heatmap(agg_cat, metric: str, variant: str, title: str, out_dir: Path, *, scorer_id: str | None = None,
            order: Sequence[str] | None = None, noise: Sequence[str] = (), stem: str | None = None) -> list[Path]:
    """Backend x category grid of the metric's mean; cells without values are grey and say n/a."""
    plt = _plt()
    a = agg_cat[(agg_cat.metric == metric) & (agg_cat.variant == variant)]
    if scorer_id:
        a = a[a.scorer_id == scorer_id]
    backends = [b for b in (order or list(dict.fromkeys(a.backend))) if b in set(a.backend)]
    cats = sorted(set(a.category))
    grid = np.full((len(backends), len(cats)), np.nan)
    cover: dict[tuple[int, int], str] = {}
    for i, b in enumerate(backends):
        for j, c in enumerate(cats):
            r = a[(a.backend == b) & (a.category == c)]
            if len(r) and r.iloc[0]["n_items"] > 0:
                grid[i, j] = r.iloc[0]["mean"]
            if len(r) and isinstance(r.iloc[0].get("coverage"), str):
                cover[(i, j)] = f"\n{r.iloc[0]['coverage']} items, n={int(r.iloc[0]['n_prompts'])}"
    unit = a["unit"].iloc[0] if len(a) else ""
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(cats) + 2.5), max(2.2, 0.6 * len(backends) + 1.4)))
    cmap = plt.get_cmap("cividis").with_extremes(bad=MISSING_COLOUR)
    vmax = 100 if unit == "%" else (np.nanmax(grid) if np.isfinite(grid).any() else 1)
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=vmax or 1, aspect="auto")
    for i in range(len(backends)):
        for j in range(len(cats)):
            v = grid[i, j]
            txt = ("n/a" if math.isnan(v) else (f"{v:.0f}%" if unit == "%" else f"{v:.2f}")) + cover.get((i, j), "")
            dark = not math.isnan(v) and v < 0.55 * (vmax or 1)
            ax.text(j, i, txt, ha="center", va="center", fontsize=9, color="white" if dark else "black")
    noise = set(noise)
    ax.set_xticks(range(len(cats)), cats, fontsize=9)
    ax.set_yticks(range(len(backends)), [b + (" (noise)" if b in noise else "") for b in backends], fontsize=9)
    ax.set_title(title + " by category", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return _save(fig, out_dir, stem or f"heatmap_{metric}{'_' + variant if variant else ''}")


def speed_quality_scatter(speed, agg, out_dir: Path, *, colours: dict[str, str], scorer_ids: dict,
                          noise: Sequence[str] = (), stem: str = "speed_vs_quality") -> list[Path]:
    """Median seconds per image (log x) against text accuracy and prompt following, one point per backend
    with its CI as a vertical whisker. Timings of different hardware are marked in the legend."""
    plt = _plt()
    panels = [("text_exact", "lenient", R.title("text_exact", "lenient"), scorer_ids.get("ocr")),
              ("prompt_following", "", R.title("prompt_following"), scorer_ids.get("clip"))]
    noise = set(noise)
    hardware = sorted({str(h) for h in speed["hardware"].dropna()}) if len(speed) else []

    def points(metric, variant, sid):
        a = agg[(agg.metric == metric) & (agg.variant == variant)]
        if sid:
            a = a[a.scorer_id == sid]
        out = []
        for _, s in speed.iterrows():
            r = a[a.backend == s["backend"]]
            if r.empty or r.iloc[0]["n_items"] == 0 or math.isnan(s["median s/image"]):
                continue
            out.append((s, r.iloc[0]))
        return out

    with_values = [(p, points(*p[:2], p[3])) for p in panels]
    with_values = [(p, pts) for p, pts in with_values if pts] or [(panels[0], [])]   # no empty half panel
    fig, axes = plt.subplots(1, len(with_values), figsize=(4.9 * len(with_values), 3.8), squeeze=False)
    for ax, ((metric, variant, title, sid), pts) in zip(axes[0], with_values):
        plotted = 0
        for s, r in pts:
            b = s["backend"]
            yerr = [[r["mean"] - r["ci_low"]], [r["ci_high"] - r["mean"]]] if math.isfinite(r["ci_low"]) else None
            ax.errorbar([s["median s/image"]], [r["mean"]], yerr=yerr,
                        fmt=_marker(b, colours), color=colours.get(b, OKABE_ITO[0]), capsize=4,
                        markerfacecolor="none" if b in noise else colours.get(b, OKABE_ITO[0]),
                        markersize=8, label=b + (" (noise)" if b in noise else "")
                        + (f" [{s['hardware']}]" if len(hardware) > 1 else ""))
            plotted += 1
        ax.set_xscale("log")
        ax.set_xlabel("median seconds per image (warm-up excluded, log scale)", fontsize=9)
        ax.set_ylabel(title, fontsize=9)
        ax.set_ylim(-5, 105)
        ax.grid(alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        if plotted:
            ax.legend(fontsize=8, loc="best")
        else:
            ax.text(0.5, 0.5, "no text accuracy or prompt following values", transform=ax.transAxes,
                    ha="center", va="center", color="#555555")
    hw = hardware[0] if len(hardware) == 1 else "different hardware: do not compare timings"
    fig.suptitle(f"speed vs quality ({hw})", fontsize=10)
    fig.tight_layout()
    return _save(fig, out_dir, stem)


def distribution(scores, metric: str, variant: str, title: str, out_dir: Path, *, colours: dict[str, str],
                 scorer_id: str | None = None, order: Sequence[str] | None = None, noise: Sequence[str] = (),
                 stem: str | None = None, planned: dict[str, int] | None = None) -> list[Path]:
    """Per-item values per backend: box plot with every item drawn as a jittered point; `planned` (backend ->
    items planned where the metric applies) labels each box "scored/planned items"."""
    plt = _plt()
    s = scores[(scores.metric == metric) & (scores.variant == variant) & scores["value"].notna()]
    if scorer_id:
        s = s[s.scorer_id == scorer_id]
    backends = [b for b in (order or list(dict.fromkeys(s.backend))) if b in set(s.backend)]
    noise = set(noise)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(backends) + 1.5), 3.6))
    data = [s.loc[s.backend == b, "value"].to_numpy(dtype=float) for b in backends]
    if backends:
        ax.boxplot(data, positions=range(len(backends)), widths=0.5, showfliers=False)
        rng = np.random.default_rng(0)
        for i, (b, v) in enumerate(zip(backends, data)):
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(v)), v, s=16, alpha=0.75, color=colours.get(b, OKABE_ITO[0]),
                       marker=_marker(b, colours), edgecolors="none")
        ax.set_xticks(range(len(backends)), [_label(b, noise) + (f"\n{len(v)}/{planned[b]} items" if planned and b in planned
                                                                 else f"\nn={len(v)}") for b, v in zip(backends, data)],
                      fontsize=9)
    else:
        ax.text(0.5, 0.5, "no values", transform=ax.transAxes, ha="center", va="center")
    ax.set_title(title + ": per-item distribution", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, out_dir, stem or f"dist_{metric}{'_' + variant if variant else ''}")
