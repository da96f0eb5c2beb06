"""Stable Diffusion XL base 1.0 through diffusers' StableDiffusionXLPipeline, and the offline miniature sdxl-tiny.

Options (the same names as the FLUX backends):
    steps, guidance, size=WxH, batch_size, device=auto|cpu|cuda|cuda:N|mps, dtype=auto|bf16|fp16|fp32,
    offload=none|model|sequential, vae_slicing=true|false, vae_tiling=true|false, path=LOCAL_FOLDER,
    revision=REF, lora=PATH[:SCALE] (repeatable), fuse_lora=true|false,
    damage=X (sdxl-tiny only, TEST-ONLY: deliberately damaged UNet weights)
Quantized variants quantize the UNet: sdxl@int8, @int4, @torchao-int8, @fp8, @nf4, @bnb-int8.
From the hub, half precision loads the repo's fp16 files (variant fp16), fp32 the full-precision ones.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..errors import EvalsuiteError
from . import BackendSpec, GenRequest, GenResult, label_for, take_options
from .base import Backend
from . import quant as Q
from .localutil import (DTYPES, apply_memory_options, check_repeated, damage_module, load_loras, parse_loras,
                        pipeline_weight_memory, release_accelerator_memory, resolve_device, resolve_weights)

MODELS = {
    "sdxl": dict(model_id="stabilityai/stable-diffusion-xl-base-1.0", steps=30, guidance=5.0, size=(1024, 1024),
                 licence="CreativeML Open RAIL++-M"),
    "sdxl-tiny": dict(model_id=None, steps=4, guidance=5.0, size=(64, 64), licence="random weights built offline"),
}

SCHEMA: dict[str, Any] = {
    "steps": int, "guidance": float, "size": "size", "batch_size": int, "device": str,
    "dtype": ("auto", "bf16", "fp16", "fp32"), "offload": ("none", "model", "sequential"),
    "vae_slicing": bool, "vae_tiling": bool, "path": str, "revision": str, "lora": str, "fuse_lora": bool,
}
TINY_SCHEMA = {**SCHEMA, "damage": float}

QUANTS = ("int8", "int4", "torchao-int8", "fp8", "nf4", "bnb-int8")
COMPONENTS = ["unet", "text_encoder", "text_encoder_2", "vae"]
GPU_NEEDED = "SDXL (3.5B parameters) needs one (about 10 GB in fp16, less with offload=model)"


def hub_patterns(variant: str | None) -> list[str]:
    """Only what the pipeline loads: the repo also holds fp32 and fp16 copies, flax, onnx and openvino files."""
    v = f".{variant}" if variant else ""
    return ["model_index.json", "scheduler/*", "tokenizer/*", "tokenizer_2/*", "*/config.json",
            f"text_encoder/model{v}.safetensors", f"text_encoder_2/model{v}.safetensors",
            f"unet/diffusion_pytorch_model{v}.safetensors", f"vae/diffusion_pytorch_model{v}.safetensors"]


class SDXLBackend(Backend):
    max_batch_size = 1

    def __init__(self, spec: BackendSpec):
        self.spec = spec.raw
        self.name = spec.name
        self.label = label_for(spec.raw)
        model = MODELS[spec.name]
        self.model_id: str | None = model["model_id"]
        self.licence = model["licence"]
        self.labelled_noise = spec.name == "sdxl-tiny"
        check_repeated(spec)
        opts = take_options(spec, TINY_SCHEMA if spec.name == "sdxl-tiny" else SCHEMA, {
            "steps": model["steps"], "guidance": model["guidance"], "size": model["size"], "batch_size": 1,
            "device": "auto", "dtype": "auto", "offload": "none", "vae_slicing": False, "vae_tiling": False,
            "path": None, "revision": None, "lora": None, "fuse_lora": False, "damage": 0.0,
        })
        self.opts = opts
        self.default_size = tuple(opts["size"])
        self.max_batch_size = opts["batch_size"]
        self.device, self.dtype_name = resolve_device(self.name, spec.raw, opts,
                                                      GPU_NEEDED if self.name == "sdxl" else None)
        self.quant: str | None = spec.quant
        if self.quant:
            Q.check_scheme(spec.raw, self.quant, self.device, QUANTS)
        self.loras = parse_loras(spec)
        if opts["fuse_lora"] and not self.loras:
            raise EvalsuiteError(f"backend '{spec.raw}': fuse_lora=true needs lora=PATH")
        if self.loras and self.quant in ("int8", "int4"):
            raise EvalsuiteError(f"backend '{spec.raw}': lora= cannot be combined with @{self.quant} (diffusers cannot load "
                                 "LoRA weights into optimum-quanto layers); use @torchao-int8, @nf4 or @gguf with LoRA")
        if opts["fuse_lora"] and self.quant:
            raise EvalsuiteError(f"backend '{spec.raw}': fuse_lora=true cannot be combined with @{self.quant} "
                                 "(fusing needs full-precision weights); drop fuse_lora")
        # The hub repo's fp16 files for half precision; a local folder loads whatever it holds.
        self.variant = "fp16" if self.model_id and not opts["path"] and self.dtype_name != "fp32" else None
        self.local_path: Path | None = None
        self.revision: str | None = opts["revision"]
        self.weights_id: str | None = None
        self.weight_memory: dict[str, Any] | None = None
        self.pipe = None

    def prepare(self) -> None:
        self.local_path, self.revision, self.weights_id = resolve_weights(
            self.spec, self.name, self.model_id, self.revision, self.opts["path"], hub_patterns(self.variant))
        if self.weights_id is None:
            from .tiny import TINY_SDXL_VERSION

            self.weights_id = TINY_SDXL_VERSION

    def _quantization(self, with_versions: bool) -> dict[str, Any] | None:
        if not self.quant:
            return None
        d = Q.describe(self.quant, ["unet"], self.dtype_name)
        if with_versions:
            d["library_version"] = Q.library_version(self.quant)
        return d

    def config(self) -> dict[str, Any]:
        o = self.opts
        cfg = {
            "pipeline": "StableDiffusionXLPipeline", "model_id": self.model_id, "revision": self.revision,
            "variant": self.variant, "path": str(self.local_path) if o["path"] else None,
            "weights": self.weights_id, "licence": self.licence, "steps": o["steps"], "guidance": o["guidance"],
            "size": list(self.default_size), "batch_size": o["batch_size"], "device": self.device,
            "dtype": self.dtype_name, "offload": o["offload"], "vae_slicing": o["vae_slicing"],
            "vae_tiling": o["vae_tiling"], "quantization": self._quantization(with_versions=True),
            "loras": [dict(lo) for lo in self.loras], "fuse_lora": o["fuse_lora"],
            "weight_memory": self.weight_memory,
        }
        if o["damage"]:
            cfg["damage"] = {"amount": o["damage"], "note": "TEST-ONLY: UNet weights deliberately damaged"}
        return cfg

    def key(self) -> dict[str, Any]:
        o = self.opts
        k = {
            "pipeline": "StableDiffusionXLPipeline", "weights": self.weights_id, "variant": self.variant,
            "steps": o["steps"], "guidance": o["guidance"], "device_type": self.device.split(":")[0],
            "dtype": self.dtype_name, "quantization": self._quantization(with_versions=False),
            "vae_tiling": o["vae_tiling"],
        }
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

    def load(self) -> None:
        import torch
        from diffusers import StableDiffusionXLPipeline
        from diffusers.utils import logging as dlogging

        dlogging.disable_progress_bar()
        dtype = getattr(torch, DTYPES[self.dtype_name])
        q = self.quant
        with tempfile.TemporaryDirectory(prefix="evalsuite-sdxl-") as tmp:
            if self.local_path is not None and not self.opts["damage"]:
                qc = Q.pipeline_quant_config(q, ["unet"], "unet", dtype) if q else None
                pipe = StableDiffusionXLPipeline.from_pretrained(self.local_path, dtype=dtype, variant=self.variant,
                                                                 quantization_config=qc)
            else:
                if self.local_path is not None:
                    pipe = StableDiffusionXLPipeline.from_pretrained(self.local_path, dtype=dtype, variant=self.variant)
                else:
                    from .tiny import build_tiny_sdxl

                    pipe = build_tiny_sdxl()
                    if dtype != torch.float32:
                        pipe = pipe.to(dtype=dtype)
                damage_module(pipe.unet, self.opts["damage"])
                if q and Q.SCHEMES[q]["in_memory"]:
                    Q.quantize_in_memory(pipe, q, ["unet"])
                elif q:  # bitsandbytes quantizes while loading: save, then load through from_pretrained
                    pipe.save_pretrained(tmp)
                    pipe = StableDiffusionXLPipeline.from_pretrained(
                        tmp, dtype=dtype, quantization_config=Q.pipeline_quant_config(q, ["unet"], "unet", dtype))
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
        multiple = self.pipe.vae_scale_factor
        if w % multiple or h % multiple:
            raise EvalsuiteError(f"backend '{self.spec}': size {w}x{h} must be a multiple of {multiple}")
        # One generator per item on the execution device: batched == one-by-one for the same seeds.
        generators = [torch.Generator(self.device).manual_seed(r.seed) for r in requests]
        out = self.pipe(
            [r.prompt.prompt for r in requests], generator=generators, width=w, height=h,
            num_inference_steps=self.opts["steps"], guidance_scale=self.opts["guidance"], output_type="pil",
        )
        applied = {"steps": self.opts["steps"], "guidance": self.opts["guidance"], "width": w, "height": h,
                   "dtype": self.dtype_name, "device": self.device, "quantization": self.quant}
        return [GenResult(image=img, seed=r.seed, applied=dict(applied)) for img, r in zip(out.images, requests)]

    def close(self) -> None:
        self.pipe = None
        release_accelerator_memory(self.device)


def sdxl(spec: BackendSpec) -> SDXLBackend:
    return SDXLBackend(spec)


def sdxl_tiny(spec: BackendSpec) -> SDXLBackend:
    return SDXLBackend(spec)
