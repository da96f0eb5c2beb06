"""Report charts (matplotlib, Agg backend), each written as PNG and SVG.

Okabe-Ito colour-blind-safe palette; a backend keeps its colour in every chart of a report (and, as
far as collisions allow, across reports: the colour slot comes from a hash of the backend label).
Backends whose images are noise (random-weight miniatures) carry "(noise)" in their labels and hatched bars.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Sequence

import numpy as np

# Okabe & Ito (2008); yellow last: weakest contrast on white
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
MISSING_COLOUR = "#DDDDDD"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def backend_colours(labels: Sequence[str]) -> dict[str, str]:
    """A stable colour per backend: the slot from a hash of the label, moved to the next free slot on a
    collision (labels taken in sorted order, so the mapping does not depend on the order given)."""
    out: dict[str, str] = {}
    used: set[int] = set()
    n = len(OKABE_ITO)
    for label in sorted(set(labels)):
        slot = int(hashlib.sha256(label.encode()).hexdigest(), 16) % (n - 1)   # yellow only when 8 are needed
        if len(used) < n:
            while slot in used:
                slot = (slot + 1) % n
        used.add(slot)
        out[label] = OKABE_ITO[slot]
    return out


def _save(fig, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    import matplotlib

    import io

    from ..runfolder import atomic_write_bytes

    for ext in ("png", "svg"):
        p = out_dir / f"{stem}.{ext}"
        buf = io.BytesIO()   # rendered in memory, then written atomically: a killed report leaves no half chart
        # SVG text stays text (searchable, editable, smaller); no date: the same data gives the same file
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "evalsuite"}):
            fig.savefig(buf, format=ext, dpi=110 if ext == "png" else None, bbox_inches="tight",
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
    for x, b in zip(xs, backends):
        r = a[a.backend == b].iloc[0]
        if r["n_items"] == 0 or math.isnan(r["mean"]):
            missing.append(b)
            ax.bar(x, 0, color=MISSING_COLOUR)
            ax.text(x, 0, "missing", ha="center", va="bottom", fontsize=9, color="#555555")
            continue
        err = [[r["mean"] - r["ci_low"]], [r["ci_high"] - r["mean"]]]
        ax.bar(x, r["mean"], color=colours.get(b, OKABE_ITO[0]), edgecolor="#333333", linewidth=0.6,
               hatch="//" if b in noise else None, yerr=err, capsize=6, error_kw={"elinewidth": 1.2})
        fmt = f"{r['mean']:.0f}%" if r["unit"] == "%" else f"{r['mean']:.2f}"
        ax.text(x, r["ci_high"], fmt, ha="center", va="bottom", fontsize=9)
    ax.set_xticks(xs, [_label(b, noise) for b in backends], fontsize=9)
    ax.set_title(title + "\n(mean over prompts, 95% bootstrap CI)", fontsize=10)
    unit = a["unit"].iloc[0] if len(a) else ""
    if unit == "%":
        ax.set_ylim(0, 110)
        ax.set_ylabel("%")
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
    for i, b in enumerate(backends):
        for j, c in enumerate(cats):
            r = a[(a.backend == b) & (a.category == c)]
            if len(r) and r.iloc[0]["n_items"] > 0:
                grid[i, j] = r.iloc[0]["mean"]
    unit = a["unit"].iloc[0] if len(a) else ""
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(cats) + 2.5), max(2.2, 0.6 * len(backends) + 1.4)))
    cmap = plt.get_cmap("cividis").with_extremes(bad=MISSING_COLOUR)
    vmax = 100 if unit == "%" else (np.nanmax(grid) if np.isfinite(grid).any() else 1)
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=vmax or 1, aspect="auto")
    for i in range(len(backends)):
        for j in range(len(cats)):
            v = grid[i, j]
            txt = "n/a" if math.isnan(v) else (f"{v:.0f}%" if unit == "%" else f"{v:.2f}")
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
    panels = [("text_exact", "lenient", "text accuracy (%)", scorer_ids.get("ocr")),
              ("prompt_following", "", "prompt following (% accurate)", scorer_ids.get("clip"))]
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8))
    noise = set(noise)
    hardware = sorted({str(h) for h in speed["hardware"].dropna()}) if len(speed) else []
    for ax, (metric, variant, title, sid) in zip(axes, panels):
        a = agg[(agg.metric == metric) & (agg.variant == variant)]
        if sid:
            a = a[a.scorer_id == sid]
        plotted = 0
        for _, s in speed.iterrows():
            b = s["backend"]
            r = a[a.backend == b]
            if r.empty or r.iloc[0]["n_items"] == 0 or math.isnan(s["median s/image"]):
                continue
            r = r.iloc[0]
            ax.errorbar([s["median s/image"]], [r["mean"]], yerr=[[r["mean"] - r["ci_low"]], [r["ci_high"] - r["mean"]]],
                        fmt="o" if b not in noise else "x", color=colours.get(b, OKABE_ITO[0]), capsize=4,
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
            ax.text(0.5, 0.5, f"no {metric} values", transform=ax.transAxes, ha="center", va="center",
                    color="#555555")
    hw = hardware[0] if len(hardware) == 1 else "different hardware: do not compare timings"
    fig.suptitle(f"speed vs quality ({hw})", fontsize=10)
    fig.tight_layout()
    return _save(fig, out_dir, stem)


def distribution(scores, metric: str, variant: str, title: str, out_dir: Path, *, colours: dict[str, str],
                 scorer_id: str | None = None, order: Sequence[str] | None = None, noise: Sequence[str] = (),
                 stem: str | None = None) -> list[Path]:
    """Per-item values per backend: box plot with every item drawn as a jittered point."""
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
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(v)), v, s=14, alpha=0.7, color=colours.get(b, OKABE_ITO[0]),
                       edgecolors="none")
        ax.set_xticks(range(len(backends)), [_label(b, noise) + f"\nn={len(v)}" for b, v in zip(backends, data)],
                      fontsize=9)
    else:
        ax.text(0.5, 0.5, "no values", transform=ax.transAxes, ha="center", va="center")
    ax.set_title(title + ": per-item distribution", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, out_dir, stem or f"dist_{metric}{'_' + variant if variant else ''}")
