"""`reference`: each prompt's target text rendered legibly (dark on light, word-wrapped, several fonts in
rotation). Its OCR accuracy is the ceiling any model can reach with the same OCR engine. Prompts
without target text are skipped. Options: size=WxH (default 512x512; the run's --size wins).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from . import BackendSpec, GenRequest, GenResult, label_for, take_options
from .base import Backend

REFERENCE_VERSION = "reference/v1"
FONT_FILES = ("DejaVuSans-Bold.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansMono-Bold.ttf")
BACKGROUND = (246, 244, 238)
INK = (22, 22, 22)


def font_paths() -> list[Path]:
    """DejaVu fonts shipped inside matplotlib (always installed with evalsuite); found without importing
    matplotlib (its data folder is mpl-data/ inside the package, what matplotlib.get_data_path() returns)."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("matplotlib is not installed (its DejaVu fonts render the reference images)")
    root = Path(list(spec.submodule_search_locations)[0]) / "mpl-data" / "fonts" / "ttf"
    paths = [root / f for f in FONT_FILES]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"fonts not found: {', '.join(map(str, missing))}")
    return paths


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, max_w: int) -> list[str]:
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        for word in para.split():
            trial = f"{line} {word}".strip()
            if line and draw.textlength(trial, font=font) > max_w:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return lines


def render_text(targets: list[str], width: int, height: int, font_path: Path) -> Image.Image:
    """Render each target on its own block of lines, as large as fits, centred."""
    img = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    margin = max(4, width // 16)
    max_w, max_h = width - 2 * margin, height - 2 * margin
    size = max(8, height // 6)
    while True:
        font = ImageFont.truetype(str(font_path), size)
        blocks = [_wrap(draw, t, font, max_w) for t in targets]
        lines = [ln for b in blocks for ln in b]
        asc, desc = font.getmetrics()
        line_h = int((asc + desc) * 1.25)
        gap = line_h // 2
        total_h = line_h * len(lines) + gap * (len(blocks) - 1)
        widest = max(draw.textlength(ln, font=font) for ln in lines)
        if (total_h <= max_h and widest <= max_w) or size <= 8:
            break
        size = max(8, int(size * 0.9))
    y = (height - total_h) // 2
    for bi, block in enumerate(blocks):
        for ln in block:
            x = (width - draw.textlength(ln, font=font)) / 2
            draw.text((x, y), ln, font=font, fill=INK)
            y += line_h
        y += gap
    return img


class ReferenceBackend(Backend):
    max_batch_size = 16
    labelled_noise = False

    def __init__(self, spec: BackendSpec):
        self.spec = spec.raw
        self.name = spec.name
        self.label = label_for(spec.raw)
        if spec.quant:
            from ..errors import EvalsuiteError

            raise EvalsuiteError(f"backend '{spec.raw}': reference takes no quantization")
        self.opts = take_options(spec, {"size": "size"}, {"size": (512, 512)})
        self.default_size = tuple(self.opts["size"])
        self.fonts: list[Path] = []

    def config(self) -> dict[str, Any]:
        return {"renderer": REFERENCE_VERSION, "fonts": list(FONT_FILES), "size": list(self.default_size),
                "background": list(BACKGROUND), "ink": list(INK)}

    def key(self) -> dict[str, Any]:
        return {"renderer": REFERENCE_VERSION, "fonts": list(FONT_FILES)}

    def accepts(self, prompt) -> bool:
        return bool(prompt.target_text)

    def item_extra(self, prompt, seed):
        return {"targets": prompt.target_text}

    def prepare(self) -> None:
        self.fonts = font_paths()

    def load(self) -> None:
        if not self.fonts:
            self.prepare()

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        out = []
        for r in requests:
            # Font rotation: a stable function of prompt id and seed.
            idx = (int(hashlib.sha256(r.prompt.id.encode()).hexdigest(), 16) + r.seed) % len(self.fonts)
            img = render_text(r.prompt.target_text, r.width, r.height, self.fonts[idx])
            out.append(GenResult(image=img, seed=r.seed,
                                 applied={"font": self.fonts[idx].name, "width": r.width, "height": r.height}))
        return out


def reference(spec: BackendSpec) -> ReferenceBackend:
    return ReferenceBackend(spec)
