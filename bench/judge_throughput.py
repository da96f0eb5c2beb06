"""Throughput of the vqa scorer's judges, measured in one run: images/s and questions/s of the miniature
random-weight Qwen2.5-VL judge (transformers, this machine's CPU or GPU) and of a fake OpenAI-compatible
endpoint on 127.0.0.1 (the real `openai` client, `--latency` seconds per answer, `--concurrency` in flight).

    python bench/judge_throughput.py [--images 16] [--latency 0.05] [--concurrency 8] [--batch 8]

Each image is asked the whole-prompt question plus the prompt's atomic questions (4 here: 5 questions an
image). The miniature judge's answers are noise; its speed says what the harness costs around a model, not
what a 7B judge does (bench/gpu_check.sh measures a full-size random-weight judge on a GPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

QUESTIONS = ["Is there a cube?", "Is the cube red?", "Is there a sphere?", "Is the cube to the left of the sphere?"]
PROMPT = "A red cube to the left of a blue sphere on a white table"


def pairs(n_images: int):
    from PIL import Image

    from evalsuite.judges.base import atomic_question, vqa_question

    images, texts = [], []
    for i in range(n_images):
        im = Image.new("RGB", (256, 256), ((37 * i) % 256, (91 * i) % 256, (53 * i) % 256))
        for q in [vqa_question(PROMPT)] + [atomic_question(q) for q in QUESTIONS]:
            images.append(im)
            texts.append(q)
    return images, texts


def timed(judge, n_images: int) -> tuple[float, int]:
    images, texts = pairs(n_images)
    judge.load()
    judge.answer(images[:len(QUESTIONS) + 1], texts[:len(QUESTIONS) + 1])      # warm-up, not timed
    t = time.perf_counter()
    answers = judge.answer(images, texts)
    assert len(answers) == len(texts) and all(a.p_yes is not None for a in answers)
    return time.perf_counter() - t, len(texts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.05, help="seconds the fake endpoint takes per answer")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8, help="(image, question) pairs per forward pass, local judge")
    a = ap.parse_args()
    from evalsuite.judges import make_judge
    from evalsuite.judges.tiny import save_tiny_vlm
    from tests.fakes.common import FakeServer
    from tests.fakes.vlm_fake import VlmFake

    print(f"machine: {machine()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_tiny_vlm(Path(tmp) / "tiny-vlm")
        secs, n = timed(make_judge(f"hf:path={folder},batch={a.batch}"), a.images)
        rows.append((f"miniature Qwen2.5-VL judge (hf, batch {a.batch})", secs, n))
    fake = VlmFake(latency=a.latency)
    os.environ["BENCH_VLM_KEY"] = fake.secret
    with FakeServer(fake) as srv:
        for conc in (1, a.concurrency):
            spec = f"openai:{srv.url}/v1,model=fake,key_env=BENCH_VLM_KEY,concurrency={conc}"
            secs, n = timed(make_judge(spec), a.images)
            rows.append((f"fake endpoint, {a.latency * 1000:.0f} ms/answer, concurrency {conc}", secs, n))
    print(f"{a.images} images x {len(QUESTIONS) + 1} questions each, one run:")
    for name, secs, n in rows:
        print(f"  {name:<52} {a.images / secs:8.2f} images/s  {n / secs:8.1f} questions/s  ({secs:.2f} s)")


if __name__ == "__main__":
    main()
