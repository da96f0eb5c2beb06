"""Quantized variants of the local diffusers backends: the `@QUANT` part of a backend spec.

    @int8 / @int4     optimum-quanto qint8 / qint4 weights (runs on CPU and CUDA)
    @torchao-int8     torchao int8 weight-only (Int8WeightOnlyConfig; CPU and CUDA)
    @fp8              torchao float8 weight-only (Float8WeightOnlyConfig; CUDA GPUs of compute capability >= 8.9)
    @nf4 / @bnb-int8  bitsandbytes 4-bit NF4 / LLM.int8 (CUDA only)
    @gguf:PATH        a pre-quantized GGUF transformer checkpoint, loaded with from_single_file +
                      GGUFQuantizationConfig; the other components come from the base weights

Only the named components are quantized: the denoiser (FLUX transformer, SDXL UNet) and, with
`quant_t5=true`, FLUX's T5 encoder (text_encoder_2). Never the VAE or CLIP (a pipeline-wide config
without components would quantize them too, which the diffusers docs advise against).

Weights loaded with from_pretrained are quantized while loading, through diffusers'
PipelineQuantizationConfig with one config per component (quant_mapping: diffusers configs for the
denoiser, transformers configs for the text encoder). The in-memory miniature models get the same
library applied directly (quanto quantize+freeze, torchao quantize_), which gives the same numerics.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import warnings
from typing import Any

from ..errors import BackendError, EvalsuiteError

# scheme -> what it is: library (pip distribution), import name, needs CUDA, in-memory application possible
SCHEMES: dict[str, dict[str, Any]] = {
    "int8": dict(library="optimum-quanto", module="optimum.quanto", cuda=False, in_memory=True,
                 config={"weights": "qint8"}),
    "int4": dict(library="optimum-quanto", module="optimum.quanto", cuda=False, in_memory=True,
                 config={"weights": "qint4"}),
    "torchao-int8": dict(library="torchao", module="torchao", cuda=False, in_memory=True,
                         config={"quant_type": "Int8WeightOnlyConfig"}),
    "fp8": dict(library="torchao", module="torchao", cuda=True, min_capability=(8, 9), in_memory=True,
                config={"quant_type": "Float8WeightOnlyConfig"}),
    "nf4": dict(library="bitsandbytes", module="bitsandbytes", cuda=True, in_memory=False,
                config={"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": "run dtype"}),
    "bnb-int8": dict(library="bitsandbytes", module="bitsandbytes", cuda=True, in_memory=False,
                     config={"load_in_8bit": True}),
    "gguf": dict(library="gguf", module="gguf", cuda=False, in_memory=False,
                 config={"GGUFQuantizationConfig": {"compute_dtype": "run dtype"}}),
}


def torch_cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def check_scheme(raw: str, scheme: str, device: str, allowed: tuple[str, ...]) -> None:
    """One-line error when the scheme is unknown, not offered by this backend, or cannot run here."""
    if scheme not in SCHEMES:
        raise EvalsuiteError(f"backend '{raw}': unknown quantization '@{scheme}' (known: {', '.join(allowed)})")
    if scheme not in allowed:
        raise EvalsuiteError(f"backend '{raw}': '@{scheme}' is not offered for this backend (offered: {', '.join(allowed)})")
    s = SCHEMES[scheme]
    if s["cuda"] and not device.startswith("cuda"):
        raise BackendError(f"backend '{raw}': @{scheme} ({s['library']}) needs a CUDA GPU; device is {device} "
                           "(use @int8, @int4 or @torchao-int8 on the CPU)")
    if "min_capability" in s and torch_cuda_available():
        import torch

        cap = torch.cuda.get_device_capability(device)
        if tuple(cap) < s["min_capability"]:
            raise BackendError(f"backend '{raw}': @{scheme} needs a GPU of compute capability "
                               f"{'.'.join(map(str, s['min_capability']))} or newer (Ada/Hopper); this one is "
                               f"{cap[0]}.{cap[1]} (use @torchao-int8 or @int8)")
    from ..extras import PACKAGES, require

    if s["module"] in PACKAGES:
        require(s["module"], f"backend '{raw}': @{scheme}")
    elif importlib.util.find_spec(s["module"]) is None:
        raise BackendError(f"backend '{raw}': @{scheme} needs the package {s['library']}: pip install {s['library']}")


def library_version(scheme: str) -> str | None:
    try:
        return importlib.metadata.version(SCHEMES[scheme]["library"])
    except importlib.metadata.PackageNotFoundError:
        return None


def describe(scheme: str, components: list[str], dtype_name: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The quantization as it enters key() (library, config, components) - versions go to config() only."""
    s = SCHEMES[scheme]
    config = {k: (dtype_name if v == "run dtype" else v) for k, v in s["config"].items()}
    if scheme == "gguf":
        config = {"GGUFQuantizationConfig": {"compute_dtype": dtype_name}}
    return {"scheme": scheme, "library": s["library"], "config": config, "components": list(components),
            **(extra or {})}


def _torchao_config(scheme: str):
    from torchao.quantization import Float8WeightOnlyConfig, Int8WeightOnlyConfig

    return Int8WeightOnlyConfig() if scheme == "torchao-int8" else Float8WeightOnlyConfig()


def pipeline_quant_config(scheme: str, components: list[str], denoiser: str, dtype):
    """diffusers PipelineQuantizationConfig naming each component (quant_mapping), for from_pretrained."""
    import transformers
    from diffusers import PipelineQuantizationConfig
    from diffusers.quantizers import quantization_config as dq

    mapping: dict[str, Any] = {}
    for comp in components:
        is_denoiser = comp == denoiser
        if scheme in ("int8", "int4"):
            if is_denoiser:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # diffusers marks QuantoConfig deprecated
                    mapping[comp] = dq.QuantoConfig(weights_dtype=scheme)
            else:
                mapping[comp] = transformers.QuantoConfig(weights=scheme)
        elif scheme in ("torchao-int8", "fp8"):
            cls = dq.TorchAoConfig if is_denoiser else transformers.TorchAoConfig
            mapping[comp] = cls(_torchao_config(scheme))
        elif scheme == "nf4":
            cls = dq.BitsAndBytesConfig if is_denoiser else transformers.BitsAndBytesConfig
            mapping[comp] = cls(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)
        elif scheme == "bnb-int8":
            cls = dq.BitsAndBytesConfig if is_denoiser else transformers.BitsAndBytesConfig
            mapping[comp] = cls(load_in_8bit=True)
        else:
            raise ValueError(f"no pipeline quantization config for @{scheme}")
    return PipelineQuantizationConfig(quant_mapping=mapping)


def quantize_in_memory(pipe, scheme: str, components: list[str]) -> None:
    """Apply the scheme's library directly to modules already in memory (the miniature models)."""
    for comp in components:
        module = getattr(pipe, comp)
        if scheme in ("int8", "int4"):
            from optimum.quanto import freeze, qint4, qint8, quantize

            quantize(module, weights=qint8 if scheme == "int8" else qint4)
            freeze(module)
        elif scheme in ("torchao-int8", "fp8"):
            from torchao.quantization import quantize_

            quantize_(module, _torchao_config(scheme))
        else:
            raise ValueError(f"@{scheme} cannot be applied to a model in memory")


def load_gguf_transformer(model_cls, gguf_path: str, config_folder: str, dtype):
    """A transformer from a GGUF single file; its config from the base weights' transformer/ folder."""
    from diffusers import GGUFQuantizationConfig

    return model_cls.from_single_file(
        gguf_path, config=config_folder, subfolder="transformer",
        quantization_config=GGUFQuantizationConfig(compute_dtype=dtype), dtype=dtype,
    )
