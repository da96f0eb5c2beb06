"""Speed and memory: the per-item peak RSS probe and `speed_table(run_dir)`, the per-backend timing summary.

What the runner records per item (ItemRecord) and how:

    latency_s     wall time of the image's generate call (batch time / batch size), model load excluded
    it_per_s      denoising steps per second of that call: steps / latency_s (None where steps are unknown)
    warmup        True for the first call of a backend in its process; excluded from every median here
    load_s        the backend's model load time in this process (BackendInfo.load_s: the main process's)
    peak_vram_gb  torch.cuda.max_memory_allocated(), reset before each backend's load (so: the peak of
                  this backend in this process so far, load included), CUDA only
    peak_rss_gb   peak resident memory of the process DURING this item's generate call (see PeakRSS)
    rank          the torch.distributed rank that made it (None in a single-process run)

Peak RSS per item: `ru_maxrss` is a lifetime peak and says nothing about one item. On Linux the
kernel keeps the same high-water mark (VmHWM) and resets it when "5" is written to
/proc/self/clear_refs; PeakRSS does that before the call and reads VmHWM after it: the exact peak of
the call, no sampling, no cost. Where that file cannot be written (macOS, locked-down containers),
a thread samples the RSS every 5 ms (psutil) and keeps the maximum: it can miss a spike shorter than
that. `rss_method()` says which one is in use; run.json's environment records it. RSS is process-wide:
remote backends' threads and the overlapped scoring worker running at the same time count in it.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")
SAMPLE_INTERVAL_S = 0.005


def _vm_kib(field: str) -> int | None:
    try:
        m = re.search(rf"^{field}:\s+(\d+)\s+kB", STATUS.read_text(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def _can_reset_hwm() -> bool:
    try:
        with open(CLEAR_REFS, "w") as f:
            f.write("5")
        return _vm_kib("VmHWM") is not None
    except OSError:
        return False


_HWM_OK: bool | None = None


def rss_method() -> str:
    global _HWM_OK
    if _HWM_OK is None:
        _HWM_OK = _can_reset_hwm()
    return ("VmHWM reset per item (/proc/self/clear_refs)" if _HWM_OK
            else f"RSS sampled every {SAMPLE_INTERVAL_S * 1000:.0f} ms (psutil)")


def current_rss_bytes() -> int:
    kib = _vm_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    import psutil

    return psutil.Process().memory_info().rss


class PeakRSS:
    """`with PeakRSS() as m: work()` then `m.peak_gb`: the process's peak resident memory during the block."""

    def __init__(self):
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "PeakRSS":
        rss_method()
        if _HWM_OK:
            with open(CLEAR_REFS, "w") as f:
                f.write("5")
        else:
            self.peak_bytes = current_rss_bytes()
            self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self.peak_bytes = max(self.peak_bytes, current_rss_bytes())

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak_bytes = max(self.peak_bytes, current_rss_bytes())
        else:
            self.peak_bytes = (_vm_kib("VmHWM") or 0) * 1024

    @property
    def peak_gb(self) -> float:
        return self.peak_bytes / 1024**3


def its_per_s(steps: int | None, latency_s: float | None) -> float | None:
    if not steps or not latency_s or latency_s <= 0:
        return None
    return steps / latency_s


SPEED_COLUMNS = ["backend", "backend_name", "hardware", "steps", "width", "height", "batch_size", "n_timed",
                 "n_warmup", "median_s", "p90_s", "it_per_s", "warmup_s", "load_s", "peak_vram_gb", "peak_rss_gb",
                 "ranks", "labelled_noise"]


def speed_table(run_dir: str | Path):
    """One row per backend of a run folder (pandas DataFrame, columns SPEED_COLUMNS):

    steps, size and batch size (the most common among its items), n_timed (ok items that are not a
    warm-up), median and 90th-percentile seconds per image over those, it_per_s (median steps/s),
    warmup_s (median of the warm-up calls, shown apart), load_s (median over the processes that loaded
    it), peak_vram_gb and peak_rss_gb (the maximum over its items), the hardware name from run.json,
    ranks (how many processes generated it) and labelled_noise (random-weight miniature: not quality).
    Remote backends have no steps/VRAM; their latency is the service's round trip.
    """
    import pandas as pd

    from .runfolder import RunFolder

    rf = RunFolder(run_dir)
    info = rf.info
    env = info.environment or {}
    hardware = env.get("hardware") or env.get("gpu") or env.get("cpu")
    ranks_hw = {r.get("rank"): r.get("hardware") for r in (env.get("distributed") or {}).get("ranks", [])}
    by: dict[str, list] = {}
    for entry, rec in rf.records():
        if rec is not None and rec.status == "ok":
            by.setdefault(entry.backend, []).append(rec)
    rows = []
    for label, binfo in info.backends.items():
        recs = by.get(label, [])
        timed = [r for r in recs if not r.warmup and r.latency_s is not None]
        warm = [r for r in recs if r.warmup and r.latency_s is not None]
        lat = pd.Series([r.latency_s for r in timed], dtype=float)
        ips = pd.Series([x for x in (its_per_s(r.steps, r.latency_s) for r in timed) if x is not None], dtype=float)
        loads = pd.Series([r.load_s for r in recs if r.load_s is not None], dtype=float)

        def mode(attr):
            s = pd.Series([getattr(r, attr) for r in recs if getattr(r, attr) is not None])
            return s.mode().iloc[0] if len(s) else None

        def peak(attr):
            vals = [getattr(r, attr) for r in recs if getattr(r, attr) is not None]
            return max(vals) if vals else None

        ranks = sorted({r.rank for r in recs if r.rank is not None})
        hw = hardware
        hws = sorted({ranks_hw[k] for k in ranks if ranks_hw.get(k)})
        if hws:
            hw = hws[0] if len(hws) == 1 else " / ".join(hws)
        rows.append({
            "backend": label, "backend_name": binfo.name, "hardware": hw,
            "steps": mode("steps"), "width": mode("width"), "height": mode("height"), "batch_size": mode("batch_size"),
            "n_timed": len(timed), "n_warmup": len(warm),
            "median_s": float(lat.median()) if len(lat) else None,
            "p90_s": float(lat.quantile(0.9)) if len(lat) else None,
            "it_per_s": float(ips.median()) if len(ips) else None,
            "warmup_s": float(pd.Series([r.latency_s for r in warm]).median()) if warm else None,
            "load_s": float(loads.median()) if len(loads) else binfo.load_s,
            "peak_vram_gb": peak("peak_vram_gb"), "peak_rss_gb": peak("peak_rss_gb"),
            "ranks": len(ranks) or 1, "labelled_noise": binfo.labelled_noise,
        })
    return pd.DataFrame(rows, columns=SPEED_COLUMNS)


def format_speed_table(df) -> str:
    """Plain-text rendering of speed_table() (medians; warm-up and load shown apart)."""
    if df.empty:
        return "no backends"

    def f(x, fmt):
        return "-" if x is None or x != x else format(x, fmt)

    header = ["backend", "steps", "size", "median s/img", "it/s", "warm-up s", "load s", "peak VRAM GB",
              "peak RSS GB", "n"]
    lines = []
    for r in df.to_dict("records"):
        size = f"{int(r['width'])}x{int(r['height'])}" if r["width"] == r["width"] and r["width"] is not None else "-"
        lines.append([r["backend"] + (" (noise)" if r["labelled_noise"] else ""), f(r["steps"], ".0f"), size,
                      f(r["median_s"], ".3f"), f(r["it_per_s"], ".2f"), f(r["warmup_s"], ".3f"), f(r["load_s"], ".2f"),
                      f(r["peak_vram_gb"], ".2f"), f(r["peak_rss_gb"], ".2f"), str(r["n_timed"])])
    widths = [max(len(str(x[i])) for x in [header] + lines) for i in range(len(header))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header] + lines]
    hws = sorted({str(h) for h in df["hardware"] if h})
    out.append(f"hardware: {', '.join(hws) or 'unknown'}; medians exclude each process's warm-up call")
    return "\n".join(out)

