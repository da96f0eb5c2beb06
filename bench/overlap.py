"""Overlapped scoring: wall time of a run that scores while it generates vs generation-only, scoring-only
and generate-then-score, in one process with every model warmed first.

    python bench/overlap.py [--seeds 4] [--steps 16]

flux-tiny (random weights, 64 px, STEPS steps) over the smoke prompts, scored with EasyOCR and a tiny
random open_clip model (throughput only). Prints the four wall times and the ratios of the overlapped
run to the sum and to the max of generation and scoring. On a CPU-only machine generation and scoring
share the same cores, so expect little gain there; the gain comes where generation runs on a GPU.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from _common import machine, tiny_clip

import evalsuite  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=2, help="rounds; each figure is the minimum (the machine is shared)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    quiet = lambda m: None  # noqa: E731
    try:
        spec = tiny_clip(tmp / "clip")
        backend = f"flux-tiny:steps={a.steps}"
        kw = dict(seeds=list(range(a.seeds)), progress=False, log=quiet)
        sc = dict(scorers="clip,ocr", ocr="easyocr", clip_model=spec)
        evalsuite.run(backend, "smoke", run_dir=tmp / "warm", seeds=[0], limit=1, progress=False, log=quiet, **sc)

        def timed(fn):
            t = time.perf_counter()
            r = fn()
            return time.perf_counter() - t, r

        best: dict[str, float] = {}
        for i in range(a.repeat):   # rounds interleave the four measurements; keep each one's minimum
            d = tmp / f"round{i}"
            t_gen, _ = timed(lambda: evalsuite.run(backend, "smoke", run_dir=d / "gen", score=False, **kw))
            shutil.copytree(d / "gen", d / "scoreonly")
            t_score, _ = timed(lambda: evalsuite.score(d / "scoreonly", progress=False, log=quiet, **sc))
            t_seq, _ = timed(lambda: evalsuite.run(backend, "smoke", run_dir=d / "seq", overlap=False, **kw, **sc))
            t_ovl, r = timed(lambda: evalsuite.run(backend, "smoke", run_dir=d / "ovl", overlap=True, **kw, **sc))
            for k, v in (("gen", t_gen), ("score", t_score), ("seq", t_seq), ("ovl", t_ovl)):
                best[k] = min(best.get(k, v), v)
        gen, score, seq, ovl = best["gen"], best["score"], best["seq"], best["ovl"]
        n = r.backends[next(iter(r.backends))].planned
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: {machine()}")
    print(f"{n} flux-tiny images ({a.steps} steps, 64 px), scored with EasyOCR + tiny random CLIP; min of {a.repeat} rounds")
    print(f"generation only:          {gen:7.2f} s")
    print(f"scoring only:             {score:7.2f} s")
    print(f"generate, then score:     {seq:7.2f} s")
    print(f"overlapped (default):     {ovl:7.2f} s   ({r.scored_while_generating} scorer x item pairs done "
          "while generating)")
    print(f"ratio overlapped / (generation + scoring): {ovl / (gen + score):.2f}x; "
          f"overlapped / max(generation, scoring): {ovl / max(gen, score):.2f}x; "
          f"overlapped / generate-then-score: {ovl / seq:.2f}x")


if __name__ == "__main__":
    main()
