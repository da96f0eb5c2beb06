"""Whether each registered backend can run here, and why not: for `evalsuite backends`.

Cheap checks only (no model load, no network): key environment variables, importable packages, a CUDA
GPU, weights in the Hugging Face cache.
"""

from __future__ import annotations

import importlib.util
import os

from . import REGISTRY

SERVICE_NEEDS = {
    "replicate": (("REPLICATE_API_TOKEN",), "replicate"),
    "fal": (("FAL_KEY", "FAL_KEY_ID"), "fal_client"),
    "bfl": (("BFL_API_KEY",), "httpx"),
    "openai_images": (("OPENAI_API_KEY",), "openai"),
    "comfyui": ((), "httpx"),
}


def _has_package(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def _hf_cached(model_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(model_id, "model_index.json"), str)
    except Exception:  # noqa: BLE001 - an unreadable cache counts as no weights
        return False


def availability(name: str) -> tuple[bool, str]:
    """(usable, reason when not) for a registry name."""
    entry = REGISTRY[name]
    module = entry.module.rsplit(".", 1)[-1]
    if module in SERVICE_NEEDS:
        envs, package = SERVICE_NEEDS[module]
        if not _has_package(package):
            from ..extras import install_hint

            return False, f"missing package '{package}': {install_hint(package)}"
        if envs and not any(os.environ.get(e, "").strip() for e in envs):
            return False, f"missing key: set {' or '.join(envs)}"
        if module == "comfyui":
            return True, f"needs a running ComfyUI server (default {entry.default_ref})"
        return True, ""
    if name in ("flux-dev", "flux-schnell", "sdxl"):
        if not _has_package("diffusers"):
            return False, "missing package 'diffusers'"
        if name == "sdxl":
            from .sdxl import MODELS
        else:
            from .flux import MODELS

        problems = []
        if not _cuda():
            problems.append("no CUDA GPU")
        if not _hf_cached(MODELS[name]["model_id"]):
            problems.append(f"no weights in the HF cache ({MODELS[name]['model_id']}; or pass path=)")
        return (not problems), "; ".join(problems)
    if name in ("flux-tiny", "sdxl-tiny"):
        return (_has_package("diffusers"), "" if _has_package("diffusers") else "missing package 'diffusers'")
    return True, ""
