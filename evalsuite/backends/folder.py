"""`folder:PATH`: import images made elsewhere (Midjourney has no API: its terms forbid automation).

File names, matched by prompt id and seed (png, jpg, jpeg or webp, any case):
    PATH/<prompt-id>_<seed>.<ext>        e.g. neon-open-24_0.png
    PATH/<prompt-id>/<seed>.<ext>        e.g. neon-open-24/0.webp
`folder:PATH,label=NAME` names the backend NAME in tables, charts and the run folder (default: a label
made from the spec). Items with no file are stored as failed ("no file"); files that match no (prompt, seed) of the run are
listed in run.json and printed. The image is stored as PNG; the original file's hash is kept.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import EvalsuiteError
from . import BackendSpec, GenRequest, GenResult, label_for, take_options
from .base import Backend

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
_FLAT = re.compile(r"^(?P<id>.+)_(?P<seed>\d+)$")
_LABEL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._@-]{0,63}$")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FolderBackend(Backend):
    max_batch_size = 16
    labelled_noise = False

    def __init__(self, spec: BackendSpec):
        self.spec = spec.raw
        self.name = spec.name
        if spec.quant:
            raise EvalsuiteError(f"backend '{spec.raw}': folder takes no quantization")
        self.opts = take_options(spec, {"size": "size", "label": str}, {"size": (1024, 1024), "label": None})
        self.label = self.opts["label"] or label_for(spec.raw)
        if not _LABEL.match(self.label) or ".." in self.label:
            raise EvalsuiteError(f"backend '{spec.raw}': option 'label' {self.label!r} is not a safe folder name "
                                 "(letters, digits, '.', '_', '-', '@'; at most 64 characters)")
        self.default_size = tuple(self.opts["size"])
        self.root = Path(spec.ref).expanduser()
        if self.root.exists() and not self.root.is_dir():
            raise EvalsuiteError(f"backend '{spec.raw}': {self.root} is a file, not a folder of images")
        if not self.root.is_dir():
            raise EvalsuiteError(f"backend '{spec.raw}': folder {self.root} does not exist")
        self.files = self._index()

    def _index(self) -> dict[tuple[str, int], Path]:
        files: dict[tuple[str, int], Path] = {}
        for p in sorted(self.root.rglob("*")):
            if not p.is_file() or p.suffix.lower() not in EXTENSIONS:
                continue
            rel = p.relative_to(self.root)
            if len(rel.parts) == 1:
                m = _FLAT.match(p.stem)
                if not m:
                    continue
                k = (m.group("id"), int(m.group("seed")))
            elif len(rel.parts) == 2 and p.stem.isdigit():
                k = (rel.parts[0], int(p.stem))
            else:
                continue
            if k in files:
                raise EvalsuiteError(f"backend '{self.spec}': two files for prompt {k[0]!r} seed {k[1]}: "
                                     f"{files[k].relative_to(self.root)} and {rel}")
            files[k] = p
        return files

    def unmatched(self, planned: set[tuple[str, int]]) -> list[str]:
        """Image files in the folder that match no planned (prompt id, seed)."""
        return sorted(str(p.relative_to(self.root)) for k, p in self.files.items() if k not in planned)

    def config(self) -> dict[str, Any]:
        return {"folder": str(self.root.resolve()), "patterns": ["<prompt-id>_<seed>.<ext>", "<prompt-id>/<seed>.<ext>"],
                "files": len(self.files)}

    def key(self) -> dict[str, Any]:
        return {"folder": str(self.root.resolve())}

    def accepts(self, prompt) -> bool:
        return True

    def item_extra(self, prompt, seed):
        p = self.files.get((prompt.id, seed))
        return {"file_sha256": _sha256(p) if p else None}

    def prepare(self) -> None:
        pass

    def load(self) -> None:
        pass

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        out = []
        for r in requests:
            p = self.files.get((r.prompt.id, r.seed))
            if p is None:
                out.append(GenResult(status="failed", seed=r.seed,
                                     error=f"no file for prompt {r.prompt.id!r} seed {r.seed} in {self.root}"))
                continue
            try:
                with Image.open(p) as im:
                    im.verify()
                with Image.open(p) as im:
                    img = im.convert("RGB")
            except Exception as e:  # unreadable image: this item fails, the run goes on
                out.append(GenResult(status="failed", seed=r.seed, error=f"{p}: not a readable image ({type(e).__name__})"))
                continue
            out.append(GenResult(image=img, seed=r.seed, applied={
                "source_file": str(p.relative_to(self.root)), "source_sha256": _sha256(p),
                "width": img.width, "height": img.height}))
        return out


def folder(spec: BackendSpec) -> FolderBackend:
    return FolderBackend(spec)
