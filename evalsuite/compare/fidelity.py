"""Fidelity of the candidate's images to the baseline's beyond PSNR/SSIM: CLIP image-image cosine (when the
weights load) and LPIPS (only when its backbone weights are already on disk; never downloaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..metrics.stats import paired_summary


def clip_fidelity(matched, images, clip_model, state) -> dict[str, Any]:
    """CLIP image-image cosine per pair, when the CLIP weights load (never downloaded into a missing number)."""
    from PIL import Image

    from ..scoring.clip import ClipUnavailable, load_clip, parse_clip_model

    if not matched:
        return {"missing_reason": "no paired images"}
    spec = parse_clip_model(clip_model)
    if "error" in state:
        return {"missing_reason": state["error"], "model": spec.identity}
    try:
        cm = load_clip(spec)
    except ClipUnavailable as e:
        state["error"] = str(e)
        return {"missing_reason": str(e), "model": spec.identity}
    cos: dict[tuple[str, int], float] = {}
    for i in range(0, len(matched), 16):
        chunk = matched[i:i + 16]
        ea = cm.encode_images([Image.fromarray(images[k][0]) for k in chunk])
        eb = cm.encode_images([Image.fromarray(images[k][1]) for k in chunk])
        for k, v in zip(chunk, (ea * eb).sum(dim=-1).tolist()):
            cos[k] = float(v)
    acc: dict[str, list[float]] = {}
    for (p, _), v in cos.items():
        acc.setdefault(p, []).append(v)
    return {**paired_summary({p: float(np.mean(v)) for p, v in acc.items()}), "model": spec.identity}


LPIPS_BACKBONE = "alexnet-owt-7be5be79.pth"


def lpips_fidelity(matched, images) -> dict[str, Any]:
    """LPIPS (torchmetrics, AlexNet) only when torchvision's AlexNet weights are already on disk."""
    try:
        import torch

        ckpt = Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONE
    except ImportError:
        return {"missing_reason": "torch is not installed"}
    if not ckpt.is_file():
        return {"missing_reason": f"LPIPS weights unavailable: torchvision's AlexNet backbone ({ckpt}) is not on "
                                  "disk and is never downloaded during a comparison; no substitute is computed"}
    if not matched:
        return {"missing_reason": "no paired images"}
    try:
        from torchmetrics.functional.image.lpips import learned_perceptual_image_patch_similarity as lpips
    except ImportError as e:
        return {"missing_reason": f"LPIPS unavailable: {e}"}
    acc: dict[str, list[float]] = {}
    for p, s in matched:
        a, b = images[(p, s)]
        if a.shape != b.shape:
            continue
        ta = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 127.5 - 1
        tb = torch.from_numpy(b).permute(2, 0, 1)[None].float() / 127.5 - 1
        acc.setdefault(p, []).append(float(lpips(ta, tb, net_type="alex")))
    return {**paired_summary({p: float(np.mean(v)) for p, v in acc.items()}), "net": "alex",
            "note": "lower is more faithful"}
