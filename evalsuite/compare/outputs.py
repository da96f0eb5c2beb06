"""Writing a comparison: compare.json (the typed result, same format as before), compare.md, deltas.png and
regressed.html (text and pages drawn by evalsuite.report.compare_page)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..runfolder import atomic_write_bytes, atomic_write_json, atomic_write_text
from .result import CompareResult, jsonable


def write_outputs(result: CompareResult | dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """compare.md, compare.json, deltas.png (when there are gated deltas) and regressed.html into out_dir."""
    from ..report.compare_page import chart_png, format_verdict, regressed_html

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    png = chart_png(result)
    md = format_verdict(result, md=True)
    if png is not None:
        atomic_write_bytes(out / "deltas.png", png)
        files["chart"] = out / "deltas.png"
        md += "\n![paired deltas with CIs](deltas.png)\n"
    md += "\nMost regressed prompts side by side: [regressed.html](regressed.html)\n"
    atomic_write_text(out / "compare.md", md)
    atomic_write_json(out / "compare.json", jsonable(result))
    atomic_write_text(out / "regressed.html", regressed_html(result, png))
    files.update(markdown=out / "compare.md", json=out / "compare.json", html=out / "regressed.html")
    return files


def default_out_dir(baseline_run: str | Path, candidate_run: str | Path) -> Path:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(baseline_run).resolve().name) or "baseline"
    return Path(candidate_run) / f"compare-{name}"
