"""The evaluation run: generation through real diffusers code paths, the run folder, resume, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import evalsuite
from evalsuite.runfolder import RunFolder, TMP_MARK

from conftest import REPO, cli_env, run_cli

def cli_inproc(capsys, *args):
    """The CLI's main() in this process (same code path as `python -m evalsuite`, without the start-up cost)."""
    from evalsuite.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


QUIET = dict(progress=False, log=lambda m: None, score=False)  # generation only; scoring has its own tests


def images_by_item(run_dir, backend=None):
    """{(backend, prompt_id, seed): uint8 array} for the planned items of a run folder."""
    rf = RunFolder(run_dir)
    out = {}
    for e, r in rf.records():
        if backend and e.backend != backend:
            continue
        assert r is not None and r.status == "ok", (e, r)
        out[(e.backend, e.prompt_id, e.seed)] = np.asarray(Image.open(Path(run_dir) / r.image).convert("RGB"))
    return out


def test_flux_tiny_same_seed_identical_other_seed_different(tmp_path):
    evalsuite.run("flux-tiny", "smoke", seeds=[0, 1], run_dir=tmp_path / "a", **QUIET)
    evalsuite.run("flux-tiny", "smoke", seeds=[0], run_dir=tmp_path / "b", **QUIET)
    a = images_by_item(tmp_path / "a")
    b = images_by_item(tmp_path / "b")
    assert len(a) == 12 and len(b) == 6
    for (bk, pid, seed), img in b.items():
        assert np.array_equal(img, a[(bk, pid, seed)]), "same prompt and seed must give identical pixels"
        assert not np.array_equal(img, a[(bk, pid, 1)]), "another seed must give another image"
        assert img.shape == (64, 64, 3) and img.std() > 5  # a real decoded image, not blank


def test_from_pretrained_folder_takes_the_real_weight_path(tmp_path, tiny_flux_dir):
    """flux-schnell with path= loads a saved diffusers folder through FluxPipeline.from_pretrained:
    the code path real FLUX weights take. The saved folder holds the same miniature weights as
    flux-tiny, so with the same settings the pixels must match exactly."""
    spec = f"flux-schnell:path={tiny_flux_dir},device=cpu,size=64x64,max_sequence_length=64"
    res = evalsuite.run([spec, "flux-tiny"], "smoke", seeds=[0], run_dir=tmp_path / "r", **QUIET)
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    label = res.run_dir and next(k for k in info["backends"] if k.startswith("flux-schnell"))
    cfg = info["backends"][label]["config"]
    assert cfg["path"] == str(Path(tiny_flux_dir).resolve()) and cfg["weights"].startswith("local:")
    assert cfg["steps"] == 4 and cfg["guidance"] == 0.0  # FLUX.1 [schnell] model-card defaults
    imgs = images_by_item(tmp_path / "r")
    for (bk, pid, seed), img in imgs.items():
        if bk == label:
            assert np.array_equal(img, imgs[("flux-tiny", pid, seed)])


def test_batched_equals_one_by_one(tmp_path):
    evalsuite.run("flux-tiny:batch_size=1", "smoke", run_dir=tmp_path / "r", **QUIET)
    evalsuite.run("flux-tiny:batch_size=4", "smoke", run_dir=tmp_path / "r", **QUIET)
    imgs = images_by_item(tmp_path / "r")
    rf = RunFolder(tmp_path / "r")
    sizes = {r.batch_size for e, r in rf.records() if e.backend == "flux-tiny_batch_size-4"}
    assert sizes >= {1, 4}  # the warm-up call alone, then real batches
    n = 0
    for (bk, pid, seed), img in imgs.items():
        if bk == "flux-tiny_batch_size-1":
            other = imgs[("flux-tiny_batch_size-4", pid, seed)].astype(int)
            # Identical up to float rounding of batched matrix products: at most 1/255 on a few values.
            assert np.abs(img.astype(int) - other).max() <= 1
            assert (img != other).mean() < 0.001
            n += 1
    assert n == 12
    # batch size does not change pixels, so it is not part of the cache key
    keys = {}
    for e, r in rf.records():
        keys.setdefault((e.prompt_id, e.seed), set()).add(e.key)
    assert all(len(k) == 1 for k in keys.values())


def _comparable(run_dir):
    """Everything in a run folder that must match between an interrupted+resumed and a clean run."""
    rf = RunFolder(run_dir)
    out = {}
    for e, r in rf.records():
        out[(e.backend, e.prompt_id, e.seed)] = (e.key, e.image, r.status, r.image_sha256, r.width, r.height,
                                                 (Path(run_dir) / r.image).read_bytes())
    files = sorted(str(p.relative_to(run_dir)) for p in Path(run_dir).rglob("*") if p.is_file())
    return out, files


def test_resume_after_sigkill_generates_exactly_the_missing_items(tmp_path):
    # the model does not matter here (seeded pixels of flux-tiny: test_flux_tiny_same_seed_identical_other_seed_
    # different, test_batched_equals_one_by_one): the torch-free dummy at 0.1 s an image, one at a time, is
    # slow enough to be killed mid-run and fast to resume
    args = ["run", "-b", "dummy:delay=0.1,batch_size=1", "--prompts", "smoke", "--num-seeds", "4", "--size", "128x128",
            "--no-progress", "--no-score"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "evalsuite", *args, "--run-dir", str(killed)], cwd=REPO,
                            env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if len(list(killed.glob("items/*/*/*.json"))) >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(killed.glob("items/*/*/*.json")))
    assert 3 <= done_before < 24

    r = run_cli(*args, "--run-dir", killed)
    assert r.returncode == 0, r.stderr
    assert f"generated {24 - done_before}, reused {done_before}, failed 0" in r.stdout
    assert not list(killed.rglob(f"*{TMP_MARK}*")), "no partial files may remain"

    clean = tmp_path / "clean"
    assert run_cli(*args, "--run-dir", clean).returncode == 0
    a_items, a_files = _comparable(killed)
    b_items, b_files = _comparable(clean)
    assert a_items == b_items and a_files == b_files

    again = run_cli(*args, "--run-dir", killed)
    assert again.returncode == 0 and "nothing to generate: all 24 items already" in again.stdout


def test_reference_renders_only_prompts_with_targets(tmp_path):
    res = evalsuite.run("reference", "smoke", seeds=[0, 1], run_dir=tmp_path / "r", **QUIET)
    c = res.backends["reference"]
    assert (c.planned, c.generated, c.skipped_prompts) == (6, 6, 3)
    for (bk, pid, seed), img in images_by_item(tmp_path / "r").items():
        assert img.shape == (512, 512, 3)
        dark = (img.mean(axis=2) < 100).mean()
        assert 0.01 < dark < 0.4, "dark text on a light background"
    # --size applies to every backend
    evalsuite.run("reference", "smoke", seeds=[0], size="320x200", run_dir=tmp_path / "s", **QUIET)
    assert {i.shape for i in images_by_item(tmp_path / "s").values()} == {(200, 320, 3)}


def test_folder_import_round_trip(tmp_path):
    src = tmp_path / "src"
    evalsuite.run("flux-tiny", "smoke", seeds=[0, 1], run_dir=src, **QUIET)
    originals = images_by_item(src)
    exports = tmp_path / "mj_exports"
    (exports / "cat-chef").mkdir(parents=True)
    for (bk, pid, seed), img in originals.items():
        if (pid, seed) == ("three-apples", 1):
            continue  # a missing file
        if pid == "cat-chef":
            Image.fromarray(img).save(exports / "cat-chef" / f"{seed}.png")  # nested pattern
        else:
            Image.fromarray(img).save(exports / f"{pid}_{seed}.png")  # flat pattern
    Image.fromarray(originals[("flux-tiny", "neon-open-24", 0)]).save(exports / "not-a-prompt_0.png")

    res = evalsuite.run(f"folder:{exports}", "smoke", seeds=[0, 1], run_dir=tmp_path / "r", **QUIET)
    label = next(iter(res.backends))
    c = res.backends[label]
    assert (c.generated, c.failed) == (11, 1)
    assert res.unmatched_files[label] == ["not-a-prompt_0.png"]
    rf = RunFolder(tmp_path / "r")
    for e, r in rf.records():
        if (e.prompt_id, e.seed) == ("three-apples", 1):
            assert r.status == "failed" and "no file" in r.error
            continue
        img = np.asarray(Image.open(tmp_path / "r" / r.image).convert("RGB"))
        assert np.array_equal(img, originals[("flux-tiny", e.prompt_id, e.seed)])  # PNG: lossless
        assert len(r.applied["source_sha256"]) == 64

    # Supplying the missing file later: only that item is new; a replaced file gets a new key.
    Image.fromarray(originals[("flux-tiny", "three-apples", 1)]).save(exports / "three-apples_1.png")
    res2 = evalsuite.run(f"folder:{exports}", "smoke", seeds=[0, 1], run_dir=tmp_path / "r", **QUIET)
    assert (res2.backends[label].generated, res2.backends[label].reused) == (1, 11)


def test_changed_setting_gets_new_items_that_never_mix(tmp_path):
    d = tmp_path / "r"
    evalsuite.run("flux-tiny", "smoke", seeds=[0], run_dir=d, **QUIET)
    first = {e.prompt_id: e.key for e in RunFolder(d).plan()}
    res = evalsuite.run("flux-tiny:steps=2", "smoke", seeds=[0], run_dir=d, **QUIET)
    assert res.backends["flux-tiny_steps-2"].generated == 6
    res = evalsuite.run("flux-tiny", "smoke", seeds=[0], size="32x32", run_dir=d, **QUIET)
    assert res.backends["flux-tiny"].generated == 6  # size changes pixels: new items
    plan = RunFolder(d).plan()
    tiny = {e.prompt_id: e.key for e in plan if e.backend == "flux-tiny"}
    assert set(tiny) == set(first) and not set(tiny.values()) & set(first.values())
    assert {e.backend for e in plan} == {"flux-tiny", "flux-tiny_steps-2"}
    # the old items are still on disk (nothing lost) but are no longer part of the plan
    assert len(list(d.glob("items/flux-tiny/*/*.png"))) == 12


def test_rerun_says_nothing_to_do_and_run_json_is_complete(tmp_path):
    d = tmp_path / "r"
    r1 = run_cli("run", "--backends", "flux-tiny,reference", "--prompts", "smoke", "--run-dir", d, "--no-progress", "--no-score")
    assert r1.returncode == 0, r1.stderr
    assert "generated 18, reused 0, failed 0, filtered 0" in r1.stdout
    assert "noise" in r1.stderr  # flux-tiny is labelled as noise
    written = {p: p.stat().st_mtime_ns for p in d.rglob("*") if p.is_file()}
    r2 = run_cli("run", "--backends", "flux-tiny,reference", "--prompts", "smoke", "--run-dir", d, "--no-progress", "--no-score")
    assert r2.returncode == 0 and "nothing to generate: all 18 items already" in r2.stdout
    # a rerun with nothing to do and nothing changed rewrites nothing, run.json included (issue 14)
    assert {p: p.stat().st_mtime_ns for p in d.rglob("*") if p.is_file()} == written
    info = json.loads((d / "run.json").read_text())
    assert info["seeds"] == [0, 1]
    assert info["prompt_set"]["name"] == "smoke" and len(info["prompt_set"]["sha256"]) == 64
    assert info["environment"]["packages"]["diffusers"] and info["environment"]["packages"]["torch"]
    assert info["environment"]["hardware"]
    assert info["environment"]["git"]["commit"] is None or len(info["environment"]["git"]["commit"]) == 40
    assert info["backends"]["flux-tiny"]["labelled_noise"] is True
    assert info["backends"]["flux-tiny"]["load_s"] > 0
    assert len(info["invocations"]) == 1   # the no-op rerun is not recorded: it changed nothing
    recs = [json.loads(p.read_text()) for p in d.glob("items/*/*/*.json")]
    assert len(recs) == 18
    for rec in recs:
        assert rec["status"] == "ok" and rec["latency_s"] > 0 and rec["peak_rss_gb"] > 0
    assert sum(r["warmup"] for r in recs) == 2  # one warm-up image per backend


def test_help_documents_every_option():
    r = run_cli("run", "--help")
    assert r.returncode == 0
    for opt in ("--backends", "--prompts", "--category", "--limit", "--seeds", "--num-seeds", "--size",
                "--run-dir", "--retry-failed", "--no-progress"):
        assert opt in r.stdout


def test_category_filter_and_limit(tmp_path):
    res = evalsuite.run("flux-tiny", "smoke", seeds=[3], categories=["text"], limit=2, run_dir=tmp_path / "r",
                        **QUIET)
    plan = RunFolder(tmp_path / "r").plan()
    assert [(e.prompt_id, e.seed) for e in plan] == [("neon-open-24", 3), ("cafe-chalkboard", 3)]
    assert res.backends["flux-tiny"].generated == 2


BAD_PROMPTS = {
    "missing_field.yaml": ("prompts:\n  - id: a\n    prompt: hello\n  - id: b\n    category: x\n",
                           "entry 2 (id 'b'): field 'prompt' is required"),
    "dup.yaml": ("- {id: a, prompt: one}\n- {id: a, prompt: two}\n", "entry 2: field 'id' 'a' duplicates entry 1"),
    "dotdot.yaml": ("- {id: ../x, prompt: one}\n", "field 'id' "),
    "slash.yaml": ("- {id: a/b, prompt: one}\n", "is not a safe file name"),
    "empty.jsonl": ('{"id": "a", "prompt": "  "}\n', "field 'prompt'"),
    "badjson.jsonl": ('{"id": "a", "prompt": "x"}\n{oops\n', "line 2: not valid JSON"),
    "extra.yaml": ("- {id: a, prompt: x, colour: red}\n", "field 'colour' is not a known field"),
}


@pytest.mark.parametrize("name", sorted(BAD_PROMPTS))
def test_malformed_prompt_file_one_line_error_nothing_written(tmp_path, name, capsys):
    text, expected = BAD_PROMPTS[name]
    f = tmp_path / name
    f.write_text(text)
    out = tmp_path / "out"
    rc, _, err = cli_inproc(capsys, "run", "-b", "flux-tiny", "--prompts", f, "--run-dir", out)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(f) in lines[0], err
    assert expected in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("backend,expected", [
    ("flux-devv", "unknown backend 'flux-devv'; did you mean 'flux-dev'?"),
    ("flux-tiny:steps=-1", "option 'steps' must be >= 1"),
    ("flux-tiny:steps=0", "option 'steps' must be >= 1"),
    ("flux-tiny:stepz=3", "unknown option 'stepz'; did you mean 'steps'?"),
    ("flux-tiny:size=64", "size '64' is not WIDTHxHEIGHT"),
    ("flux-tiny:offload=model", "needs a CUDA device"),
    ("flux-tiny:dtype=int3", "option 'dtype' must be one of auto, bf16, fp16, fp32"),
    ("flux-dev", "no CUDA GPU found"),
    ("folder:/nonexistent/exports", "does not exist"),
])
def test_bad_backend_one_line_error_nothing_written(tmp_path, backend, expected, capsys):
    out = tmp_path / "out"
    rc, _, err = cli_inproc(capsys, "run", "-b", backend, "--run-dir", out)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], err
    assert not out.exists()


def test_bad_input_from_a_real_process_exits_2_with_one_line(tmp_path):
    r = run_cli("run", "-b", "flux-devv", "--run-dir", tmp_path / "out")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: unknown backend 'flux-devv'; did you mean 'flux-dev'? (known: " + r.stderr.split("(known: ")[1].strip()]
    assert not (tmp_path / "out").exists()


def test_missing_weights_say_how_to_get_them(tmp_path):
    out = tmp_path / "out"
    env = cli_env(HF_HOME=tmp_path / "empty-hf-home", HF_HUB_OFFLINE="1")
    r = run_cli("run", "-b", "flux-dev:device=cpu", "--run-dir", out, env=env)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "black-forest-labs/FLUX.1-dev" in lines[0] and "hf download" in lines[0]
    assert not out.exists()
    r = run_cli("run", "-b", f"flux-dev:device=cpu,path={tmp_path}", "--run-dir", out, env=env)
    assert r.returncode == 2 and "not a diffusers pipeline folder" in r.stderr


@pytest.mark.parametrize("args,expected", [
    (["--seeds", "0,x"], "is not a comma-separated list of integers"),
    (["--seeds", "1,1"], "seeds repeat"),
    (["--seeds", "-1"], "seeds must be between"),
    (["--num-seeds", "0"], "--num-seeds must be at least 1"),
    (["--limit", "0"], "--limit must be at least 1"),
    (["--category", "nope"], "no category 'nope'"),
    (["--prompts", "smok"], "unknown prompt set 'smok'; did you mean 'smoke'?"),
    (["--size", "10x"], "is not WIDTHxHEIGHT"),
])
def test_bad_run_arguments(tmp_path, args, expected, capsys):
    rc, _, err = cli_inproc(capsys, "run", "-b", "flux-tiny", "--run-dir", tmp_path / "out", *args)
    assert rc == 2 and expected in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_backend_spec_splitting():
    from evalsuite.runner import split_backend_specs

    assert split_backend_specs("flux-dev:steps=20,guidance=3.5,flux-schnell") == [
        "flux-dev:steps=20,guidance=3.5", "flux-schnell"]
    assert split_backend_specs(["flux-tiny", "reference,folder:x/"]) == ["flux-tiny", "reference", "folder:x/"]


def test_backends_command_lists_every_backend_with_why_not(capsys, monkeypatch, tmp_path):
    import torch

    from evalsuite.backends import REGISTRY

    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    rc, out, _ = cli_inproc(capsys, "backends")
    assert rc == 0
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip()}
    assert set(REGISTRY) <= set(lines)
    for name in ("flux-dev", "flux-schnell", "sdxl"):
        assert "not usable" in lines[name] and "no weights in the HF cache" in lines[name]
        assert ("no CUDA GPU" in lines[name]) == (not torch.cuda.is_available())
    for name in ("flux-tiny", "sdxl-tiny", "reference"):
        assert " usable " in lines[name]
    assert "missing key: set REPLICATE_API_TOKEN" in lines["replicate"]
