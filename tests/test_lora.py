"""LoRA on the local FLUX backends: lora=PATH[:SCALE] (repeatable), fuse_lora, part of the cache key.

A tiny random LoRA is built with peft for flux-tiny's transformer and saved in diffusers' LoRA format
(FluxPipeline.save_lora_weights); the backend loads it with load_lora_weights.
"""

import json

import numpy as np
import pytest
from PIL import Image

import evalsuite
from evalsuite.errors import EvalsuiteError
from evalsuite.runfolder import RunFolder

from conftest import run_cli


def psnr(a, b):
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def pixels(run_dir):
    """{backend label: {(prompt_id, seed): pixels}}, and {label: {(prompt_id, seed): key}}."""
    rf = RunFolder(run_dir)
    out, keys = {}, {}
    for e, rec in rf.records():
        assert rec is not None and rec.status == "ok", rec and rec.error
        out.setdefault(e.backend, {})[(e.prompt_id, e.seed)] = np.asarray(Image.open(run_dir / rec.image).convert("RGB"))
        keys.setdefault(e.backend, {})[(e.prompt_id, e.seed)] = e.key
    return out, keys


@pytest.fixture(scope="module")
def lora_files(tmp_path_factory):
    from evalsuite.backends.tiny import save_tiny_flux_lora

    d = tmp_path_factory.mktemp("lora")
    return save_tiny_flux_lora(d / "a.safetensors", seed=0), save_tiny_flux_lora(d / "b.safetensors", seed=1)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, lora_files):
    a, _ = lora_files
    d = tmp_path_factory.mktemp("lora-run") / "run"
    specs = ["flux-tiny", f"flux-tiny:lora={a}", f"flux-tiny:lora={a}:0", f"flux-tiny:lora={a}:0.5,lora={a}:0.5",
             f"flux-tiny:lora={a},fuse_lora=true"]
    evalsuite.run(specs, "smoke", seeds=[0, 1], limit=1, run_dir=d, progress=False, log=lambda m: None)
    labels = list(json.loads((d / "run.json").read_text())["backends"])
    return d, dict(zip(["base", "lora", "zero", "halves", "fused"], labels))


def test_lora_changes_images_and_scale_zero_does_not(lora_run):
    d, lab = lora_run
    img, keys = pixels(d)
    base, lora, zero = img[lab["base"]], img[lab["lora"]], img[lab["zero"]]
    for k in base:
        diff = np.abs(lora[k].astype(int) - base[k].astype(int))
        assert diff.mean() > 0.5 and psnr(lora[k], base[k]) < 45, k   # the LoRA changes the pixels
        assert np.array_equal(zero[k], base[k]), k                      # scale 0: the LoRA adds nothing
        # ... but it is still another cache key (the LoRA and its scale are recorded)
        assert len({keys[lab[x]][k] for x in ("base", "lora", "zero", "halves", "fused")}) == 5


def test_two_half_scale_loras_equal_one_full_and_fused_equals_unfused(lora_run):
    d, lab = lora_run
    img, _ = pixels(d)
    for k in img[lab["lora"]]:
        lora, base = img[lab["lora"]][k], img[lab["base"]][k]
        effect = psnr(lora, base)
        print(f"PSNR LoRA vs base {effect:.1f} dB, two halves vs one {psnr(img[lab['halves']][k], lora):.1f} dB, "
              f"fused vs unfused {psnr(img[lab['fused']][k], lora):.1f} dB")
        assert effect < 45
        assert psnr(img[lab["halves"]][k], lora) > effect + 10, k
        # fused weights stay fused once the adapter layers are unloaded
        assert psnr(img[lab["fused"]][k], lora) > effect + 10, k


def test_lora_recorded_in_run_json(lora_run, lora_files):
    from evalsuite.backends.localutil import file_sha256

    d, lab = lora_run
    info = json.loads((d / "run.json").read_text())["backends"]
    sha = file_sha256(lora_files[0])
    c = info[lab["halves"]]["config"]
    assert [(lo["path"], lo["scale"], lo["sha256"]) for lo in c["loras"]] == [(str(lora_files[0]), 0.5, sha)] * 2
    assert info[lab["lora"]]["key"]["loras"] == [{"sha256": sha, "scale": 1.0}]
    assert info[lab["fused"]]["key"]["fuse_lora"] is True and info[lab["lora"]]["key"]["fuse_lora"] is False
    assert "loras" not in info[lab["base"]]["key"]  # plain backends keep the keys they had


def test_lora_reproducible_on_rerun_and_file_identity_in_key(lora_run, lora_files, tmp_path):
    d, lab = lora_run
    a, b = lora_files
    d2 = tmp_path / "again"
    evalsuite.run([f"flux-tiny:lora={a}", f"flux-tiny:lora={b}"], "smoke", seeds=[0, 1], limit=1, run_dir=d2,
                  progress=False, log=lambda m: None)
    img1, keys1 = pixels(d)
    img2, keys2 = pixels(d2)
    labels2 = list(json.loads((d2 / "run.json").read_text())["backends"])
    for k in img1[lab["lora"]]:
        assert np.array_equal(img1[lab["lora"]][k], img2[labels2[0]][k])     # same LoRA, same seed: same image
        assert keys1[lab["lora"]][k] == keys2[labels2[0]][k]
        assert keys2[labels2[1]][k] != keys2[labels2[0]][k]                  # another LoRA file: another key
        assert not np.array_equal(img2[labels2[1]][k], img2[labels2[0]][k])


def test_lora_from_the_cli_repeated_and_resumed(lora_files, tmp_path):
    a, b = lora_files
    args = ("run", "--backends", f"flux-tiny:lora={a}:0.7,lora={b}:0.3", "--prompts", "smoke", "--limit", "1",
            "--seeds", "0", "--run-dir", tmp_path / "r", "--no-progress")
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert "generated 1" in r.stdout
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    (cfg,) = [b_["config"] for b_ in info["backends"].values()]
    assert [lo["scale"] for lo in cfg["loras"]] == [0.7, 0.3]
    assert [lo["path"] for lo in cfg["loras"]] == [str(a), str(b)]
    again = run_cli(*args)  # a new process computes the same key (file hashes + scales): nothing to redo
    assert again.returncode == 0 and "nothing to generate: all 1 items already in" in again.stdout


@pytest.mark.parametrize("opts,message", [
    ("lora=/no/such/lora.safetensors", "no such file or folder"),
    ("fuse_lora=true", "fuse_lora=true needs lora=PATH"),
])
def test_lora_errors(opts, message):
    from evalsuite.backends import make_backend

    with pytest.raises(EvalsuiteError) as e:
        make_backend(f"flux-tiny:{opts}")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_lora_error_cases_with_files(lora_files, tmp_path):
    from evalsuite.backends import make_backend

    a, _ = lora_files
    txt = tmp_path / "notes.txt"
    txt.write_text("x")
    cases = [
        (f"flux-tiny:lora={txt}", "expected a .safetensors file"),
        (f"flux-tiny:lora={a}:99", "scale 99.0 is out of range"),
        (f"flux-tiny@int8:lora={a}", "lora= cannot be combined with @int8"),
        (f"flux-tiny@torchao-int8:lora={a},fuse_lora=true", "fuse_lora=true cannot be combined with @torchao-int8"),
    ]
    for spec, message in cases:
        with pytest.raises(EvalsuiteError) as e:
            make_backend(spec)
        assert message in str(e.value) and "\n" not in str(e.value), spec


def test_lora_on_torchao_quantized_transformer(lora_files, tmp_path):
    """LoRA layers over torchao int8 weights: images change, and stay close to the unquantized LoRA run."""
    a, _ = lora_files
    d = tmp_path / "r"
    evalsuite.run([f"flux-tiny:lora={a}", f"flux-tiny@torchao-int8:lora={a}", "flux-tiny@torchao-int8"], "smoke",
                  seeds=[0], limit=1, run_dir=d, progress=False, log=lambda m: None)
    img, _ = pixels(d)
    full, q_lora, q = (img[lab] for lab in json.loads((d / "run.json").read_text())["backends"])
    for k in full:
        assert psnr(q_lora[k], full[k]) > 45
        assert np.abs(q_lora[k].astype(int) - q[k].astype(int)).mean() > 0.1
