"""A rerun with nothing to do, end to end, vs `python -c "import torch"` measured in the same run.

Makes one complete run folder (generation, scoring, report) with the offline demo backends, then times
`python -m evalsuite run ...` again with everything up to date (generation reused, scores cached, report
up to date) against a bare `python -c "import torch"`, interleaved rounds, best of each. Also checks that
the rerun rewrote no file of the run folder. Goal: ratio <= 1.5x (the rerun must cost little more than
the torch import that deciding the device needs).
Usage: python bench/noop_rerun.py [--rounds 5] [--backends flux-tiny,reference] [--prompts smoke]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine


def _files(run_dir: Path) -> dict[str, int]:
    return {str(p.relative_to(run_dir)): p.stat().st_mtime_ns for p in sorted(run_dir.rglob("*")) if p.is_file()}


def _timed(cmd, env, cwd) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--backends", default="flux-tiny,reference")
    ap.add_argument("--prompts", default="smoke")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "evalsuite", "run", "--backends", args.backends, "--prompts", args.prompts,
               "--run-dir", str(run_dir), "--no-progress"]
        cold = _timed(cmd, env, tmp)
        before = _files(run_dir)
        _timed(cmd, env, tmp)   # the first rerun may still write derived caches (the terminal table)
        before = _files(run_dir)
        noop, torch_import = [], []
        for _ in range(args.rounds):
            noop.append(_timed(cmd, env, tmp))
            torch_import.append(_timed([sys.executable, "-c", "import torch"], env, tmp))
        after = _files(run_dir)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    best_noop, best_torch = min(noop), min(torch_import)
    print(f"machine: {machine()}")
    print(f"run: --backends {args.backends} --prompts {args.prompts}; {len(before)} files in the run folder")
    print(f"cold run (generate, score, report): {cold:.2f} s")
    print(f"no-op rerun: best {best_noop:.2f} s of {args.rounds} ({', '.join(f'{t:.2f}' for t in noop)})")
    print(f"python -c 'import torch': best {best_torch:.2f} s of {args.rounds} "
          f"({', '.join(f'{t:.2f}' for t in torch_import)})")
    print(f"files rewritten by the no-op reruns: {len(changed)}" + (f" ({', '.join(changed[:10])})" if changed else ""))
    print(f"ratio no-op rerun / import torch: {best_noop / best_torch:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
