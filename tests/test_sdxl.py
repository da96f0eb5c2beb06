"""The sdxl backend (StableDiffusionXLPipeline) and its offline miniature sdxl-tiny (random weights: noise)."""

import json

import numpy as np
import pytest
from PIL import Image

import evalsuite
from evalsuite.backends import make_backend
from evalsuite.errors import BackendError, EvalsuiteError
from evalsuite.runfolder import RunFolder


def psnr(a, b):
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def pixels(run_dir):
    out = {}
    for e, rec in RunFolder(run_dir).records():
        assert rec is not None and rec.status == "ok", rec and rec.error
        out.setdefault(e.backend, {})[(e.prompt_id, e.seed)] = np.asarray(Image.open(run_dir / rec.image).convert("RGB"))
    return out


@pytest.fixture(scope="module")
def tiny_sdxl_dir(tmp_path_factory):
    from evalsuite.backends.tiny import save_tiny_sdxl

    return save_tiny_sdxl(tmp_path_factory.mktemp("weights") / "tiny-sdxl")


@pytest.fixture(scope="module")
def sdxl_run(tmp_path_factory, tiny_sdxl_dir):
    d = tmp_path_factory.mktemp("sdxl") / "run"
    specs = ["sdxl-tiny", "sdxl-tiny:batch_size=2", f"sdxl-tiny:path={tiny_sdxl_dir}", "sdxl-tiny@int8"]
    logs = []
    evalsuite.run(specs, "smoke", seeds=[0, 1], limit=1, run_dir=d, progress=False, log=logs.append)
    labels = list(json.loads((d / "run.json").read_text())["backends"])
    return d, dict(zip(["base", "batched", "path", "int8"], labels)), logs


def test_sdxl_tiny_generates_deterministic_noise_images(sdxl_run):
    d, lab, logs = sdxl_run
    img = pixels(d)
    base = img[lab["base"]]
    assert len(base) == 2
    a, b = base[("neon-open-24", 0)], base[("neon-open-24", 1)]
    assert a.shape == (64, 64, 3) and a.std() > 5 and not np.array_equal(a, b)   # seeds differ
    for k in base:
        assert np.array_equal(img[lab["batched"]][k], base[k])   # a batch of 2 == one by one, same seeds
        assert np.array_equal(img[lab["path"]][k], base[k])      # save_pretrained + from_pretrained round trip
    info = json.loads((d / "run.json").read_text())["backends"][lab["base"]]
    assert info["labelled_noise"] is True
    assert any("random-weight miniature model" in m for m in logs)
    c = info["config"]
    assert (c["pipeline"], c["steps"], c["guidance"], c["size"], c["dtype"]) == \
        ("StableDiffusionXLPipeline", 4, 5.0, [64, 64], "fp32")
    assert c["weight_memory"]["unet"]["bytes"] > 500_000


def test_sdxl_tiny_int8_quantizes_the_unet_only(sdxl_run):
    d, lab, _ = sdxl_run
    img = pixels(d)
    p = np.mean([psnr(img[lab["int8"]][k], img[lab["base"]][k]) for k in img[lab["base"]]])
    print(f"sdxl-tiny@int8 vs unquantized: {p:.1f} dB")
    assert 40 < p < float("inf")
    info = json.loads((d / "run.json").read_text())["backends"]
    wm, base_wm = info[lab["int8"]]["config"]["weight_memory"], info[lab["base"]]["config"]["weight_memory"]
    assert info[lab["int8"]]["config"]["quantization"]["components"] == ["unet"]
    assert wm["unet"]["bytes"] < 0.4 * base_wm["unet"]["bytes"] == 0.4 * wm["unet"]["unquantized_bytes"]
    for comp in ("vae", "text_encoder", "text_encoder_2"):
        assert wm[comp]["bytes"] == base_wm[comp]["bytes"]


def test_sdxl_tiny_lora_and_damage(tmp_path):
    """A peft LoRA on the UNet saved with StableDiffusionXLPipeline.save_lora_weights changes the images;
    the TEST-ONLY damage option makes a clearly different candidate."""
    import torch
    from diffusers import StableDiffusionXLPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from evalsuite.backends.tiny import build_tiny_sdxl

    pipe = build_tiny_sdxl()
    torch.manual_seed(0)
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                     target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    StableDiffusionXLPipeline.save_lora_weights(tmp_path, unet_lora_layers=get_peft_model_state_dict(pipe.unet),
                                                weight_name="unet-lora.safetensors")
    lora = tmp_path / "unet-lora.safetensors"
    d = tmp_path / "run"
    evalsuite.run(["sdxl-tiny", f"sdxl-tiny:lora={lora}", "sdxl-tiny:damage=0.5"], "smoke", seeds=[0], limit=1,
                  run_dir=d, progress=False, log=lambda m: None)
    base, with_lora, damaged = pixels(d).values()
    k = ("neon-open-24", 0)
    assert np.abs(with_lora[k].astype(int) - base[k].astype(int)).mean() > 0.1
    assert psnr(damaged[k], base[k]) < 30


def test_sdxl_defaults_and_hub_files():
    from evalsuite.backends.sdxl import hub_patterns

    b = make_backend("sdxl:device=cpu")
    c = b.config()
    assert (c["model_id"], c["steps"], c["guidance"], c["size"]) == \
        ("stabilityai/stable-diffusion-xl-base-1.0", 30, 5.0, [1024, 1024])
    assert c["variant"] is None  # fp32 on the CPU: the full-precision files
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in hub_patterns("fp16")
    assert "unet/diffusion_pytorch_model.safetensors" in hub_patterns(None)
    assert not any(p.endswith("*") and p.split("/")[0] in ("unet", "vae", "text_encoder", "text_encoder_2")
                   for p in hub_patterns("fp16"))  # never every file of a weights folder (flax, onnx, fp32 + fp16)


def test_sdxl_needs_cuda_or_explicit_cpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(BackendError) as e:
        make_backend("sdxl")
    assert "no CUDA GPU found" in str(e.value) and "device=cpu" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(BackendError) as e:
        make_backend("sdxl@nf4:device=cpu")
    assert "@nf4 (bitsandbytes) needs a CUDA GPU" in str(e.value)


def test_sdxl_missing_weights_is_one_line(tmp_path):
    with pytest.raises(BackendError) as e:  # the hub is offline in tests (HF_HUB_OFFLINE=1)
        evalsuite.run("sdxl:device=cpu", "smoke", run_dir=tmp_path / "r", progress=False, log=lambda m: None)
    msg = str(e.value)
    assert "\n" not in msg and "hf download stabilityai/stable-diffusion-xl-base-1.0" in msg and "path=" in msg
    assert not (tmp_path / "r").exists()
    with pytest.raises(BackendError, match="not a diffusers pipeline folder"):
        make_backend(f"sdxl-tiny:path={tmp_path}").prepare()


@pytest.mark.parametrize("spec,message", [
    ("sdxl-tiny:quant_t5=true", "unknown option 'quant_t5'"),
    ("sdxl:damage=0.5,device=cpu", "unknown option 'damage'"),
    ("sdxl-tiny:size=63x63", None),
])
def test_sdxl_option_errors(spec, message, tmp_path):
    if message:
        with pytest.raises(EvalsuiteError) as e:
            make_backend(spec)
        assert message in str(e.value)
    else:  # a size the VAE cannot take: a one-line error at the first generation, no item written
        with pytest.raises(EvalsuiteError, match="must be a multiple of"):
            evalsuite.run(spec, "smoke", limit=1, seeds=[0], run_dir=tmp_path / "r", progress=False,
                          log=lambda m: None)
