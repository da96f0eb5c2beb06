"""Harness overhead: `evalsuite.run` vs a bare diffusers loop generating the same flux-tiny items.

Both build the same miniature pipeline, generate the same prompts x seeds at the same size with one
seeded generator per image, and write PNGs. Prints both wall times and the ratio (target <= 1.02x).
Also prints the warm-rerun ratio: the same run repeated (everything reused) vs its cold time
(target <= 0.02x). Usage: python bench/harness_overhead.py [--size 128] [--seeds 4]
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

import evalsuite
from evalsuite.backends.tiny import build_tiny_flux
from evalsuite.envinfo import cpu_name
from evalsuite.prompts import load_prompt_set


def bare_loop(prompts, seeds, size, out: Path) -> None:
    pipe = build_tiny_flux()
    pipe.set_progress_bar_config(disable=True)
    out.mkdir(parents=True)
    for p in prompts:
        for s in seeds:
            img = pipe(p.prompt, generator=torch.Generator("cpu").manual_seed(s), width=size, height=size,
                       num_inference_steps=4, guidance_scale=0.0, max_sequence_length=64).images[0]
            img.save(out / f"{p.id}_{s}.png")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    seeds = list(range(args.seeds))
    prompts = load_prompt_set("smoke").prompts
    ap_rounds = args.rounds
    tmp = Path(tempfile.mkdtemp())
    bare_t, harness_t, warm_t = [], [], []
    try:
        bare_loop(prompts[:1], [0], args.size, tmp / "warm")  # warm caches and kernels for both
        # Interleaved rounds, best of each: this machine is shared, so single timings wander by 10%.
        for r in range(ap_rounds):
            t = time.perf_counter()
            bare_loop(prompts, seeds, args.size, tmp / f"bare{r}")
            bare_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            evalsuite.run("flux-tiny", "smoke", seeds=seeds, size=(args.size, args.size), run_dir=tmp / f"run{r}",
                          progress=False, score=False, log=lambda m: None)
            harness_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            evalsuite.run("flux-tiny", "smoke", seeds=seeds, size=(args.size, args.size), run_dir=tmp / f"run{r}",
                          progress=False, score=False, log=lambda m: None)
            warm_t.append(time.perf_counter() - t)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    bare, harness, warm = min(bare_t), min(harness_t), min(warm_t)
    n = len(prompts) * len(seeds)
    print(f"machine: {cpu_name()}, torch threads {torch.get_num_threads()}")
    print(f"items: {n} flux-tiny images at {args.size}x{args.size}")
    print(f"rounds: {len(bare_t)} interleaved; best of each (all: bare {[round(x, 2) for x in bare_t]}, "
          f"evalsuite {[round(x, 2) for x in harness_t]})")
    print(f"bare diffusers loop: {bare:.2f} s")
    print(f"evalsuite run:       {harness:.2f} s")
    print(f"harness overhead ratio: {harness / bare:.3f}x (target <= 1.02x)")
    print(f"warm rerun:          {warm:.2f} s, ratio vs cold {warm / harness:.4f}x (target <= 0.02x)")


if __name__ == "__main__":
    main()
