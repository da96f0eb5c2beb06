"""Scoring throughput: `evalsuite.score` vs a naive per-image loop over the same images, OCR and CLIP.

    python bench/scoring_throughput.py [--seeds 2]

Makes one run folder (flux-tiny + reference over the smoke prompts: noise images and rendered target
text), then, with every model already loaded in both cases:
  OCR (EasyOCR): score_run(scorers="ocr") vs a loop of reader.readtext(image) (no metrics, no files);
  CLIP: a tiny random-weight open_clip model (224 px input; throughput only, its numbers mean nothing):
  score_run(scorers="clip") (batches of 16) vs a loop encoding one image and its prompts at a time.
Prints images/s for each and the ratio suite/naive.
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
    ap.add_argument("--seeds", type=int, default=2)
    a = ap.parse_args()
    import numpy as np
    import torch
    from PIL import Image

    from evalsuite.runfolder import RunFolder
    from evalsuite.scoring.clip import load_clip, parse_clip_model
    from evalsuite.scoring.ocr import _easyocr_reader

    tmp = Path(tempfile.mkdtemp())
    try:
        spec = tiny_clip(tmp / "clip")
        base = tmp / "base"
        evalsuite.run("flux-tiny,reference", "smoke", seeds=list(range(a.seeds)), run_dir=base,
                      progress=False, score=False, log=lambda m: None)
        rf = RunFolder(base)
        prompts = rf.prompts()
        items = [(base / r.image, prompts[r.prompt_id]) for _, r in rf.records() if r and r.status == "ok"]
        n = len(items)
        reader = _easyocr_reader(torch.cuda.is_available())          # loaded once for both sides
        cm = load_clip(parse_clip_model(spec), None)
        # warm both paths on one image
        reader.readtext(np.asarray(Image.open(items[0][0]).convert("RGB")))

        def suite(scorers, **kw):
            d = tmp / f"s-{scorers}"
            shutil.copytree(base, d)
            t = time.perf_counter()
            evalsuite.score(d, scorers, progress=False, log=lambda m: None, **kw)
            return time.perf_counter() - t

        t = time.perf_counter()
        for path, _ in items:
            reader.readtext(np.asarray(Image.open(path).convert("RGB")))
        naive_ocr = time.perf_counter() - t
        suite_ocr = suite("ocr", ocr="easyocr")

        t = time.perf_counter()
        with torch.no_grad():
            for path, p in items:
                img = cm.preprocess(Image.open(path).convert("RGB")).unsqueeze(0).to(cm.device)
                fi = cm.model.encode_image(img)
                ft = cm.model.encode_text(cm.tokenizer([p.prompt, *p.negatives]).to(cm.device))
                (fi / fi.norm(dim=-1, keepdim=True)) @ (ft / ft.norm(dim=-1, keepdim=True)).T
        naive_clip = time.perf_counter() - t
        suite_clip = suite("clip", clip_model=spec)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: {machine()}")
    print(f"{n} images (flux-tiny 64 px noise, reference 512 px rendered text), models loaded beforehand")
    print(f"OCR easyocr:  naive loop {n / naive_ocr:6.2f} img/s   evalsuite score {n / suite_ocr:6.2f} img/s   "
          f"ratio {naive_ocr / suite_ocr:.2f}x")
    print(f"CLIP tiny random (throughput only): naive loop {n / naive_clip:6.1f} img/s   evalsuite score "
          f"{n / suite_clip:6.1f} img/s   ratio {naive_clip / suite_clip:.2f}x")
    print("(ratio > 1: evalsuite faster; evalsuite also computes the metrics and writes detail files and the table)")


if __name__ == "__main__":
    main()
