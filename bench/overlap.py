"""Overlapped scoring: wall time of a run that scores while it generates (overlap=True) vs generation-only, scoring-only
and generate-then-score, in one process with every model warmed first.

    python bench/overlap.py [--seeds 4] [--steps 16] [--latency 0.3]

flux-tiny (random weights, 64 px, STEPS steps) over the smoke prompts, scored with EasyOCR and a tiny
random open_clip model (throughput only). Prints the four wall times and the ratios of the overlapped
run to the sum and to the max of generation and scoring. On a CPU-only machine generation and scoring
share the same cores (and the GIL): expect a loss there, which is why overlap=None (auto) leaves it off
for CPU generation. Then the same four measurements with a generator that does not use the CPU: the
fake Replicate server of the tests with LATENCY seconds per image (concurrency 1), standing in for a
GPU or a remote service.
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
    ap.add_argument("--latency", type=float, default=0.3)
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

        res = {"flux-tiny": measure(backend, tmp / "local", kw, sc, a.repeat)}
        import os

        from evalsuite.backends import remote
        from tests.fakes.common import FakeServer
        from tests.fakes.replicate_fake import ReplicateFake

        secret = "bench-throwaway-token-0000"
        os.environ.update({"REPLICATE_API_TOKEN": secret, remote.LOOPBACK_ENV: "1"})
        with FakeServer(ReplicateFake(secret=secret, latency=a.latency)) as srv:
            spec = f"replicate:black-forest-labs/flux-schnell,base_url={srv.url},poll_interval=0.05,concurrency=1"
            res["remote"] = measure(spec, tmp / "remote", dict(kw, size="64x64"), sc, a.repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: {machine()}")
    for name, (gen, score, seq, ovl, r) in res.items():
        n = sum(c.planned for c in r.backends.values())
        what = (f"flux-tiny ({a.steps} steps, 64 px, on this CPU)" if name == "flux-tiny"
                else f"fake remote service, {a.latency} s per image, one at a time")
        print(f"-- {n} images from {what}; scored with EasyOCR + tiny random CLIP; min of {a.repeat} rounds")
        print(f"generation only:          {gen:7.2f} s")
        print(f"scoring only:             {score:7.2f} s")
        print(f"generate, then score:     {seq:7.2f} s")
        print(f"overlapped (overlap=on):  {ovl:7.2f} s   ({r.scored_while_generating} scorer x item pairs done "
              "while generating)")
        print(f"ratio overlapped / (generation + scoring): {ovl / (gen + score):.2f}x; "
              f"overlapped / max(generation, scoring): {ovl / max(gen, score):.2f}x; "
              f"overlapped / generate-then-score: {ovl / seq:.2f}x")


def timed(fn):
    t = time.perf_counter()
    r = fn()
    return time.perf_counter() - t, r


def measure(backend, root, kw, sc, repeat):
    best: dict[str, float] = {}
    for i in range(repeat):   # rounds interleave the four measurements; keep each one's minimum
        d = root / f"round{i}"
        t_gen, _ = timed(lambda: evalsuite.run(backend, "smoke", run_dir=d / "gen", score=False, **kw))
        shutil.copytree(d / "gen", d / "scoreonly")
        t_score, _ = timed(lambda: evalsuite.score(d / "scoreonly", progress=False, log=lambda m: None, **sc))
        t_seq, _ = timed(lambda: evalsuite.run(backend, "smoke", run_dir=d / "seq", overlap=False, **kw, **sc))
        t_ovl, r = timed(lambda: evalsuite.run(backend, "smoke", run_dir=d / "ovl", overlap=True, **kw, **sc))
        for k, v in (("gen", t_gen), ("score", t_score), ("seq", t_seq), ("ovl", t_ovl)):
            best[k] = min(best.get(k, v), v)
    return best["gen"], best["score"], best["seq"], best["ovl"], r


if __name__ == "__main__":
    main()
