"""One GPU check of a few minutes: CUDA bf16 generation, model/sequential offload, VAE tiling, bitsandbytes nf4 and
torchao int8 on flux-tiny and on a larger random-weight FLUX transformer (real step times, peak VRAM),
EasyOCR on the GPU, and the vqa scorer's default judge at full size (Qwen2.5-VL-7B-Instruct's architecture with
random weights in bf16: images/s, questions/s and peak VRAM through the judge's own batched code path). Every section runs on its own (try/except) and the summary says what failed and why.

    python bench/gpu_check.py                # on a CUDA machine (bench/gpu_check.sh wraps it)
    python bench/gpu_check.py --cpu-dry      # everything that does not need CUDA, on tiny sizes (tested)

Random weights: the images are noise; the step times and memory are real for the given shapes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROWS: list[dict] = []


def section(name: str, needs_cuda: bool, cpu_dry: bool):
    def deco(fn):
        def run(*a, **kw):
            import torch

            if needs_cuda and (cpu_dry or not torch.cuda.is_available()):
                ROWS.append({"section": name, "status": "skipped", "note": "needs CUDA"})
                return None
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            t = time.perf_counter()
            try:
                note = fn(*a, **kw) or ""
                status = "ok"
            except Exception as e:  # noqa: BLE001 - report and go on
                note = f"{type(e).__name__}: {e}".splitlines()[0][:160]
                status = "FAILED"
                traceback.print_exc(file=sys.stderr)
            vram = torch.cuda.max_memory_allocated() / 1024**3 if torch.cuda.is_available() else None
            ROWS.append({"section": name, "status": status, "seconds": round(time.perf_counter() - t, 2),
                         "peak_vram_gb": round(vram, 3) if vram is not None else None, "note": note})
        run.section_name = name
        return run
    return deco


def run_backend(spec: str, tmp: Path, size: int, n_seeds: int = 3) -> str:
    import evalsuite
    from evalsuite.timing import speed_table

    d = tmp / spec.replace(":", "_").replace("@", "_").replace(",", "_").replace("=", "-")
    evalsuite.run(spec, "smoke", seeds=list(range(n_seeds)), limit=1, size=(size, size), run_dir=d, progress=False,
                  score=False, log=lambda m: None)
    r = speed_table(d).iloc[0]
    rec = next(r2 for _, r2 in evalsuite.runfolder.RunFolder(d).records())
    if rec.status != "ok":
        raise RuntimeError(rec.error)
    return (f"{r['steps']} steps {size}px: median {r['median_s']:.3f} s/img, {r['it_per_s']:.1f} it/s, load "
            f"{r['load_s']:.1f} s" + (f", run peak VRAM {r['peak_vram_gb']:.2f} GB" if r["peak_vram_gb"] is not None else ""))


def big_transformer(cpu_dry: bool, dtype, device: str):
    from diffusers import FluxTransformer2DModel

    if cpu_dry:  # the same code on a toy shape
        cfg = dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
                   num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8])
    else:  # FLUX.1 width (24 heads x 128 = 3072), 4 double + 4 single blocks (the real one has 19 + 38)
        cfg = dict(patch_size=1, in_channels=64, num_layers=4, num_single_layers=4, attention_head_dim=128,
                   num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768,
                   axes_dims_rope=[16, 56, 56], guidance_embeds=True)
    import torch

    torch.manual_seed(0)
    with torch.device(device):
        m = FluxTransformer2DModel(**cfg).to(dtype)
    return m.eval(), cfg


def step_time(model, cfg, device: str, dtype, image_tokens: int, text_tokens: int, steps: int) -> float:
    import torch

    b = 1
    hidden = torch.randn(b, image_tokens, cfg["in_channels"], device=device, dtype=dtype)
    enc = torch.randn(b, text_tokens, cfg["joint_attention_dim"], device=device, dtype=dtype)
    pooled = torch.randn(b, cfg["pooled_projection_dim"], device=device, dtype=dtype)
    side = int(image_tokens ** 0.5)
    img_ids = torch.zeros(image_tokens, 3, device=device)
    img_ids[:, 1] = torch.arange(image_tokens, device=device) // side
    img_ids[:, 2] = torch.arange(image_tokens, device=device) % side
    txt_ids = torch.zeros(text_tokens, 3, device=device)
    kw = dict(hidden_states=hidden, encoder_hidden_states=enc, pooled_projections=pooled,
              timestep=torch.full((b,), 0.5, device=device, dtype=dtype), img_ids=img_ids, txt_ids=txt_ids,
              return_dict=False)
    if cfg.get("guidance_embeds"):
        kw["guidance"] = torch.full((b,), 3.5, device=device, dtype=dtype)
    with torch.no_grad():
        model(**kw)  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(steps):
            model(**kw)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps


def judge_check(dry: bool, device: str, n_images: int = 8, size: int = 1024) -> str:
    """Images/s, questions/s of the default judge's architecture with random weights (no download), batched as
    the hf judge does (5 questions an image). --cpu-dry: the miniature config, 2 small images, on the CPU."""
    import torch
    from PIL import Image
    from transformers import Qwen2_5_VLForConditionalGeneration

    from evalsuite.judges import JudgeSpec
    from evalsuite.judges.base import NO_SPELLINGS, YES_SPELLINGS, atomic_question, vqa_question
    from evalsuite.judges.hf import HfJudge, single_token_ids
    from evalsuite.judges.tiny import build_processor, full_size_config, tiny_config, tokenizer

    tok = tokenizer()
    cfg = tiny_config(len(tok), tok) if dry else full_size_config(tok)
    dtype = torch.float32 if dry else torch.bfloat16
    n_images, size = (2, 64) if dry else (n_images, size)
    t = time.perf_counter()
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(cfg, dtype=dtype).eval()
    build = time.perf_counter() - t
    processor = build_processor(tok, max_pixels=56 * 56 * 4 if dry else 12845056)   # Qwen2.5-VL's own max_pixels
    judge = HfJudge(JudgeSpec("hf:random-full-size", "hf", "random-full-size", {"batch": "8", "device": device}))
    judge.loaded = (model, processor)
    judge.resolved = {"yes_ids": single_token_ids(tok, YES_SPELLINGS), "no_ids": single_token_ids(tok, NO_SPELLINGS),
                      "input_device": device}
    qs = [vqa_question("a red cube to the left of a blue sphere")] + [atomic_question(q) for q in (
        "Is there a cube?", "Is the cube red?", "Is there a sphere?", "Is the cube to the left of the sphere?")]
    images = [Image.new("RGB", (size, size), (20 * i, 90, 160)) for i in range(n_images)]
    pairs_i = [im for im in images for _ in qs]
    pairs_q = [q for _ in images for q in qs]
    judge.answer(pairs_i[:8], pairs_q[:8])            # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    answers = judge.answer(pairs_i, pairs_q)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    secs = time.perf_counter() - t
    assert all(a.p_yes is not None for a in answers)
    n = sum(p.numel() for p in model.parameters())
    return (f"{n / 1e9:.2f} B params built in {build:.1f} s; {n_images} images {size}px x {len(qs)} questions, batch 8: "
            f"{n_images / secs:.2f} images/s, {len(pairs_q) / secs:.1f} questions/s")


def flux_sections(tmp: Path, dev: str, size: int, dry: bool) -> list:
    """The flux-tiny runs: bf16, this device, offload, VAE tiling, nf4, torchao int8."""
    @section("flux-tiny bf16 on CUDA", True, dry)
    def s_bf16():
        return run_backend("flux-tiny:device=cuda,dtype=bf16", tmp, size)

    @section("flux-tiny on this device (fp32 on CPU)", False, dry)
    def s_default():
        return run_backend(f"flux-tiny:device={dev}", tmp, size)

    @section("flux-tiny offload=model", True, dry)
    def s_off_model():
        return run_backend("flux-tiny:offload=model", tmp, size)

    @section("flux-tiny offload=sequential", True, dry)
    def s_off_seq():
        return run_backend("flux-tiny:offload=sequential", tmp, size)

    @section("flux-tiny vae_tiling=true", False, dry)
    def s_tiling():
        return run_backend(f"flux-tiny:device={dev},vae_tiling=true", tmp, size)

    @section("flux-tiny@nf4 (bitsandbytes)", True, dry)
    def s_nf4():
        return run_backend("flux-tiny@nf4", tmp, size)

    @section("flux-tiny@torchao-int8", False, dry)
    def s_ao():
        return run_backend(f"flux-tiny@torchao-int8:device={dev}", tmp, size)

    return [s_bf16, s_default, s_off_model, s_off_seq, s_tiling, s_nf4, s_ao]


def transformer_sections(tmp: Path, dev: str, cuda: bool, dry: bool) -> list:
    """One denoising step of a big random-weight FLUX transformer: bf16, torchao int8, bitsandbytes nf4."""
    import torch

    dtype = torch.bfloat16 if cuda else torch.float32
    tokens = (4096, 512) if not dry else (64, 16)  # 1024x1024 image (64x64 latent patches) + 512 T5 tokens
    steps = 5 if not dry else 2

    @section("big FLUX transformer (4+4 blocks, width 3072) bf16 step" if not dry else "toy FLUX transformer step",
             False, dry)
    def s_big():
        m, cfg = big_transformer(dry, dtype, dev)
        n = sum(p.numel() for p in m.parameters())
        st = step_time(m, cfg, dev, dtype, *tokens, steps)
        full = st * (19 + 38) / (cfg["num_layers"] + cfg["num_single_layers"])
        del m
        return (f"{n / 1e9:.2f} B params, {st * 1000:.1f} ms/step at {tokens[0]}+{tokens[1]} tokens; x(57/8 blocks) "
                f"~{full * 1000:.0f} ms/step for full FLUX.1 width/depth (estimate)")

    @section("big FLUX transformer torchao int8 weight-only step", False, dry)
    def s_big_ao():
        from torchao.quantization import Int8WeightOnlyConfig, quantize_

        m, cfg = big_transformer(dry, dtype, dev)
        quantize_(m, Int8WeightOnlyConfig())
        st = step_time(m, cfg, dev, dtype, *tokens, steps)
        return f"{st * 1000:.1f} ms/step"

    @section("big FLUX transformer bitsandbytes nf4 step (from_pretrained)", True, dry)
    def s_big_nf4():
        from diffusers import BitsAndBytesConfig, FluxTransformer2DModel

        m, cfg = big_transformer(dry, dtype, "cpu")
        m.save_pretrained(tmp / "bigT")
        del m
        q = FluxTransformer2DModel.from_pretrained(
            tmp / "bigT", torch_dtype=dtype,
            quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                   bnb_4bit_compute_dtype=dtype)).to(dev)
        st = step_time(q, cfg, dev, dtype, *tokens, steps)
        return f"{st * 1000:.1f} ms/step, weights {q.get_memory_footprint() / 1024**3:.2f} GB"

    return [s_big, s_big_ao, s_big_nf4]


def ocr_judge_sections(tmp: Path, dev: str, cuda: bool, dry: bool) -> list:
    """EasyOCR on this device, and the VQA judge at full size (miniature with --cpu-dry)."""
    @section("EasyOCR on this device (reference image 512 px)", False, dry)
    def s_ocr():
        import evalsuite
        from evalsuite.runfolder import RunFolder
        from PIL import Image

        from evalsuite.scoring.ocr import _easyocr_reader, read_boxes

        d = tmp / "ocr"
        evalsuite.run("reference", "smoke", seeds=[0], limit=1, run_dir=d, progress=False, score=False,
                      log=lambda m: None)
        rec = next(r for _, r in RunFolder(d).records())
        img = Image.open(d / rec.image).convert("RGB")
        t = time.perf_counter()
        reader = _easyocr_reader(cuda)
        load = time.perf_counter() - t
        read_boxes("easyocr", img)
        t = time.perf_counter()
        boxes = read_boxes("easyocr", img)
        per = time.perf_counter() - t
        return (f"device {reader.device}, load {load:.1f} s, {per:.2f} s/img, read "
                f"{' '.join(b.text for b in boxes)[:40]!r} (target {rec.prompt_id})")

    @section("VQA judge: full-size random-weight Qwen2.5-VL-7B architecture, bf16" if not dry else
             "VQA judge: miniature random-weight Qwen2.5-VL (CPU)", False, dry)
    def s_judge():
        return judge_check(dry, dev)

    return [s_ocr, s_judge]


def print_summary(info: dict, json_path: str | None) -> int:
    """The summary table (and the JSON file); the number of failed sections."""
    print()
    print(f"summary ({info['hardware']}):")
    w = max(len(r["section"]) for r in ROWS)
    for r in ROWS:
        vram = f"{r['peak_vram_gb']:.2f} GB" if r.get("peak_vram_gb") is not None else "-"
        secs = f"{r['seconds']:.1f} s" if "seconds" in r else "-"
        print(f"  {r['section']:<{w}}  {r['status']:<7}  {secs:>8}  {vram:>9}  {r['note']}")
    if json_path:
        Path(json_path).write_text(json.dumps({"hardware": info, "rows": ROWS}, indent=2))
    failed = [r for r in ROWS if r["status"] == "FAILED"]
    print(f"{len(failed)} section(s) failed" + (": " + ", ".join(r["section"] for r in failed) if failed else ""))
    return len(failed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-dry", action="store_true", help="no CUDA sections; tiny sizes (a test of this script)")
    ap.add_argument("--json", help="also write the summary rows to this file")
    ap.add_argument("--skip", default="", help="comma-separated words: skip sections whose name contains one")
    a = ap.parse_args()
    import torch

    from evalsuite.envinfo import device_info

    dry = a.cpu_dry
    cuda = torch.cuda.is_available() and not dry
    dev = "cuda" if cuda else "cpu"
    size = 64 if dry else 256
    info = device_info()
    print(f"hardware: {info['hardware']}; cpu: {info['cpu']}; torch {torch.__version__}, cuda {info['cuda']}"
          + (" [--cpu-dry]" if dry else ""), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-"))

    sections = (flux_sections(tmp, dev, size, dry) + transformer_sections(tmp, dev, cuda, dry)
                + ocr_judge_sections(tmp, dev, cuda, dry))
    skip = [w.strip().lower() for w in a.skip.split(",") if w.strip()]
    for fn in sections:
        if any(w in fn.section_name.lower() for w in skip):
            ROWS.append({"section": fn.section_name, "status": "skipped", "note": "--skip"})
        else:
            fn()
        print(json.dumps(ROWS[-1]), flush=True)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if print_summary(info, a.json) else 0)


if __name__ == "__main__":
    main()
