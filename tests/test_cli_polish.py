"""CLI polish: validate's full error list, a quiet closed pipe, --config, diffusers aliases, folder labels,
--dry-run without keys or GPU, help texts."""

import json
import subprocess
import sys

import pytest

from conftest import REPO, cli_env, run_cli
from evalsuite.backends import parse_spec
from evalsuite.errors import EvalsuiteError

THREE_MISTAKES = """prompts:
  - id: ok-one
    prompt: 'A red cube'
  - id: 'bad/id'
    prompt: 'A cat'
  - id: two
    prompt: '   '
    colour: red
  - id: ok-one
    prompt: 'A dog'
"""


def test_validate_lists_every_error_of_a_file_in_one_pass(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(THREE_MISTAKES, encoding="utf-8")
    r = run_cli("prompts", "validate", f, timeout=60)
    assert r.returncode == 2
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [
        f"error: {f}: entry 2 (id 'bad/id'): field 'id' 'bad/id' is not a safe file name (use letters, digits, "
        "'.', '_', '-'; at most 80 characters)",
        f"error: {f}: entry 3 (id 'two'): field 'prompt' must not be empty",
        f"error: {f}: entry 3 (id 'two'): field 'colour' is not a known field (id, prompt, category, target_text, "
        "negatives, tags, questions, geneval)",
        f"error: {f}: entry 4: field 'id' 'ok-one' duplicates entry 1",
    ]
    assert "Value error" not in r.stderr
    assert f"failed: {f}: 4 error(s)" in r.stderr
    # loading (run, show) still stops at the first error, with the same wording
    r = run_cli("prompts", "show", f, timeout=60)
    assert r.returncode == 2 and r.stderr.strip() == errors[0]


def test_a_closed_pipe_ends_quietly():
    p = subprocess.Popen([sys.executable, "-m", "evalsuite", "prompts", "show", "text", "--jsonl"], cwd=REPO,
                         env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()   # the reader is gone before the first line is written: every write fails (EPIPE)
    err = p.stderr.read().decode()
    rc = p.wait(timeout=60)
    assert err == ""
    assert rc == 141


def test_run_config_file_yaml_and_toml_recorded_and_overridden_by_flags(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("backends: [reference]\nprompts: smoke\nnum-seeds: 2\nno_score: true\nlimit: 3\n"
                   "category: text\n", encoding="utf-8")
    out = tmp_path / "run"
    r = run_cli("run", "--config", cfg, "--num-seeds", "1", "--no-progress", "-o", out, timeout=120)
    assert r.returncode == 0, r.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["seeds"] == [0]                       # the flag overrode num-seeds: 2
    assert info["prompt_set"]["name"] == "smoke" and info["prompt_set"]["limit"] == 3
    assert info["prompt_set"]["categories"] == ["text"]
    inv = info["invocations"][-1]
    assert inv["config"]["path"] == str(cfg.resolve())
    assert inv["config"]["options"] == {"backends": ["reference"], "prompts": "smoke", "num_seeds": 2,
                                        "no_score": True, "limit": 3, "category": ["text"]}
    assert not (out / "report").exists() and not (out / "scores").exists()   # no_score from the file held

    toml = tmp_path / "run.toml"
    toml.write_text('[run]\nbackends = "reference"\nprompts = "smoke"\nseeds = [0]\nno_score = true\n', encoding="utf-8")
    out2 = tmp_path / "run2"
    r = run_cli("run", "--config", toml, "--backends", "dummy", "--limit", "1", "--no-progress", "--out", out2,
                timeout=180)
    assert r.returncode == 0, r.stderr
    info = json.loads((out2 / "run.json").read_text())
    assert list(info["backends"]) == ["dummy"]        # --backends on the command line replaces the file's list
    assert info["seeds"] == [0]


@pytest.mark.parametrize("text, message", [
    ("backend: reference\n", "'backend' is not a run option; did you mean 'backends'?"),
    ("backends: reference\nnum-seeds: two\n", "option 'num-seeds': 'two' is not a valid int"),
    ("backends: reference\nno-score: 1\n", "option 'no-score': expected true or false"),
    ("backends: reference\noverlap: sometimes\n", "option 'overlap': must be one of auto, on, off"),
    ("- reference\n", "expected a mapping of run options"),
])
def test_bad_config_is_a_one_line_error_naming_file_and_key(tmp_path, text, message):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text, encoding="utf-8")
    r = run_cli("run", "--config", cfg, "-o", tmp_path / "run", timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: {cfg}: {message}" or (
        r.stderr.count("\n") == 1 and r.stderr.startswith(f"error: {cfg}: ") and message in r.stderr), r.stderr
    assert not (tmp_path / "run").exists()


def test_diffusers_option_names_are_aliases_recorded_under_the_canonical_name():
    s = parse_spec("flux-tiny:num_inference_steps=3,guidance_scale=2.5,size=64x64")
    assert s.options == {"steps": "3", "guidance": "2.5", "size": "64x64"}
    assert s.raw == "flux-tiny:steps=3,guidance=2.5,size=64x64"
    assert parse_spec("flux-tiny:steps=3").raw == "flux-tiny:steps=3"
    with pytest.raises(EvalsuiteError, match="'num_inference_steps' is diffusers' name for 'steps'"):
        parse_spec("flux-tiny:steps=3,num_inference_steps=4")


def test_alias_run_reuses_the_canonical_items(tmp_path):
    import evalsuite

    out = tmp_path / "run"
    kw = dict(seeds=[0], limit=1, run_dir=out, progress=False, log=lambda m: None, score=False)
    a = evalsuite.run("flux-tiny:num_inference_steps=2,guidance_scale=1.5", "smoke", **kw)
    assert a.total("generated") == 1
    b = evalsuite.run("flux-tiny:steps=2,guidance=1.5", "smoke", **kw)
    assert b.total("generated") == 0 and b.total("reused") == 1
    info = json.loads((out / "run.json").read_text())
    (label,) = info["backends"]
    assert info["backends"][label]["spec"] == "flux-tiny:steps=2,guidance=1.5"
    assert info["backends"][label]["config"]["steps"] == 2


def test_folder_label_names_the_backend(tmp_path):
    import evalsuite
    from PIL import Image

    src = tmp_path / "mj"
    src.mkdir()
    from evalsuite.prompts import load_prompt_set

    p = load_prompt_set("smoke").prompts[0]
    Image.new("RGB", (32, 32), "white").save(src / f"{p.id}_0.png")
    out = tmp_path / "run"
    res = evalsuite.run(f"folder:{src},label=midjourney", "smoke", seeds=[0], limit=1, run_dir=out,
                        progress=False, log=lambda m: None, score=False)
    assert list(res.backends) == ["midjourney"]
    assert (out / "items" / "midjourney" / p.id).is_dir()
    with pytest.raises(EvalsuiteError, match="option 'label' 'a/b' is not a safe folder name"):
        evalsuite.run(f"folder:{src},label=a/b", "smoke", seeds=[0], limit=1, run_dir=tmp_path / "x",
                      progress=False, log=lambda m: None, score=False)


def test_dry_run_plans_and_prices_without_keys_or_gpu(tmp_path):
    env = cli_env()
    for k in ("REPLICATE_API_TOKEN", "FAL_KEY", "FAL_KEY_ID", "BFL_API_KEY", "OPENAI_API_KEY"):
        env.pop(k, None)
    out = tmp_path / "run"
    r = run_cli("run", "-b", "flux-dev,replicate-flux-dev,bfl-flux-dev", "-p", "smoke", "--num-seeds", "1",
                "--dry-run", "-o", out, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "replicate-flux-dev" in r.stderr and "call(s), about $" in r.stderr
    assert "flux-dev" in r.stderr and "item(s) to generate locally" in r.stderr
    missing = r.stderr.split("missing to run for real:")[1]
    assert "REPLICATE_API_TOKEN" in missing and "BFL_API_KEY" in missing
    import torch

    if not torch.cuda.is_available():
        assert "flux-dev: no CUDA GPU found" in missing
    assert "dry run: 18 item(s) to generate" in r.stdout and "missing to run for real" in r.stdout
    assert not out.exists()
    # without --dry-run the same command still stops at the first missing thing, before writing anything
    r = run_cli("run", "-b", "replicate-flux-dev", "-p", "smoke", "-o", out, env=env, timeout=120)
    assert r.returncode == 2 and "REPLICATE_API_TOKEN" in r.stderr and not out.exists()


def test_help_texts_have_one_default_examples_and_required_backends():
    r = run_cli("run", "--help", timeout=60)
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "(default: None)" not in text
    assert "(default 0,1; use 4+ for publishable numbers)" in text and "0,1; use 4+ for publishable numbers) (default" not in text
    assert "(list them with `evalsuite backends`) (required)" in text
    assert "(default: core)" in text
    assert "examples:" in r.stdout
    for cmd in (["score"], ["report"], ["compare"], ["regress"], ["prompts"], ["backends"]):
        r = run_cli(*cmd, "--help", timeout=60)
        assert r.returncode == 0 and "examples:" in r.stdout, cmd
        assert "(default: None)" not in r.stdout, cmd
    for cmd in (["report"], ["compare"], ["regress"], ["prompts", "import"]):
        r = run_cli(*cmd, "--help", timeout=60)
        assert "-o OUT" in r.stdout or "--out" in r.stdout, cmd
    r = run_cli("run", "--help", timeout=60)
    assert "--out RUN_DIR, -o RUN_DIR" in r.stdout


def test_config_after_a_top_level_flag_and_bad_config_files(tmp_path, capsys):
    """`evalsuite --debug run --config F` reads F; a non-UTF-8 or value-less --config is one line, exit 2."""
    from evalsuite.cli import main

    cfg = tmp_path / "run.yaml"
    cfg.write_text("backends: [reference]\nprompts: smoke\nseeds: [0]\nlimit: 1\nno_score: true\n", encoding="utf-8")
    out = tmp_path / "run"
    assert main(["--debug", "run", "--config", str(cfg), "--no-progress", "-o", str(out)]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["invocations"][-1]["config"]["path"] == str(cfg.resolve()) and info["seeds"] == [0]
    capsys.readouterr()
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("backends: [reference]\nprompts: caf\xe9\n".encode("latin-1"))
    assert main(["run", "--config", str(bad), "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not UTF-8" in err[0] and str(bad) in err[0] and "Traceback" not in err[0]
    assert main(["run", "--config"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--config" in err[0]
    assert not (tmp_path / "x").exists()
