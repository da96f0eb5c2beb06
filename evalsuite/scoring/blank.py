"""Blank images: `image_blank` = 1 when an image is (nearly) one flat colour, else 0.

A generator that breaks (a black image from an fp16 overflow, a safety filter that paints the image over,
a LoRA that collapses the output) still writes a valid PNG; this scorer counts those images so a table shows
the share of them per backend. An image is blank when the standard deviation of its RGB levels (uint8) is
below metrics.fidelity.BLANK_STD, the same rule the fidelity gate of `evalsuite compare` applies. Torch-free
and fast (`evalsuite score RUN --scorers blank`); not in the default scorer set.
"""

from __future__ import annotations

from typing import Any

from .base import Scorer, ScoreOptions

BLANK_SCORER_VERSION = "blank/v1"


class BlankScorer(Scorer):
    kind = "blank"
    batch_size = 16

    @classmethod
    def from_options(cls, opts: ScoreOptions) -> list[Scorer]:
        from ..metrics.fidelity import BLANK_STD

        return [cls("blank", "pixel-std", BLANK_SCORER_VERSION,
                    {"scorer": "blank", "version": BLANK_SCORER_VERSION, "std_below": BLANK_STD}, options=opts)]

    def inputs(self, prompt) -> dict[str, Any]:
        return {}            # the image alone decides

    def metrics_for(self, prompt) -> list[tuple[str, str]]:
        return [("image_blank", "")]

    def score_batch(self, jobs, images, store) -> list:
        import numpy as np

        from ..metrics.fidelity import BLANK_STD

        out = []
        for image in images:
            arr = np.asarray(image, dtype=np.float64)
            std = float(arr.std()) if arr.size else 0.0
            out.append(({("image_blank", ""): float(std < BLANK_STD)},
                        {"pixel_std": std, "mean_level": float(arr.mean()) if arr.size else 0.0}))
        return out
