"""FLUX.1 [dev] and [schnell] through diffusers' FluxPipeline, and the offline miniature flux-tiny.

Options (the same names on every local backend):
    steps, guidance, size=WxH, max_sequence_length, batch_size,
    device=auto|cpu|cuda|cuda:N|mps, dtype=auto|bf16|fp16|fp32, offload=none|model|sequential,
    vae_slicing=true|false, vae_tiling=true|false, path=LOCAL_FOLDER, revision=REF
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from ..errors import BackendError, EvalsuiteError
from . import BackendSpec, GenRequest, GenResult, label_for, take_options

# Only the diffusers-layout folders: the FLUX repos also hold a 23 GB single-file checkpoint.
HUB_PATTERNS = [
    "model_index.json", "scheduler/*", "text_encoder/*", "text_encoder_2/*",
    "tokenizer/*", "tokenizer_2/*", "transformer/*", "vae/*",
]

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
}

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def _folder_fingerprint(folder: Path) -> str:
    """Identity of local weights: config contents plus names and sizes of every file."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and ".cache" not in p.parts:
            rel = p.relative_to(folder).as_posix()
            h.update(rel.encode())
            if p.suffix in (".json", ".txt", ".model"):
                h.update(p.read_bytes())
            else:
                h.update(str(p.stat().st_size).encode())
    return h.hexdigest()[:16]


class FluxBackend:
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
        if spec.quant:
            raise EvalsuiteError(
                f"backend '{spec.raw}': quantized variants ('@{spec.quant}') are not available in this "
                "version of evalsuite; run the unquantized backend"
            )
        opts = take_options(spec, SCHEMA, {
            "steps": model["steps"], "guidance": model["guidance"], "size": model["size"],
            "max_sequence_length": model["max_sequence_length"], "batch_size": 1, "device": "auto",
            "dtype": "auto", "offload": "none", "vae_slicing": False, "vae_tiling": False,
            "path": None, "revision": None,
        })
        if opts["max_sequence_length"] > 512:
            raise EvalsuiteError(f"backend '{spec.raw}': max_sequence_length is at most 512 for FLUX.1")
        self.opts = opts
        self.default_size = tuple(opts["size"])
        self.max_batch_size = opts["batch_size"]
        self.device, self.dtype_name = self._resolve_device(spec.raw, opts)
        self.local_path: Path | None = None
        self.revision: str | None = opts["revision"]
        self.weights_id: str | None = None
        self.pipe = None

    # -- resolution (cheap, before anything is generated) --

    def _resolve_device(self, raw: str, opts: dict[str, Any]) -> tuple[str, str]:
        import torch

        device = opts["device"]
        if device == "auto":
            if torch.cuda.is_available():
                device = "cuda"
            elif self.name in ("flux-dev", "flux-schnell"):
                raise BackendError(
                    f"{self.name}: no CUDA GPU found; FLUX.1 (12B parameters) needs one "
                    "(about 24 GB in bf16, less with offload=model); pass device=cpu to run on the CPU anyway"
                )
            else:
                device = "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(f"backend '{raw}': device={device} but CUDA is not available here")
        if opts["offload"] != "none" and not device.startswith("cuda"):
            raise BackendError(f"backend '{raw}': offload={opts['offload']} needs a CUDA device")
        dtype = opts["dtype"]
        if dtype == "auto":
            dtype = "bf16" if device.startswith("cuda") else "fp32"
        return device, dtype

    def prepare(self) -> None:
        """Find the weights: a local folder (path=), the built-in miniature, or the Hugging Face cache/hub."""
        if self.opts["path"]:
            p = Path(self.opts["path"]).expanduser()
            if not (p / "model_index.json").is_file():
                raise BackendError(
                    f"backend '{self.spec}': path={p} is not a diffusers pipeline folder (no model_index.json)"
                )
            self.local_path = p.resolve()
            self.weights_id = f"local:{_folder_fingerprint(self.local_path)}"
            return
        if self.model_id is None:  # flux-tiny, built in memory
            from .tiny import TINY_FLUX_VERSION

            self.weights_id = TINY_FLUX_VERSION
            return
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError,
                                            RepositoryNotFoundError, RevisionNotFoundError)

        try:
            local = snapshot_download(self.model_id, revision=self.revision, allow_patterns=HUB_PATTERNS)
        except GatedRepoError:
            raise BackendError(
                f"{self.name}: {self.model_id} is gated: accept its licence on its Hugging Face page, then set "
                "HF_TOKEN (or run `hf auth login`) with a token that has access"
            ) from None
        except RevisionNotFoundError:
            raise BackendError(f"{self.name}: revision '{self.revision}' not found for {self.model_id}") from None
        except (LocalEntryNotFoundError, RepositoryNotFoundError, OSError) as e:
            raise BackendError(
                f"{self.name}: weights for {self.model_id} are not in the Hugging Face cache and could not be "
                f"downloaded ({type(e).__name__}); run `hf download {self.model_id}` on a connected machine "
                "or pass path=/folder/with/the/diffusers/weights"
            ) from None
        self.local_path = Path(local)
        self.revision = self.local_path.name  # snapshots/<commit sha>
        self.weights_id = f"{self.model_id}@{self.revision}"

    # -- identity --

    def config(self) -> dict[str, Any]:
        o = self.opts
        return {
            "pipeline": "FluxPipeline", "model_id": self.model_id, "revision": self.revision,
            "path": str(self.local_path) if self.opts["path"] else None, "weights": self.weights_id,
            "licence": self.licence, "steps": o["steps"], "guidance": o["guidance"],
            "size": list(self.default_size), "max_sequence_length": o["max_sequence_length"],
            "batch_size": o["batch_size"], "device": self.device, "dtype": self.dtype_name,
            "offload": o["offload"], "vae_slicing": o["vae_slicing"], "vae_tiling": o["vae_tiling"],
            "quantization": None,
        }

    def key(self) -> dict[str, Any]:
        o = self.opts
        return {
            "pipeline": "FluxPipeline", "weights": self.weights_id, "steps": o["steps"],
            "guidance": o["guidance"], "max_sequence_length": o["max_sequence_length"],
            "device_type": self.device.split(":")[0], "dtype": self.dtype_name, "quantization": None,
            "vae_tiling": o["vae_tiling"],
        }

    def accepts(self, prompt) -> bool:
        return True

    def item_extra(self, prompt, seed):
        return None

    # -- work --

    def load(self) -> None:
        import torch
        from diffusers import FluxPipeline
        from diffusers.utils import logging as dlogging

        dlogging.disable_progress_bar()
        dtype = getattr(torch, DTYPES[self.dtype_name])
        if self.local_path is not None:
            pipe = FluxPipeline.from_pretrained(self.local_path, dtype=dtype)
        else:
            from .tiny import build_tiny_flux

            pipe = build_tiny_flux()
            if dtype != torch.float32:
                pipe = pipe.to(dtype=dtype)
        offload = self.opts["offload"]
        if offload == "model":
            pipe.enable_model_cpu_offload(device=self.device)
        elif offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)
        if self.opts["vae_slicing"]:
            pipe.vae.enable_slicing()
        if self.opts["vae_tiling"]:
            pipe.vae.enable_tiling()
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
                   "device": self.device}
        return [GenResult(image=img, seed=r.seed, applied=dict(applied)) for img, r in zip(out.images, requests)]

    def close(self) -> None:
        self.pipe = None
        import gc

        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:
            pass


def flux_dev(spec: BackendSpec) -> FluxBackend:
    return FluxBackend(spec)


def flux_schnell(spec: BackendSpec) -> FluxBackend:
    return FluxBackend(spec)


def flux_tiny(spec: BackendSpec) -> FluxBackend:
    return FluxBackend(spec)


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
