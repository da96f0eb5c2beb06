"""Backends: one file per backend, a registry from spec string to factory, SDKs imported lazily.

Spec strings:  NAME[@QUANT][:ARGS]   with ARGS a comma-separated list of key=value pairs, where the
first element may be a positional reference without '=' (a folder, a service's model):
    flux-dev                       flux-dev:steps=20,guidance=3.5
    flux-schnell:path=/weights     folder:mj_exports/          folder:mj_exports/,size=1024x1024
Everything that changes pixels goes into the item's cache key (see runfolder.item_key).

A backend object is a `backends.base.Backend` (remote services: `RemoteService`) and provides:
    name, spec, label            registry name, the spec string, a folder-safe label
    default_size                 (width, height) when the run sets no --size
    max_batch_size               items per generate() call
    labelled_noise               True for random-weight miniature models
    config() -> dict             fully resolved settings for run.json (never secrets)
    key() -> dict                the settings that change pixels
    accepts(prompt) -> bool      False skips the prompt for this backend (reference: no target text)
    item_extra(prompt, seed)     per-item addition to the cache key (folder: the file's hash) or None
    prepare()                    cheap checks and weight resolution before anything is generated
    load()                       heavy model load, timed by the runner
    generate(requests) -> list[GenResult]
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from PIL import Image

from ..errors import EvalsuiteError
from ..prompts import Prompt


@dataclass(frozen=True)
class BackendSpec:
    raw: str
    name: str
    quant: str | None = None
    ref: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    repeated: dict[str, list[str]] = field(default_factory=dict)  # keys given more than once (lora=...)


@dataclass
class GenRequest:
    prompt: Prompt
    seed: int
    width: int
    height: int


@dataclass
class GenResult:
    status: str = "ok"                       # ok | failed | filtered
    image: Image.Image | None = None
    error: str | None = None
    applied: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None                  # the seed actually applied (None: not applicable)


@dataclass(frozen=True)
class RegistryEntry:
    module: str
    factory: str
    summary: str
    takes_ref: bool = False
    default_ref: str | None = None     # presets: the service model they stand for; comfyui: the default URL
    ref_with_quant: tuple[str, ...] = ()  # quant schemes that take a positional ref (flux-dev@gguf:PATH)


REGISTRY: dict[str, RegistryEntry] = {
    "flux-dev": RegistryEntry("evalsuite.backends.flux", "flux_dev",
                              "FLUX.1 [dev] via diffusers (gated weights, CUDA GPU with ~24 GB bf16 or offload)",
                              ref_with_quant=("gguf",)),
    "flux-schnell": RegistryEntry("evalsuite.backends.flux", "flux_schnell",
                                  "FLUX.1 [schnell] via diffusers (Apache-2.0, CUDA GPU with ~24 GB bf16 or offload)",
                                  ref_with_quant=("gguf",)),
    "flux-tiny": RegistryEntry("evalsuite.backends.flux", "flux_tiny",
                               "miniature random-weight FluxPipeline built offline: NOISE images, for demos and tests",
                               ref_with_quant=("gguf",)),
    "sdxl": RegistryEntry("evalsuite.backends.sdxl", "sdxl",
                          "Stable Diffusion XL base 1.0 via diffusers (CUDA GPU with ~10 GB fp16 or offload)"),
    "sdxl-tiny": RegistryEntry("evalsuite.backends.sdxl", "sdxl_tiny",
                               "miniature random-weight StableDiffusionXLPipeline built offline: NOISE images, for tests"),
    "reference": RegistryEntry("evalsuite.backends.reference", "reference",
                               "legible renders of each prompt's target text: the OCR ceiling"),
    "folder": RegistryEntry("evalsuite.backends.folder", "folder",
                            "import images made elsewhere (e.g. Midjourney): folder:PATH", takes_ref=True),
    "dummy": RegistryEntry("evalsuite.backends.dummy", "dummy",
                           "deterministic pattern images, no torch and no model: NOISE images, for fast tests"),
}

# Remote services (see backends/remote.py and docs/remote.md): SERVICE:MODEL specs plus short presets.
_R = "evalsuite.backends."
REGISTRY.update({
    "replicate": RegistryEntry(_R + "replicate", "replicate", "Replicate: replicate:OWNER/MODEL", takes_ref=True),
    "fal": RegistryEntry(_R + "fal", "fal", "fal.ai queue: fal:APP, e.g. fal:fal-ai/flux/dev", takes_ref=True),
    "bfl": RegistryEntry(_R + "bfl", "bfl", "Black Forest Labs API: bfl:ENDPOINT, e.g. bfl:flux-pro-1.1", takes_ref=True),
    "openai": RegistryEntry(_R + "openai_images", "openai_images", "OpenAI Images: openai:MODEL, e.g. openai:gpt-image-2",
                            takes_ref=True),
    "hf": RegistryEntry(_R + "hf_inference", "hf_inference", "Hugging Face Inference Providers: "
                        "hf:PROVIDER/OWNER/MODEL, e.g. hf:fal-ai/black-forest-labs/FLUX.1-dev", takes_ref=True),
    "comfyui": RegistryEntry(_R + "comfyui", "comfyui", "a ComfyUI server running the shipped Flux workflow or yours: "
                             "comfyui[:URL]", takes_ref=True, default_ref="http://127.0.0.1:8188"),
})
PRESETS = {
    "replicate-flux-pro": ("replicate", "black-forest-labs/flux-1.1-pro"),
    "replicate-flux-schnell": ("replicate", "black-forest-labs/flux-schnell"),
    "replicate-flux-dev": ("replicate", "black-forest-labs/flux-dev"),
    "bfl-flux-pro-1.1": ("bfl", "flux-pro-1.1"),
    "bfl-flux-dev": ("bfl", "flux-dev"),
    "fal-flux-dev": ("fal", "fal-ai/flux/dev"),
    "fal-flux-schnell": ("fal", "fal-ai/flux/schnell"),
    "fal-flux-pro": ("fal", "fal-ai/flux-pro/v1.1"),
    "bfl-flux-pro-ultra": ("bfl", "flux-pro-1.1-ultra"),
    "replicate-flux-pro-ultra": ("replicate", "black-forest-labs/flux-1.1-pro-ultra"),
    "openai-gpt-image-2": ("openai", "gpt-image-2"),
    "hf-flux-dev": ("hf", "fal-ai/black-forest-labs/FLUX.1-dev"),
}
# Presets of models the service has shut down: still recognised, so that using one fails at plan time with
# the shutdown date and the replacement (evalsuite/data/services/*.yaml) instead of "unknown backend".
RETIRED_PRESETS = {
    "openai-dall-e-3": ("openai", "dall-e-3"),
    "openai-gpt-image-1": ("openai", "gpt-image-1"),
}
for _name, (_svc, _ref) in {**PRESETS, **RETIRED_PRESETS}.items():
    REGISTRY[_name] = RegistryEntry(REGISTRY[_svc].module, REGISTRY[_svc].factory, f"= {_svc}:{_ref}",
                                    default_ref=_ref)

# ---- planning (--dry-run): what would run where, without a GPU or keys ----

_PLANNING: list[list[str]] = []   # a stack: the innermost planning() collects what is missing


@contextlib.contextmanager
def planning():
    """While planning, a local backend that needs a CUDA GPU this machine lacks is built as it would be on a
    GPU (same device type and dtype, so the same item keys) and the missing GPU is noted instead of raised.
    Yields the list of notes (one line each: what is missing to run for real)."""
    notes: list[str] = []
    _PLANNING.append(notes)
    try:
        yield notes
    finally:
        _PLANNING.pop()


def plan_note(line: str) -> bool:
    """Record a missing requirement when planning (True), or tell the caller to raise (False)."""
    if not _PLANNING:
        return False
    if line not in _PLANNING[-1]:
        _PLANNING[-1].append(line)
    return True


# Diffusers' argument names accepted as aliases of ours; the spec is rewritten to the canonical name, so
# labels, run.json and cache keys are those of the canonical spelling.
OPTION_ALIASES = {"num_inference_steps": "steps", "guidance_scale": "guidance"}


def _canonical_option(raw: str, part: str, given: set[str]) -> str:
    k, v = (s.strip() for s in part.split("=", 1))
    canon = OPTION_ALIASES.get(k)
    if canon is None:
        return part
    if canon in given:
        raise EvalsuiteError(f"backend '{raw}': option '{k}' is diffusers' name for '{canon}', which is given too; "
                             "keep one")
    return f"{canon}={v}"


_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(?:@(?P<quant>[A-Za-z0-9_.-]+))?(?::(?P<args>.*))?$", re.S)


def parse_spec(raw: str) -> BackendSpec:
    raw = raw.strip()
    m = _SPEC.match(raw)
    if not raw or not m:
        raise EvalsuiteError(f"backend '{raw}': expected NAME[@QUANT][:key=value,...]")
    name, quant, args = m.group("name"), m.group("quant"), m.group("args")
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, list(REGISTRY), n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise EvalsuiteError(f"unknown backend '{name}'{hint} (known: {', '.join(REGISTRY)})")
    ref = None
    options: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    takes_ref = REGISTRY[name].takes_ref or quant in REGISTRY[name].ref_with_quant
    if args is not None:
        parts = [p for p in args.split(",")]
        if takes_ref and parts and "=" not in parts[0]:
            ref = parts.pop(0).strip()
        if any(p.split("=", 1)[0].strip() in OPTION_ALIASES for p in parts if "=" in p):
            given = {p.split("=", 1)[0].strip() for p in parts if "=" in p}
            parts = [_canonical_option(raw, p, given) if "=" in p else p for p in parts]
            head = raw[: len(raw) - len(args)]
            raw = head + ",".join(([ref] if ref is not None else []) + parts)
        for part in parts:
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise EvalsuiteError(f"backend '{raw}': option '{part}' is not key=value")
            k, v = (s.strip() for s in part.split("=", 1))
            if k in options:
                repeated.setdefault(k, [options[k]]).append(v)
            options[k] = v
    if ref is None:
        ref = REGISTRY[name].default_ref
    if takes_ref and not ref:
        where = f"{name}@{quant}" if quant else name
        raise EvalsuiteError(f"backend '{raw}': {where} needs a reference, e.g. {where}:PATH")
    return BackendSpec(raw=raw, name=name, quant=quant, ref=ref, options=options, repeated=repeated)


def make_backend(raw: str):
    """Spec string -> backend object (imports the backend's module, and so its SDK, only now)."""
    spec = parse_spec(raw)
    entry = REGISTRY[spec.name]
    module = importlib.import_module(entry.module)
    factory: Callable[[BackendSpec], Any] = getattr(module, entry.factory)
    backend = factory(spec)
    from .base import Backend

    if not isinstance(backend, Backend):   # the runner reads the typed attributes of backends/base.py
        raise TypeError(f"{entry.module}.{entry.factory} returned a {type(backend).__name__}, not a Backend")
    return backend


# Options that change how an image is fetched, never its pixels: they stay out of labels and cache keys, so
# a rerun with another timeout, retry count, concurrency, price, base URL or credential reuses every item.
TRANSPORT_OPTIONS = ("concurrency", "retries", "retry_base", "timeout", "poll_interval", "price", "max_download_mb",
                     "base_url")


def pixel_spec(spec: str) -> str:
    """The spec string without transport options and without a URL reference (a server address such as
    comfyui:http://user:PASS@host:8188 is transport too), e.g.
    'replicate:a/b,timeout=5,steps=4' -> 'replicate:a/b,steps=4'."""
    spec = spec.strip()
    m = _SPEC.match(spec)
    if not m or m.group("args") is None:
        return spec
    head = m.group("name") + (f"@{m.group('quant')}" if m.group("quant") else "")
    parts = m.group("args").split(",")
    kept = []
    for i, part in enumerate(parts):
        k = part.split("=", 1)[0].strip() if "=" in part else None
        if k is None and "://" in part:
            continue
        if k in TRANSPORT_OPTIONS:
            continue
        kept.append(part)
    if len(kept) == len(parts):
        return spec
    return head + (":" + ",".join(kept) if kept else "")


def label_for(spec: str) -> str:
    """A folder-safe, stable label for a spec string: it depends only on what changes pixels (pixel_spec)."""
    import hashlib

    spec = pixel_spec(spec)
    label = re.sub(r"[^A-Za-z0-9._@=-]+", "_", spec).replace("=", "-").strip("_.")
    if len(label) > 64:
        label = label[:48].rstrip("_.") + "_" + hashlib.sha256(spec.encode()).hexdigest()[:8]
    return label or "backend"


# ---- option parsing shared by backends (the same argument names everywhere) ----

def parse_size(value: str, where: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)[xX](\d+)", value.strip())
    if not m:
        raise EvalsuiteError(f"{where}: size '{value}' is not WIDTHxHEIGHT (e.g. 1024x1024)")
    w, h = int(m.group(1)), int(m.group(2))
    if w < 8 or h < 8 or w > 8192 or h > 8192:
        raise EvalsuiteError(f"{where}: size {w}x{h} is out of range (8..8192)")
    return w, h


def _as_bool(v: str, where: str) -> bool:
    if v.lower() in ("1", "true", "yes", "on"):
        return True
    if v.lower() in ("0", "false", "no", "off"):
        return False
    raise EvalsuiteError(f"{where}: expected true/false, got '{v}'")


def take_options(spec: BackendSpec, schema: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Validate spec.options against schema {key: type or tuple of choices or callable}; fill defaults.

    Types: int (>= 0 unless named in POSITIVE), float, bool, str, 'size', a tuple of allowed strings.
    """
    out = dict(defaults)
    for k, v in spec.options.items():
        where = f"backend '{spec.raw}': option '{k}'"
        if k not in schema:
            close = difflib.get_close_matches(k, list(schema), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise EvalsuiteError(f"backend '{spec.raw}': unknown option '{k}'{hint} (known: {', '.join(sorted(schema))})")
        t = schema[k]
        try:
            if t is int:
                val: Any = int(v)
                if val < 0 or (k in POSITIVE and val == 0):
                    raise EvalsuiteError(f"{where} must be {'>= 1' if k in POSITIVE else '>= 0'}, got {v}")
            elif t is float:
                val = float(v)
                if not math.isfinite(val):
                    raise EvalsuiteError(f"{where} must be a finite number, got '{v}'")
                if val < 0:
                    raise EvalsuiteError(f"{where} must be >= 0, got {v}")
            elif t is bool:
                val = _as_bool(v, where)
            elif t == "size":
                val = parse_size(v, where)
            elif isinstance(t, tuple):
                if v not in t:
                    raise EvalsuiteError(f"{where} must be one of {', '.join(t)}, got '{v}'")
                val = v
            else:
                val = v
        except ValueError:
            raise EvalsuiteError(f"{where}: '{v}' is not a valid {getattr(t, '__name__', t)}") from None
        out[k] = val
    return out


POSITIVE = {"steps", "batch_size", "max_sequence_length"}


def describe_backends() -> list[tuple[str, str]]:
    return [(name, e.summary) for name, e in REGISTRY.items()]
