"""Memory: peak RSS while scoring N small images, for N = 1,000 and 10,000 (it should stay flat).

    python bench/memory.py [--counts 1000,10000] [--scorers clip] [--ocr rapidocr]

Each count runs in a fresh subprocess: it imports N 32x32 PNGs through the `folder:` backend (one
prompt set of N/10 prompts x 10 seeds), then resets the kernel's peak-RSS mark (evalsuite.timing.PeakRSS)
and scores the run (a tiny random open_clip model with 32 px input by default: throughput only; add --scorers clip,ocr
for OCR too). Prints the peak RSS of the scoring pass per count and the ratio largest / smallest.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine, tiny_clip


def child(n: int, scorers: str, ocr: str, work: Path) -> None:
    import numpy as np
    import yaml
    from PIL import Image

    import evalsuite
    from evalsuite.timing import PeakRSS, rss_method

    spec = tiny_clip(work / "clip", small=True)
    seeds = 10
    prompts = [{"id": f"p{i:05d}", "prompt": f"a small test image number {i}", "category": "bench"}
               for i in range(n // seeds)]
    (work / "set.yaml").write_text(yaml.safe_dump({"name": f"bench{n}", "prompts": prompts}))
    imgs = work / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(0)
    for p in prompts:
        for s in range(seeds):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(imgs / f"{p['id']}_{s}.png")
    t = time.perf_counter()
    evalsuite.run(f"folder:{imgs}", str(work / "set.yaml"), num_seeds=seeds, run_dir=work / "run", progress=False,
                  score=False, log=lambda m: None)
    t_import = time.perf_counter() - t
    t = time.perf_counter()
    with PeakRSS() as mem:
        r = evalsuite.score(work / "run", scorers, ocr=ocr, clip_model=spec, progress=False, log=lambda m: None)
    t_score = time.perf_counter() - t
    rows = len(evalsuite.load_scores(work / "run"))
    print(json.dumps({"n": n, "peak_rss_gb": mem.peak_gb, "method": rss_method(), "import_s": t_import,
                      "score_s": t_score, "rows": rows, "summary": r.summary()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default="1000,10000")
    ap.add_argument("--scorers", default="clip")
    ap.add_argument("--ocr", default="rapidocr")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a.child, a.scorers, a.ocr, Path(a.work))
    out = []
    for n in (int(x) for x in a.counts.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            p = subprocess.run([sys.executable, __file__, "--child", str(n), "--work", tmp, "--scorers", a.scorers,
                                "--ocr", a.ocr], capture_output=True, text=True, cwd=ROOT)
            if p.returncode:
                sys.exit(p.stderr[-2000:])
            out.append(json.loads(p.stdout.strip().splitlines()[-1]))
    print(f"machine: {machine()}")
    for r in out:
        print(f"{r['n']:>6} images: import {r['import_s']:6.1f} s, scoring {r['score_s']:6.1f} s, "
              f"{r['rows']} table rows, peak RSS while scoring {r['peak_rss_gb']:.3f} GB")
    print(f"peak RSS ratio {out[-1]['n']} vs {out[0]['n']} images: {out[-1]['peak_rss_gb'] / out[0]['peak_rss_gb']:.2f}x "
          f"({out[0]['method']})")


if __name__ == "__main__":
    main()
