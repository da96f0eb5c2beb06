"""Quantized variants of the local FLUX backends (NAME@QUANT), measured on the miniature flux-tiny.

Real optimum-quanto / torchao / GGUF code paths on random weights: the PSNR values say how far the
quantized pipeline's pixels are from the unquantized one's (same seed), never anything about quality.
"""

import importlib.metadata
import json

import numpy as np
import pytest
from PIL import Image

import evalsuite
from evalsuite.errors import BackendError, EvalsuiteError
from evalsuite.runfolder import RunFolder

from conftest import run_cli

SEEDS = [0, 1]
LIMIT = 1


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def images(run_dir, label, n=LIMIT * len(SEEDS)):
    """{(prompt_id, seed): pixels} of one backend in a run folder."""
    rf = RunFolder(run_dir)
    out = {}
    for e, rec in rf.records():
        if e.backend == label:
            assert rec is not None and rec.status == "ok", (label, e, rec and rec.error)
            out[(e.prompt_id, e.seed)] = np.asarray(Image.open(run_dir / rec.image).convert("RGB"))
    assert len(out) == n
    return out


def mean_psnr(run_dir, a, b):
    ia, ib = images(run_dir, a), images(run_dir, b)
    return float(np.mean([psnr(ia[k], ib[k]) for k in ia]))


def write_tiny_gguf(path, qtype_name="Q8_0"):
    """flux-tiny's transformer as a GGUF single file: 2-D weights whose rows fit the block size quantized."""
    import gguf

    from evalsuite.backends.tiny import build_tiny_flux

    qtype = getattr(gguf.GGMLQuantizationType, qtype_name)
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    writer = gguf.GGUFWriter(str(path), arch="flux")
    n_quant = 0
    for name, t in build_tiny_flux().transformer.state_dict().items():
        a = t.detach().float().numpy()
        if a.ndim == 2 and a.shape[-1] % block == 0:
            writer.add_tensor(name, gguf.quants.quantize(a, qtype), raw_dtype=qtype)
            n_quant += 1
        else:
            writer.add_tensor(name, a.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert n_quant > 10
    return path


@pytest.fixture(scope="module")
def quant_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("quant") / "run"
    evalsuite.run("flux-tiny,flux-tiny@int8,flux-tiny@int4,flux-tiny@torchao-int8,flux-tiny:damage=0.5",
                  "smoke", seeds=SEEDS, limit=LIMIT, run_dir=d, progress=False, log=lambda m: None)
    return d


def test_quanto_int8_is_close_to_unquantized_and_damage_is_not(quant_run):
    p_int8 = mean_psnr(quant_run, "flux-tiny", "flux-tiny@int8")
    p_int4 = mean_psnr(quant_run, "flux-tiny", "flux-tiny@int4")
    p_ao = mean_psnr(quant_run, "flux-tiny", "flux-tiny@torchao-int8")
    p_dmg = mean_psnr(quant_run, "flux-tiny", "flux-tiny_damage-0.5")
    print(f"PSNR vs unquantized flux-tiny: int8 {p_int8:.1f} dB, int4 {p_int4:.1f} dB, "
          f"torchao-int8 {p_ao:.1f} dB, damage=0.5 {p_dmg:.1f} dB")
    assert 50 < p_int8 < float("inf")      # environment.md: about 58 dB
    assert 50 < p_ao < float("inf")
    assert 30 < p_int4 < p_int8            # 4-bit weights: further away than 8-bit, still close
    assert p_dmg < 30 and p_dmg < p_int4 - 5  # the TEST-ONLY damaged candidate is clearly worse


def test_run_json_records_library_config_and_weight_memory(quant_run):
    info = json.loads((quant_run / "run.json").read_text())
    b = info["backends"]
    base_tr = b["flux-tiny"]["config"]["weight_memory"]["transformer"]
    assert base_tr["bytes"] == base_tr["unquantized_bytes"] > 200_000   # fp32, nothing quantized
    assert b["flux-tiny"]["config"]["quantization"] is None
    mem = {}
    for label, lib, cfg in [("flux-tiny@int8", "optimum-quanto", {"weights": "qint8"}),
                            ("flux-tiny@int4", "optimum-quanto", {"weights": "qint4"}),
                            ("flux-tiny@torchao-int8", "torchao", {"quant_type": "Int8WeightOnlyConfig"})]:
        c = b[label]["config"]
        q = c["quantization"]
        assert q["library"] == lib and q["config"] == cfg and q["components"] == ["transformer"]
        assert q["library_version"] == importlib.metadata.version(lib)
        assert b[label]["key"]["quantization"]["config"] == cfg     # the scheme changes pixels: in the key
        wm = c["weight_memory"]
        assert wm["transformer"]["unquantized_bytes"] == base_tr["bytes"]
        mem[label] = wm["transformer"]["bytes"]
        # only the transformer is quantized: VAE and both text encoders keep their full size
        for comp in ("vae", "text_encoder", "text_encoder_2"):
            assert wm[comp]["bytes"] == wm[comp]["unquantized_bytes"] == b["flux-tiny"]["config"]["weight_memory"][comp]["bytes"]
        assert wm["total_bytes"] == sum(wm[k]["bytes"] for k in ("transformer", "vae", "text_encoder", "text_encoder_2"))
    print("transformer bytes:", base_tr["bytes"], mem)
    assert mem["flux-tiny@int8"] < 0.35 * base_tr["bytes"]
    assert mem["flux-tiny@int4"] < mem["flux-tiny@int8"]
    assert mem["flux-tiny@torchao-int8"] < 0.35 * base_tr["bytes"]
    dmg = b["flux-tiny_damage-0.5"]
    assert dmg["key"]["damage"] == 0.5 and "TEST-ONLY" in dmg["config"]["damage"]["note"]
    # every variant got its own cache keys
    keys = {e.key for e in RunFolder(quant_run).plan()}
    assert len(keys) == 5 * LIMIT * len(SEEDS)


def test_quant_t5_names_the_t5_encoder_only(tmp_path):
    from evalsuite.backends import make_backend

    b = make_backend("flux-tiny@int8:quant_t5=true")
    b.prepare()
    b.load()
    wm = b.weight_memory
    assert b.config()["quantization"]["components"] == ["transformer", "text_encoder_2"]
    assert wm["text_encoder_2"]["bytes"] < 0.6 * wm["text_encoder_2"]["unquantized_bytes"]
    for comp in ("vae", "text_encoder"):
        assert wm[comp]["bytes"] == wm[comp]["unquantized_bytes"]
    assert b.key() != make_backend("flux-tiny@int8").key()


def test_from_pretrained_pipeline_quantization_matches_in_memory(tiny_flux_dir, tmp_path):
    """path= loads through FluxPipeline.from_pretrained(quantization_config=PipelineQuantizationConfig(...))
    with the transformer named explicitly: same numerics as quantizing the in-memory miniature."""
    import torch
    from optimum.quanto import QBytesTensor

    from evalsuite.backends import make_backend

    d = tmp_path / "run"
    evalsuite.run(f"flux-tiny@int8,flux-tiny@int8:path={tiny_flux_dir},"
                  f"flux-tiny@torchao-int8,flux-tiny@torchao-int8:path={tiny_flux_dir}",
                  "smoke", seeds=[0], limit=LIMIT, run_dir=d, progress=False, log=lambda m: None)
    labels = [e.backend for e in RunFolder(d).plan()]
    for scheme in ("int8", "torchao-int8"):
        mem = images(d, f"flux-tiny@{scheme}", n=LIMIT)
        pre = images(d, next(lab for lab in labels if lab.startswith(f"flux-tiny@{scheme}_path")), n=LIMIT)
        for k in mem:
            assert np.array_equal(mem[k], pre[k]), (scheme, k)
    b = make_backend(f"flux-tiny@int8:path={tiny_flux_dir}")
    b.prepare()
    b.load()
    assert isinstance(b.pipe.transformer.transformer_blocks[0].attn.to_q.weight, QBytesTensor)
    for comp in ("vae", "text_encoder", "text_encoder_2"):
        assert all(type(p) is torch.nn.Parameter for p in getattr(b.pipe, comp).parameters()), comp


def test_gguf_single_file_transformer(tmp_path, tiny_flux_dir):
    gpath = write_tiny_gguf(tmp_path / "flux-tiny-Q8_0.gguf")
    d = tmp_path / "run"
    evalsuite.run(f"flux-tiny,flux-tiny@gguf:{gpath},flux-tiny@gguf:{gpath},path={tiny_flux_dir}", "smoke",
                  seeds=SEEDS, limit=LIMIT, run_dir=d, progress=False, log=lambda m: None)
    info = json.loads((d / "run.json").read_text())
    labels = list(info["backends"])
    g_mem, g_path = labels[1], labels[2]
    p = mean_psnr(d, "flux-tiny", g_mem)
    print(f"GGUF Q8_0 vs unquantized flux-tiny: {p:.1f} dB")
    assert 45 < p < float("inf")
    a, b = images(d, g_mem), images(d, g_path)
    assert all(np.array_equal(a[k], b[k]) for k in a)  # in-memory base or from_pretrained base: same pixels
    c = info["backends"][g_mem]["config"]
    q = c["quantization"]
    assert q["library"] == "gguf" and q["gguf_path"] == str(gpath) and q["gguf"].startswith("size")
    assert q["config"] == {"GGUFQuantizationConfig": {"compute_dtype": "fp32"}}
    tr = c["weight_memory"]["transformer"]
    assert tr["bytes"] < 0.5 * tr["unquantized_bytes"]
    assert tr["unquantized_bytes"] == info["backends"]["flux-tiny"]["config"]["weight_memory"]["transformer"]["bytes"]
    # another file, other pixels: the file's fingerprint is in the cache key
    from evalsuite.backends import make_backend

    other = write_tiny_gguf(tmp_path / "flux-tiny-Q4_0.gguf", "Q4_0")
    k1, k2 = make_backend(f"flux-tiny@gguf:{gpath}"), make_backend(f"flux-tiny@gguf:{other}")
    k1.prepare()
    k2.prepare()
    assert k1.key()["quantization"]["gguf"] != k2.key()["quantization"]["gguf"]


def test_gguf_that_does_not_match_is_one_line_error(tmp_path):
    import gguf

    bad = tmp_path / "bad.gguf"
    w = gguf.GGUFWriter(str(bad), arch="flux")
    w.add_tensor("not.a.flux.weight", np.zeros((4, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    from evalsuite.backends import make_backend

    b = make_backend(f"flux-tiny@gguf:{bad}")
    b.prepare()
    with pytest.raises(BackendError) as e:
        b.load()
    msg = str(e.value)
    assert "\n" not in msg and "is not a GGUF FLUX transformer" in msg and str(bad) in msg


@pytest.mark.parametrize("scheme,lib", [("nf4", "bitsandbytes"), ("bnb-int8", "bitsandbytes"), ("fp8", "torchao")])
def test_cuda_only_schemes_are_one_line_errors_here(tmp_path, scheme, lib):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(BackendError) as e:
        evalsuite.run(f"flux-tiny@{scheme}", "smoke", run_dir=tmp_path / "r", progress=False, log=lambda m: None)
    assert "\n" not in str(e.value) and f"@{scheme} ({lib}) needs a CUDA GPU" in str(e.value)
    assert not (tmp_path / "r").exists()  # nothing written


def test_cuda_only_scheme_from_the_cli(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = run_cli("run", "--backends", "flux-tiny@int8,flux-dev@nf4:device=cpu", "--run-dir", tmp_path / "r")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("error: backend 'flux-dev@nf4:device=cpu': @nf4 (bitsandbytes) needs a CUDA GPU")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("spec,message", [
    ("flux-tiny@q3", "unknown quantization '@q3'"),
    ("flux-tiny@gguf", "flux-tiny@gguf needs a reference, e.g. flux-tiny@gguf:PATH"),
    ("flux-tiny@gguf:/no/such/file.gguf", "GGUF file /no/such/file.gguf not found"),
    ("flux-tiny:quant_t5=true", "quant_t5=true needs a quantized variant"),
    ("flux-tiny@int8:damage=x", "'x' is not a valid float"),
    ("flux-dev:damage=0.5,device=cpu", "unknown option 'damage'"),
    ("sdxl-tiny@gguf", "'@gguf' is not offered for this backend"),
])
def test_spec_errors(spec, message):
    from evalsuite.backends import make_backend

    with pytest.raises(EvalsuiteError) as e:
        make_backend(spec)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_gguf_ref_only_with_gguf():
    from evalsuite.backends import parse_spec

    s = parse_spec("flux-dev@gguf:/w/flux1-dev-Q4_0.gguf,steps=20")
    assert (s.quant, s.ref, s.options) == ("gguf", "/w/flux1-dev-Q4_0.gguf", {"steps": "20"})
    with pytest.raises(EvalsuiteError, match="option '/w/x.gguf' is not key=value"):
        parse_spec("flux-dev@int8:/w/x.gguf")


def test_gguf_fetches_no_transformer_weights_from_the_hub():
    from evalsuite.backends.flux import hub_patterns

    assert "transformer/*" in hub_patterns(None) and "transformer/*" in hub_patterns("int8")
    g = hub_patterns("gguf")
    assert "transformer/*" not in g and "transformer/config.json" in g and "text_encoder_2/*" in g
