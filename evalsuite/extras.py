"""Optional features and the pip extra that installs each: one-line errors when a package is missing.

The core install (`pip install evalsuite`) generates locally (torch, diffusers, transformers), scores
(open_clip, EasyOCR with its English models, RapidOCR), imports folders and talks to Replicate. The rest:

    remote   fal-client, openai        (fal, OpenAI Images backends)
    quant    optimum-quanto, torchao, gguf (@int8, @int4, @torchao-int8, @fp8, @gguf:PATH)
    lora     peft                      (lora=PATH on local backends)
    rapidocr rapidocr_onnxruntime      (kept in the core today; the extra names it explicitly)
    test     pytest, selenium, ...     (the test suite)
    all      every extra above except test
"""

from __future__ import annotations

import importlib.util

from .errors import BackendError

# import name -> (distribution, extra)
PACKAGES = {
    "fal_client": ("fal-client", "remote"),
    "openai": ("openai", "remote"),
    "optimum.quanto": ("optimum-quanto", "quant"),
    "torchao": ("torchao", "quant"),
    "gguf": ("gguf", "quant"),
    "peft": ("peft", "lora"),
    "rapidocr_onnxruntime": ("rapidocr_onnxruntime", "rapidocr"),
}


def install_hint(module: str) -> str:
    """`pip install 'evalsuite[EXTRA]'` (or the bare package when it belongs to no extra)."""
    dist, extra = PACKAGES.get(module, (module, None))
    return f"pip install 'evalsuite[{extra}]'" if extra else f"pip install {dist}"


def has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a broken half-installed module
        return False


def require(module: str, feature: str) -> None:
    """Raise a one-line BackendError naming the extra when `module` cannot be imported."""
    if has(module):
        return
    dist, _ = PACKAGES.get(module, (module, None))
    raise BackendError(f"{feature} needs the package {dist}, which is not installed: {install_hint(module)}")
