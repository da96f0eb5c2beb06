"""`dummy`: deterministic pattern images in milliseconds, no torch, no model, no key: for fast tests and demos.

Each image is a smooth colour field drawn from a hash of (prompt text, seed, size): the same item gives the
same pixels on every machine, another prompt or seed gives another picture. Its images are labelled as noise
(like the random-weight miniature models): scores of them say nothing about any model.
Options: size=WxH (default 64x64), fail=ID[;ID...] (those prompt ids come back failed, to test failure paths),
delay=SECONDS (each image takes that long, like a slow model: a run can be interrupted mid-way), batch_size=N
(images per generate call, default 16); delay and batch_size are not in the key: pixels do not change.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np
from PIL import Image

from ..errors import EvalsuiteError
from . import BackendSpec, GenRequest, GenResult, label_for, take_options
from .base import Backend

DUMMY_VERSION = "dummy/v1"   # bump when the drawing below changes (pixels change)


def pattern(prompt: str, seed: int, width: int, height: int) -> Image.Image:
    """A colour field: two hashed colours blended along a hashed direction, plus a hashed stripe frequency."""
    h = hashlib.sha256(f"{DUMMY_VERSION}\0{prompt}\0{seed}\0{width}x{height}".encode()).digest()
    a, b = np.frombuffer(h[:3], np.uint8).astype(np.float32), np.frombuffer(h[3:6], np.uint8).astype(np.float32)
    angle = h[6] / 255.0 * np.pi
    freq = 1 + h[7] % 7
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (np.cos(angle) * x / max(width, 1) + np.sin(angle) * y / max(height, 1)) / 1.5 + 0.25
    t = np.clip(t + 0.15 * np.sin(2 * np.pi * freq * t), 0.0, 1.0)[..., None]
    return Image.fromarray((a * (1 - t) + b * t).round().astype(np.uint8), "RGB")


class DummyBackend(Backend):
    max_batch_size = 16
    labelled_noise = True

    def __init__(self, spec: BackendSpec):
        self.spec = spec.raw
        self.name = spec.name
        self.label = label_for(spec.raw)
        if spec.quant:
            raise EvalsuiteError(f"backend '{spec.raw}': dummy takes no quantization")
        self.opts = take_options(spec, {"size": "size", "fail": str, "delay": float, "batch_size": int},
                                 {"size": (64, 64), "fail": "", "delay": 0.0, "batch_size": 16})
        self.max_batch_size = self.opts["batch_size"]
        self.default_size = tuple(self.opts["size"])
        self.fail = {s for s in self.opts["fail"].split(";") if s}

    def config(self) -> dict[str, Any]:
        return {"generator": DUMMY_VERSION, "size": list(self.default_size), "batch_size": self.max_batch_size,
                **({"delay_s": self.opts["delay"]} if self.opts["delay"] else {})}

    def key(self) -> dict[str, Any]:
        return {"generator": DUMMY_VERSION, **({"fail": sorted(self.fail)} if self.fail else {})}

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        out = []
        for r in requests:
            time.sleep(self.opts["delay"])
            if r.prompt.id in self.fail:
                out.append(GenResult(status="failed", error=f"dummy: asked to fail {r.prompt.id}", seed=r.seed))
                continue
            out.append(GenResult(image=pattern(r.prompt.prompt, r.seed, r.width, r.height), seed=r.seed,
                                 applied={"width": r.width, "height": r.height}))
        return out


def dummy(spec: BackendSpec) -> DummyBackend:
    return DummyBackend(spec)
