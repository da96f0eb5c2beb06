"""Shared bits of the bench scripts: machine line, a tiny random open_clip model (throughput only)."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TINY_CLIP_CFG = {"embed_dim": 64, "quick_gelu": True,
                 "vision_cfg": {"image_size": 224, "layers": 2, "width": 128, "patch_size": 32, "head_width": 32},
                 "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 2}}


def machine() -> str:
    import torch

    from evalsuite.envinfo import cpu_name

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    try:
        load = " load avg %.1f/%.1f/%.1f" % os.getloadavg()
    except OSError:
        load = ""
    return (f"{cpu_name()} ({os.cpu_count()} cores,{load}), {gpu}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}")


SMALL_CLIP_CFG = {"embed_dim": 16, "quick_gelu": True,
                  "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
                  "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def tiny_clip(folder: Path, small: bool = False) -> str:
    """A random-weight open_clip model saved as CONFIG.json:CKPT (224 px input, or 32 px with small=True):
    for throughput and plumbing, never quality."""
    import open_clip
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    name = "bench-small-clip" if small else "bench-tiny-clip"
    cfg = folder / f"{name}.json"
    cfg.write_text(json.dumps(SMALL_CLIP_CFG if small else TINY_CLIP_CFG))
    open_clip.add_model_config(cfg)
    torch.manual_seed(0)
    torch.save(open_clip.create_model(name, pretrained=None).state_dict(), folder / "tiny.pt")
    return f"{cfg}:{folder / 'tiny.pt'}"
