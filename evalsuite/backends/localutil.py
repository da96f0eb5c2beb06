"""Small functions shared by the local diffusers backends (flux.py, sdxl.py): device and dtype
resolution, weight resolution (local folder / Hugging Face cache or hub), memory options, LoRA,
weight-memory accounting and the TEST-ONLY weight damage of the miniature models.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from ..errors import BackendError, EvalsuiteError
from . import plan_note

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def folder_fingerprint(folder: Path) -> str:
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


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def big_file_fingerprint(path: Path, edge: int = 4 << 20) -> str:
    """Identity of a multi-GB checkpoint without reading all of it: size + sha256 of its first and last 4 MiB."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(edge))
        if size > 2 * edge:
            f.seek(size - edge)
            h.update(f.read(edge))
        else:
            h.update(f.read())
    return f"size{size}-{h.hexdigest()[:16]}"


def resolve_device(name: str, raw: str, opts: dict[str, Any], gpu_needed: str | None) -> tuple[str, str]:
    """(device, dtype name). gpu_needed: the one-line reason a real model wants CUDA (None: CPU is fine).

    While planning (--dry-run, backends.planning()) a missing GPU is noted, not raised, and the backend is
    resolved as it would be on a GPU (cuda, bf16), so its item keys are those of the real run."""
    import torch

    device = opts["device"]
    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif gpu_needed:
            msg = f"{name}: no CUDA GPU found; {gpu_needed}; pass device=cpu to run on the CPU anyway"
            if not plan_note(msg):
                raise BackendError(msg)
            device = "cuda"
        else:
            device = "cpu"
    if device == "cuda":
        from ..distributed import local_cuda_device

        device = local_cuda_device()  # cuda:LOCAL_RANK under torchrun/accelerate launch, else cuda
    if device.startswith("cuda") and not torch.cuda.is_available() and opts["device"] != "auto":
        msg = f"backend '{raw}': device={device} but CUDA is not available here"
        if not plan_note(msg):
            raise BackendError(msg)
    if opts["offload"] != "none" and not device.startswith("cuda"):
        raise BackendError(f"backend '{raw}': offload={opts['offload']} needs a CUDA device")
    dtype = opts["dtype"]
    if dtype == "auto":
        dtype = "bf16" if device.startswith("cuda") else "fp32"
    return device, dtype


def resolve_weights(raw: str, name: str, model_id: str | None, revision: str | None, path: str | None,
                    patterns: list[str]) -> tuple[Path | None, str | None, str | None]:
    """Find a pipeline's weights: a local folder (path=), the Hugging Face cache/hub, or nothing (built in memory).

    Returns (local folder or None, revision, weights id for the cache key).
    """
    if path:
        p = Path(path).expanduser()
        if not (p / "model_index.json").is_file():
            raise BackendError(f"backend '{raw}': path={p} is not a diffusers pipeline folder (no model_index.json)")
        p = p.resolve()
        return p, revision, f"local:{folder_fingerprint(p)}"
    if model_id is None:
        return None, revision, None
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    try:
        local = snapshot_download(model_id, revision=revision, allow_patterns=patterns)
    except GatedRepoError:
        raise BackendError(
            f"{name}: {model_id} is gated: accept its licence on its Hugging Face page, then set "
            "HF_TOKEN (or run `hf auth login`) with a token that has access"
        ) from None
    except RevisionNotFoundError:
        raise BackendError(f"{name}: revision '{revision}' not found for {model_id}") from None
    except (LocalEntryNotFoundError, RepositoryNotFoundError, OSError) as e:
        raise BackendError(
            f"{name}: weights for {model_id} are not in the Hugging Face cache and could not be "
            f"downloaded ({type(e).__name__}); run `hf download {model_id}` on a connected machine "
            "or pass path=/folder/with/the/diffusers/weights"
        ) from None
    local_path = Path(local)
    rev = local_path.name  # snapshots/<commit sha>
    return local_path, rev, f"{model_id}@{rev}"


def apply_memory_options(pipe, device: str, opts: dict[str, Any]) -> None:
    """offload=none|model|sequential, vae_slicing, vae_tiling."""
    offload = opts["offload"]
    if offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
    if opts["vae_slicing"]:
        pipe.vae.enable_slicing()
    if opts["vae_tiling"]:
        pipe.vae.enable_tiling()


def check_repeated(spec, allowed: tuple[str, ...] = ("lora",)) -> None:
    for k in spec.repeated:
        if k not in allowed:
            raise EvalsuiteError(f"backend '{spec.raw}': option '{k}' is given more than once")


# ---- LoRA ----

def parse_loras(spec) -> list[dict[str, Any]]:
    """lora=PATH[:scale], repeatable -> [{path, scale, sha256}] (checked now: before anything is written)."""
    values = spec.repeated.get("lora") or ([spec.options["lora"]] if "lora" in spec.options else [])
    if values:
        from ..extras import require

        require("peft", f"backend '{spec.raw}': option 'lora'")
    out = []
    for v in values:
        path, scale = v, 1.0
        if ":" in v:
            head, tail = v.rsplit(":", 1)
            try:
                scale = float(tail)
                path = head
            except ValueError:
                pass
        where = f"backend '{spec.raw}': option 'lora={v}'"
        if not math.isfinite(scale):
            raise EvalsuiteError(f"{where}: the scale must be a finite number, got '{scale}'")
        p = Path(path).expanduser()
        if not p.exists():
            raise EvalsuiteError(f"{where}: no such file or folder (lora= takes a local LoRA .safetensors file or a "
                                 "folder holding pytorch_lora_weights.safetensors; fetch hub LoRAs with `hf download`)")
        if p.is_dir():
            files = sorted(p.glob("*.safetensors"))
            if len(files) != 1:
                raise EvalsuiteError(f"{where}: the folder must hold exactly one .safetensors file, found {len(files)}")
            p = files[0]
        if p.suffix != ".safetensors":
            raise EvalsuiteError(f"{where}: expected a .safetensors file, got {p.name}")
        if not -10.0 <= scale <= 10.0:
            raise EvalsuiteError(f"{where}: scale {scale} is out of range (-10..10)")
        out.append({"path": str(p.resolve()), "scale": scale, "sha256": file_sha256(p)})
    return out


def load_loras(pipe, loras: list[dict[str, Any]], fuse: bool, raw: str) -> None:
    """load_lora_weights each adapter, weight them with set_adapters, optionally fuse_lora."""
    if not loras:
        return
    names = []
    for i, lo in enumerate(loras):
        name = f"lora{i}"
        try:
            pipe.load_lora_weights(lo["path"], adapter_name=name)
        except Exception as e:
            msg = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
            raise BackendError(f"backend '{raw}': LoRA {lo['path']} could not be loaded into {type(pipe).__name__}: "
                               f"{msg}") from None
        names.append(name)
    pipe.set_adapters(names, adapter_weights=[lo["scale"] for lo in loras])
    if fuse:
        pipe.fuse_lora(adapter_names=names, lora_scale=1.0)
        pipe.unload_lora_weights()  # the deltas are in the base weights now; drop the adapter layers


# ---- memory accounting ----

def tensor_bytes(t) -> int:
    """Bytes a tensor really holds, looking inside quantized tensor subclasses (quanto, torchao)."""
    import torch

    if type(t) not in (torch.Tensor, torch.nn.Parameter) and hasattr(t, "__tensor_flatten__"):
        names, _ = t.__tensor_flatten__()
        return sum(tensor_bytes(getattr(t, n)) for n in names)
    return t.numel() * t.element_size()


def logical_numel(t) -> int:
    """Number of weights a tensor stands for (GGUF parameters are packed bytes; recover the count)."""
    qt = getattr(t, "quant_type", None)
    if qt is not None:
        import gguf

        block, type_size = gguf.GGML_QUANT_SIZES[qt]
        return t.numel() // type_size * block
    return t.numel()


def module_weight_bytes(module) -> int:
    """Parameter memory of a module (buffers such as quanto's activation scales are not weights)."""
    return sum(tensor_bytes(t) for t in module.parameters())


def _unquantized_bytes(t, dtype_bytes: int) -> int:
    if getattr(t, "quant_type", None) is not None or t.is_floating_point():
        return logical_numel(t) * dtype_bytes
    return tensor_bytes(t)


def pipeline_weight_memory(pipe, components: list[str], dtype_bytes: int) -> dict[str, Any]:
    """Parameter memory per component: bytes held now, and bytes the same weights take unquantized in the
    run's dtype (equal when nothing is quantized)."""
    import torch

    out: dict[str, Any] = {}
    total = 0
    for name in components:
        m = getattr(pipe, name, None)
        if not isinstance(m, torch.nn.Module):
            continue
        now = module_weight_bytes(m)
        full = sum(_unquantized_bytes(t, dtype_bytes) for t in m.parameters())
        out[name] = {"bytes": now, "unquantized_bytes": full}
        total += now
    out["total_bytes"] = total
    return out


# ---- TEST-ONLY: damaged weights for the miniature models ----

def damage_module(module, amount: float, seed: int = 1234) -> None:
    """TEST-ONLY aid: add Gaussian noise of `amount` x each weight tensor's std to every parameter.

    Used by `flux-tiny:damage=X` / `sdxl-tiny:damage=X` to make a deliberately worse candidate so that
    regression checks can be shown failing. Deterministic; amount 0 changes nothing.
    """
    import torch

    if amount == 0:
        return
    g = torch.Generator("cpu").manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
            if p.numel() < 2:
                continue
            std = p.detach().float().std()
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            p.add_((noise * std * amount).to(p.dtype).to(p.device))


def release_accelerator_memory(device: str) -> None:
    """After a backend is done: return its GPU memory before the next backend loads. On the CPU reference
    counting already frees the weights, and a full garbage-collection pass (~0.3 s) would buy nothing."""
    if not device.startswith("cuda"):
        return
    import gc

    import torch

    gc.collect()
    torch.cuda.empty_cache()
