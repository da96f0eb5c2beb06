"""Whether each registered backend can run here, and why not: for `evalsuite backends`.

Cheap checks only (no model load, no network): key environment variables, importable packages, a CUDA
GPU, weights in the Hugging Face cache.
"""

from __future__ import annotations

import importlib.util
import os

from . import REGISTRY
from .keys import service_class_of

def __getattr__(name: str):
    # SERVICE_NEEDS: {module: (key variables, package)}, derived from the service classes (backends/keys.py)
    if name == "SERVICE_NEEDS":
        from .keys import service_classes

        return {c.__module__.rsplit(".", 1)[-1]: (c.key_env, c.package) for c in service_classes()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def preset_model(name: str):
    """The service table's ModelInfo for a preset (or SERVICE:MODEL registry name), else None."""
    from . import PRESETS, RETIRED_PRESETS
    from .services import model_info

    if name in PRESETS or name in RETIRED_PRESETS:
        svc, ref = {**PRESETS, **RETIRED_PRESETS}[name]
        return model_info(svc, ref)
    return None


def facts(name: str) -> str:
    """'lifecycle, price' of a preset from its service's dated table; '' for other backends."""
    info = preset_model(name)
    if info is None:
        return ""
    return info.lifecycle() if info.status == "shut_down" else f"{info.lifecycle()}, {info.price_text()}"


def check_live(log=print) -> int:
    """Ask each service that publishes a live model list (OpenAI: GET /v1/models with shutdown_date) and compare
    it with the table; services without a key set are skipped with a note. Returns the number of mismatches."""
    from . import PRESETS, RETIRED_PRESETS
    from .services import models

    problems = 0
    if not os.environ.get("OPENAI_API_KEY", "").strip():
        log("openai: skipped (set OPENAI_API_KEY to ask GET /v1/models)")
    else:
        from .openai_images import live_models

        try:
            live = live_models(os.environ.get("OPENAI_BASE_URL") or None)
        except Exception as e:  # noqa: BLE001 - a failed check is reported, not raised
            from .remote import one_line

            log(f"openai: GET /v1/models failed: {one_line(f'{type(e).__name__}: {e}', 300)}")
            return 1
        table = models("openai")
        wanted = {ref for svc, ref in {**PRESETS, **RETIRED_PRESETS}.values() if svc == "openai"} | set(table)
        for model in sorted(wanted):
            info = table.get(model)
            listed = model in live
            said = info.lifecycle() if info else "not in the table"
            if listed:
                now = f"listed, shutdown_date {live[model]}" if live[model] else "listed, no shutdown date"
            else:
                now = "not listed"
            ok = (listed and info is not None and info.status == "active" and not live[model]) or \
                 (not listed and info is not None and info.status == "shut_down") or \
                 (listed and info is not None and info.status == "deprecated" and live[model] == info.shutdown_date)
            problems += not ok
            log(f"openai:{model:<24} table: {said:<40} service: {now}{'' if ok else '  <- differs'}")
    for svc in ("bfl", "fal", "replicate", "hf", "comfyui"):
        log(f"{svc}: no live model list with lifecycle dates to ask; table checked {_checked(svc)}")
    return problems


def _checked(service: str) -> str:
    from .services import table

    return str(table(service)["checked"])


def availability(name: str) -> tuple[bool, str]:
    """(usable, reason when not) for a registry name."""
    entry = REGISTRY[name]
    info = preset_model(name)
    if info is not None and info.status == "shut_down":
        return False, f"{info.service}:{info.model} {info.lifecycle()}; saved images: folder:PATH"
    service = service_class_of(entry.module)
    if service is not None:
        envs, package = service.key_env, service.package
        if not _has_package(package):
            from ..extras import install_hint

            return False, f"missing package '{package}': {install_hint(package)}"
        if envs and not any(os.environ.get(e, "").strip() for e in envs):
            return False, f"missing key: set {' or '.join(envs)}"
        return True, service.needs_note.format(default_ref=entry.default_ref)
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
