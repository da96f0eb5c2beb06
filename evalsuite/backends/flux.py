"""FLUX.1 [dev] and [schnell] through diffusers' FluxPipeline, and the offline miniature flux-tiny.

Options (the same names on every local backend):
    steps, guidance, size=WxH, max_sequence_length, batch_size,
    device=auto|cpu|cuda|cuda:N|mps, dtype=auto|bf16|fp16|fp32, offload=none|model|sequential,
    vae_slicing=true|false, vae_tiling=true|false, path=LOCAL_FOLDER, revision=REF,
    lora=PATH[:SCALE] (repeatable), fuse_lora=true|false, quant_t5=true|false (with @QUANT),
    damage=X (flux-tiny only, TEST-ONLY: deliberately damaged weights)
Quantized variants: NAME@int8, @int4, @torchao-int8, @fp8, @nf4, @bnb-int8, @gguf:PATH (see quant.py).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import BackendError, EvalsuiteError
from . import BackendSpec, GenRequest, GenResult, label_for, take_options
from .base import Backend
from . import quant as Q
from .localutil import (DTYPES, apply_memory_options, big_file_fingerprint, check_repeated, damage_module,
                        folder_fingerprint, load_loras, parse_loras, pipeline_weight_memory,
                        release_accelerator_memory, resolve_device, resolve_weights)


# Only the diffusers-layout folders: the FLUX repos also hold a 23 GB single-file checkpoint.
HUB_PATTERNS = [
    "model_index.json", "scheduler/*", "text_encoder/*", "text_encoder_2/*",
    "tokenizer/*", "tokenizer_2/*", "transformer/*", "vae/*",
]



def hub_patterns(quant: str | None) -> list[str]:
    """With @gguf the transformer comes from the GGUF file: fetch only its config, not its 23 GB of weights."""
    if quant == "gguf":
        return [p for p in HUB_PATTERNS if p != "transformer/*"] + ["transformer/config.json"]
    return list(HUB_PATTERNS)


MODELS = {
    "flux-dev": dict(model_id="black-forest-labs/FLUX.1-dev", steps=28, guidance=3.5,
                     max_sequence_length=512, size=(1024, 1024), gated=True,
                     licence="FLUX.1 [dev] Non-Commercial License"),
    "flux-schnell": dict(model_id="black-forest-labs/FLUX.1-schnell", steps=4, guidance=0.0,
                         max_sequence_length=256, size=(1024, 1024), gated=False, licence="Apache-2.0"),
    "flux-tiny": dict(model_id=None, steps=4, guidance=0.0, max_sequence_length=64, size=(64, 64),
                      gated=False, licence="random weights built offline"),
}

SCHEMA: dict[str, Any] = {
    "steps": int, "guidance": float, "size": "size", "max_sequence_length": int, "batch_size": int,
    "device": str, "dtype": ("auto", "bf16", "fp16", "fp32"), "offload": ("none", "model", "sequential"),
    "vae_slicing": bool, "vae_tiling": bool, "path": str, "revision": str,
    "lora": str, "fuse_lora": bool, "quant_t5": bool,
}
TINY_SCHEMA = {**SCHEMA, "damage": float}

QUANTS = ("int8", "int4", "torchao-int8", "fp8", "nf4", "bnb-int8", "gguf")
COMPONENTS = ["transformer", "text_encoder", "text_encoder_2", "vae"]
GPU_NEEDED = "FLUX.1 (12B parameters) needs one (about 24 GB in bf16, less with offload=model or @int8/@nf4)"


class FluxBackend(Backend):
    max_batch_size = 1

    def __init__(self, spec: BackendSpec):
        self.spec = spec.raw
        self.name = spec.name
        self.label = label_for(spec.raw)
        model = MODELS[spec.name]
        self.model_id: str | None = model["model_id"]
        self.gated = model["gated"]
        self.licence = model["licence"]
        self.labelled_noise = spec.name == "flux-tiny"
        check_repeated(spec)
        opts = take_options(spec, TINY_SCHEMA if spec.name == "flux-tiny" else SCHEMA, {
            "steps": model["steps"], "guidance": model["guidance"], "size": model["size"],
            "max_sequence_length": model["max_sequence_length"], "batch_size": 1, "device": "auto",
            "dtype": "auto", "offload": "none", "vae_slicing": False, "vae_tiling": False,
            "path": None, "revision": None, "lora": None, "fuse_lora": False, "quant_t5": False, "damage": 0.0,
        })
        if opts["max_sequence_length"] > 512:
            raise EvalsuiteError(f"backend '{spec.raw}': max_sequence_length is at most 512 for FLUX.1")
        self.opts = opts
        self.default_size = tuple(opts["size"])
        self.max_batch_size = opts["batch_size"]
        self.device, self.dtype_name = resolve_device(
            self.name, spec.raw, opts, GPU_NEEDED if self.name in ("flux-dev", "flux-schnell") else None)
        # Quantization: @SCHEME, checked now (a CUDA-only scheme on this machine is a one-line error).
        self.quant: str | None = spec.quant
        self.gguf_path: Path | None = None
        if self.quant:
            Q.check_scheme(spec.raw, self.quant, self.device, QUANTS)
            if self.quant == "gguf":
                self.gguf_path = Path(spec.ref).expanduser()
                if not self.gguf_path.is_file():
                    raise EvalsuiteError(f"backend '{spec.raw}': GGUF file {self.gguf_path} not found")
                if opts["quant_t5"]:
                    raise EvalsuiteError(f"backend '{spec.raw}': quant_t5 is not available with @gguf "
                                         "(the GGUF file holds the transformer only)")
                if opts["damage"]:
                    raise EvalsuiteError(f"backend '{spec.raw}': damage= cannot be combined with @gguf "
                                         "(the GGUF file replaces the transformer)")
        elif opts["quant_t5"]:
            raise EvalsuiteError(f"backend '{spec.raw}': quant_t5=true needs a quantized variant, e.g. {self.name}@int8")
        self.quant_components = ["transformer"] + (["text_encoder_2"] if opts["quant_t5"] else [])
        self.loras = parse_loras(spec)
        if opts["fuse_lora"] and not self.loras:
            raise EvalsuiteError(f"backend '{spec.raw}': fuse_lora=true needs lora=PATH")
        if self.loras and self.quant in ("int8", "int4"):
            raise EvalsuiteError(f"backend '{spec.raw}': lora= cannot be combined with @{self.quant} (diffusers cannot load "
                                 "LoRA weights into optimum-quanto layers); use @torchao-int8, @nf4 or @gguf with LoRA")
        if opts["fuse_lora"] and self.quant:
            raise EvalsuiteError(f"backend '{spec.raw}': fuse_lora=true cannot be combined with @{self.quant} "
                                 "(fusing needs full-precision weights); drop fuse_lora")
        self.local_path: Path | None = None
        self.revision: str | None = opts["revision"]
        self.weights_id: str | None = None
        self.weight_memory: dict[str, Any] | None = None
        self.pipe = None

    # -- resolution (cheap, before anything is generated) --

    def prepare(self) -> None:
        """Find the weights: a local folder (path=), the built-in miniature, or the Hugging Face cache/hub."""
        self.local_path, self.revision, self.weights_id = resolve_weights(
            self.spec, self.name, self.model_id, self.revision, self.opts["path"], hub_patterns(self.quant))
        if self.weights_id is None:  # flux-tiny, built in memory
            from .tiny import TINY_FLUX_VERSION

            self.weights_id = TINY_FLUX_VERSION
        if self.gguf_path is not None:
            self.gguf_id = big_file_fingerprint(self.gguf_path)

    # -- identity --

    def _quantization(self, with_versions: bool) -> dict[str, Any] | None:
        if not self.quant:
            return None
        extra: dict[str, Any] = {}
        if self.quant == "gguf":
            extra["gguf"] = getattr(self, "gguf_id", None)
            if with_versions:
                extra["gguf_path"] = str(self.gguf_path)
        d = Q.describe(self.quant, self.quant_components, self.dtype_name, extra)
        if with_versions:
            d["library_version"] = Q.library_version(self.quant)
        return d

    def config(self) -> dict[str, Any]:
        o = self.opts
        cfg = {
            "pipeline": "FluxPipeline", "model_id": self.model_id, "revision": self.revision,
            "path": str(self.local_path) if self.opts["path"] else None, "weights": self.weights_id,
            "licence": self.licence, "steps": o["steps"], "guidance": o["guidance"],
            "size": list(self.default_size), "max_sequence_length": o["max_sequence_length"],
            "batch_size": o["batch_size"], "device": self.device, "dtype": self.dtype_name,
            "offload": o["offload"], "vae_slicing": o["vae_slicing"], "vae_tiling": o["vae_tiling"],
            "quantization": self._quantization(with_versions=True),
            "loras": [dict(lo) for lo in self.loras], "fuse_lora": o["fuse_lora"],
            "weight_memory": self.weight_memory,  # measured at load: bytes per component
        }
        if o["damage"]:
            cfg["damage"] = {"amount": o["damage"], "note": "TEST-ONLY: transformer weights deliberately damaged"}
        return cfg

    def key(self) -> dict[str, Any]:
        o = self.opts
        k = {
            "pipeline": "FluxPipeline", "weights": self.weights_id, "steps": o["steps"],
            "guidance": o["guidance"], "max_sequence_length": o["max_sequence_length"],
            "device_type": self.device.split(":")[0], "dtype": self.dtype_name,
            "quantization": self._quantization(with_versions=False), "vae_tiling": o["vae_tiling"],
        }
        # Added only when used, so that the keys (and items) of plain backends stay as they were.
        if self.loras:
            k["loras"] = [{"sha256": lo["sha256"], "scale": lo["scale"]} for lo in self.loras]
            k["fuse_lora"] = o["fuse_lora"]
        if o["damage"]:
            k["damage"] = o["damage"]
        return k

    def accepts(self, prompt) -> bool:
        return True

    def item_extra(self, prompt, seed):
        return None

    # -- work --

    def load(self) -> None:
        import torch
        from diffusers import FluxPipeline, FluxTransformer2DModel
        from diffusers.utils import logging as dlogging

        dlogging.disable_progress_bar()
        dtype = getattr(torch, DTYPES[self.dtype_name])
        q, comps = self.quant, self.quant_components
        with tempfile.TemporaryDirectory(prefix="evalsuite-flux-") as tmp:
            if q == "gguf":
                if self.local_path is not None:
                    config_folder = self.local_path
                else:  # flux-tiny: the transformer's config from the miniature, written to a temporary folder
                    from .tiny import build_tiny_flux

                    base = build_tiny_flux()
                    if dtype != torch.float32:
                        base = base.to(dtype=dtype)
                    base.transformer.save_config(Path(tmp) / "transformer")
                    config_folder = Path(tmp)
                try:
                    transformer = Q.load_gguf_transformer(FluxTransformer2DModel, str(self.gguf_path),
                                                          str(config_folder), dtype)
                except Exception as e:
                    raise BackendError(f"backend '{self.spec}': {self.gguf_path} is not a GGUF FLUX transformer "
                                       f"matching {config_folder}/transformer: {str(e).splitlines()[0][:300]}") from None
                if self.local_path is not None:
                    pipe = FluxPipeline.from_pretrained(self.local_path, transformer=transformer, dtype=dtype)
                else:
                    parts = {k: v for k, v in base.components.items() if k != "transformer"}
                    pipe = FluxPipeline(transformer=transformer, **parts)
            elif self.local_path is not None and not self.opts["damage"]:
                qc = Q.pipeline_quant_config(q, comps, "transformer", dtype) if q else None
                pipe = FluxPipeline.from_pretrained(self.local_path, dtype=dtype, quantization_config=qc)
            else:  # in memory: the miniature (or damaged weights), quantized by the library directly
                if self.local_path is not None:
                    pipe = FluxPipeline.from_pretrained(self.local_path, dtype=dtype)
                else:
                    from .tiny import build_tiny_flux

                    pipe = build_tiny_flux()
                    if dtype != torch.float32:
                        pipe = pipe.to(dtype=dtype)
                damage_module(pipe.transformer, self.opts["damage"])
                if q and Q.SCHEMES[q]["in_memory"]:
                    Q.quantize_in_memory(pipe, q, comps)
                elif q:  # bitsandbytes quantizes while loading: save, then load through from_pretrained
                    pipe.save_pretrained(tmp)
                    pipe = FluxPipeline.from_pretrained(
                        tmp, dtype=dtype, quantization_config=Q.pipeline_quant_config(q, comps, "transformer", dtype))
            load_loras(pipe, self.loras, self.opts["fuse_lora"], self.spec)
        self.weight_memory = pipeline_weight_memory(pipe, COMPONENTS, torch.empty((), dtype=dtype).element_size())
        apply_memory_options(pipe, self.device, self.opts)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        import torch

        if self.pipe is None:
            raise RuntimeError("load() first")
        w, h = requests[0].width, requests[0].height
        if any((r.width, r.height) != (w, h) for r in requests):
            raise ValueError("one batch must share one size")
        multiple = self.pipe.vae_scale_factor * 2
        if w % multiple or h % multiple:
            raise EvalsuiteError(f"backend '{self.spec}': size {w}x{h} must be a multiple of {multiple}")
        # One generator per item on the execution device: batched == one-by-one for the same seeds.
        generators = [torch.Generator(self.device).manual_seed(r.seed) for r in requests]
        out = self.pipe(
            [r.prompt.prompt for r in requests], generator=generators, width=w, height=h,
            num_inference_steps=self.opts["steps"], guidance_scale=self.opts["guidance"],
            max_sequence_length=self.opts["max_sequence_length"], output_type="pil",
        )
        applied = {"steps": self.opts["steps"], "guidance": self.opts["guidance"], "width": w, "height": h,
                   "max_sequence_length": self.opts["max_sequence_length"], "dtype": self.dtype_name,
                   "device": self.device, "quantization": self.quant}
        return [GenResult(image=img, seed=r.seed, applied=dict(applied)) for img, r in zip(out.images, requests)]

    def close(self) -> None:
        self.pipe = None
        release_accelerator_memory(self.device)


def flux_dev(spec: BackendSpec) -> FluxBackend:
    return FluxBackend(spec)


def flux_schnell(spec: BackendSpec) -> FluxBackend:
    return FluxBackend(spec)


def flux_tiny(spec: BackendSpec) -> FluxBackend:
    return FluxBackend(spec)


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
