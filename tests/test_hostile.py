"""Hostile and unlucky input: every bad input is one line on stderr, exit 2, and changes nothing on disk.

The table runs the CLI's main() in this process (the code path of `python -m evalsuite`, without the
start-up cost); two cases run in a real process. Every case hashes the whole test area (the finished run
folder included) before and after.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

import evalsuite
from tests.conftest import run_cli

QUIET = dict(progress=False, log=lambda m: None, score=False)


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_file():
            h.update(f"F {rel} {oct(p.stat().st_mode & 0o777)}\n".encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
        elif p.is_dir():
            h.update(f"D {rel}\n".encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def area(tmp_path_factory):
    """A finished run folder plus files of every awkward kind, all under one root (hashed per case)."""
    root = tmp_path_factory.mktemp("hostile")
    run = root / "run"
    evalsuite.run("reference", "smoke", seeds=[0, 1], limit=3, run_dir=run, **QUIET)
    (root / "file.txt").write_text("just a file\n")
    (root / "emptydir").mkdir()
    (root / "notrun").mkdir()
    (root / "notrun" / "x.txt").write_text("x")
    (root / "promptsdir.yaml").mkdir()
    (root / "latin1.yaml").write_bytes("- id: cafe\n  prompt: 'caf\xe9 sign'\n".encode("latin-1"))
    (root / "latin1.jsonl").write_bytes('{"id": "a", "prompt": "caf\xe9"}\n'.encode("latin-1"))
    (root / "latin1.txt").write_bytes("caf\xe9 sign\n".encode("latin-1"))
    (root / "latin1.csv").write_bytes("prompt\ncaf\xe9\n".encode("latin-1"))
    (root / "binary.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    (root / "badyaml.yaml").write_text("- id: a\n  prompt: [unclosed\n")
    (root / "scalars.yaml").write_text("- just\n- strings\n")
    (root / "emptyfile.yaml").write_text("")
    (root / "nanfield.jsonl").write_text('{"id": "a", "prompt": "x", "target_text": NaN}\n')
    (root / "missing.yaml").write_text("- id: a\n")
    (root / "dupid.yaml").write_text("- {id: a, prompt: one}\n- {id: a, prompt: two}\n")
    (root / "unsafe.yaml").write_text("- {id: ../x, prompt: one}\n")
    (root / "extra.yaml").write_text("- {id: a, prompt: x, colour: red}\n")
    (root / "qdep.yaml").write_text("- id: a\n  prompt: x\n  questions:\n    - {id: 1, text: 'Is there a cat?'}\n"
                                    "    - {id: 2, text: 'Is it black?', depends_on: [9]}\n")
    (root / "qfield.yaml").write_text("- id: a\n  prompt: x\n  questions:\n    - {id: 1, text: 'Is there a cat?', "
                                      "parent: 0}\n")
    (root / "badjson.jsonl").write_text('{"id": "a", "prompt": "x"}\n{oops\n')
    (root / "notimage.png").write_text("not an image")
    damaged = root / "damaged-runjson"
    shutil.copytree(run, damaged)
    (damaged / "run.json").write_text('{"schema_version": 1, "evalsuite_ver')
    return root


def cases(a: Path) -> list[tuple[str, list[str], str]]:
    """(id, argv, a fragment the one-line message must contain)."""
    run, f, out = str(a / "run"), str(a / "file.txt"), str(a / "new-run")
    R = ["run", "-b", "reference", "--run-dir", out, "--no-progress", "--no-score"]
    T = ["run", "--run-dir", out, "--no-progress", "--no-score", "-b"]
    P = ["run", "-b", "reference", "--run-dir", out, "--prompts"]
    c = [
        # --- CLI arguments (argparse: one line, exit 2) ---
        ("no-command", [], "required"),
        ("unknown-command", ["frobnicate"], "invalid choice"),
        ("unknown-option", ["run", "-b", "reference", "--bogus"], "unrecognized arguments"),
        ("missing-backends", ["run", "--run-dir", out], "--backends"),
        ("limit-not-int", R + ["--limit", "x"], "invalid int value"),
        ("num-seeds-not-int", R + ["--num-seeds", "two"], "invalid int value"),
        ("concurrency-not-int", R + ["--concurrency", "many"], "invalid int value"),
        ("overlap-bad-choice", R + ["--overlap", "sometimes"], "invalid choice"),
        ("max-cost-not-number", R + ["--max-cost", "lots"], "invalid float value"),
        ("max-cost-nan", R + ["--max-cost", "nan"], "finite"),
        ("max-cost-inf", R + ["--max-cost", "inf"], "finite"),
        ("rate-limit-nan", R + ["--rate-limit", "nan"], "finite"),
        ("rate-limit-zero", R + ["--rate-limit", "0"], "--rate-limit must be > 0"),
        ("rate-limit-negative", R + ["--rate-limit", "-2"], "--rate-limit must be > 0"),
        ("max-cost-negative", R + ["--max-cost", "-1"], "--max-cost must be >= 0"),
        ("concurrency-zero", R + ["--concurrency", "0"], "--concurrency must be at least 1"),
        ("max-calls-not-int", R + ["--max-calls-without-confirm", "x"], "invalid int value"),
        ("seeds-empty", R + ["--seeds", ","], "no seeds given"),
        ("seeds-letters", R + ["--seeds", "0,x"], "not a comma-separated list of integers"),
        ("seeds-repeat", R + ["--seeds", "1,1"], "seeds repeat"),
        ("seeds-negative", R + ["--seeds", "-1"], "seeds must be between"),
        ("seeds-huge", R + ["--seeds", str(2**64)], "seeds must be between"),
        ("seeds-and-num-seeds", R + ["--seeds", "0", "--num-seeds", "2"], "either --seeds or --num-seeds"),
        ("num-seeds-zero", R + ["--num-seeds", "0"], "--num-seeds must be at least 1"),
        ("num-seeds-negative", R + ["--num-seeds", "-3"], "--num-seeds must be at least 1"),
        ("limit-zero", R + ["--limit", "0"], "--limit must be at least 1"),
        ("limit-negative", R + ["--limit", "-4"], "--limit must be at least 1"),
        ("category-unknown", R + ["--category", "nope"], "no category 'nope'"),
        ("size-no-height", R + ["--size", "10x"], "is not WIDTHxHEIGHT"),
        ("size-words", R + ["--size", "big"], "is not WIDTHxHEIGHT"),
        ("size-zero", R + ["--size", "0x0"], "out of range"),
        ("size-huge", R + ["--size", "99999x99999"], "out of range"),
        ("scorers-unknown", ["run", "-b", "reference", "--run-dir", out, "--scorers", "vibes"], "unknown scorer"),
        ("scorers-empty", ["run", "-b", "reference", "--run-dir", out, "--scorers", ","], "no scorer given"),
        ("ocr-unknown", ["run", "-b", "reference", "--run-dir", out, "--ocr", "tesseract9"], "tesseract9"),
        ("run-dir-is-file", ["run", "-b", "reference", "--run-dir", f, "--no-score"], "is a file, not a directory"),
        ("run-dir-not-run-folder", ["run", "-b", "reference", "--run-dir", str(a / "notrun"), "--no-score"],
         "is not a run folder"),
        # --- prompt files ---
        ("prompts-unknown-set", P + ["smok"], "unknown prompt set 'smok'"),
        ("prompts-missing-file", P + [str(a / "nope.yaml")], "does not exist"),
        ("prompts-directory", P + [str(a / "promptsdir.yaml")], "is a directory"),
        ("prompts-latin1-yaml", P + [str(a / "latin1.yaml")], "not UTF-8"),
        ("prompts-latin1-jsonl", P + [str(a / "latin1.jsonl")], "not UTF-8"),
        ("prompts-binary", P + [str(a / "binary.yaml")], "not UTF-8"),
        ("prompts-bad-yaml", P + [str(a / "badyaml.yaml")], "not valid YAML"),
        ("prompts-scalars", P + [str(a / "scalars.yaml")], "latin1" if False else "entry 1"),
        ("prompts-empty-file", P + [str(a / "emptyfile.yaml")], "emptyfile.yaml"),
        ("prompts-missing-field", P + [str(a / "missing.yaml")], "field 'prompt' is required"),
        ("prompts-dup-id", P + [str(a / "dupid.yaml")], "duplicates entry 1"),
        ("prompts-unsafe-id", P + [str(a / "unsafe.yaml")], "field 'id'"),
        ("prompts-extra-field", P + [str(a / "extra.yaml")], "field 'colour' is not a known field"),
        ("prompts-bad-json-line", P + [str(a / "badjson.jsonl")], "line 2: not valid JSON"),
        ("prompts-nan-field", P + [str(a / "nanfield.jsonl")], "nanfield.jsonl"),
        ("prompts-question-missing-parent", P + [str(a / "qdep.yaml")],
         "entry 1 (id 'a'): field 'questions' question '2' depends on '9'"),
        ("prompts-question-unknown-field", P + [str(a / "qfield.yaml")],
         "field 'questions.0.parent' is not a known question field"),
        ("import-missing", P + [f"parti:{a / 'nope.tsv'}"], "no such file"),
        ("import-directory", P + [f"parti:{a / 'emptydir'}"], "is a directory"),
        ("import-latin1-text", P + [f"text:{a / 'latin1.txt'}"], "not UTF-8"),
        ("import-latin1-csv", P + [f"csv:{a / 'latin1.csv'}"], "not UTF-8"),
        ("import-no-path", P + ["parti:"], "give a path after 'parti:'"),
        ("import-unknown-format", P + ["wordsoup:x.txt"], "unknown prompt import format"),
        # --- backend specs ---
        ("backend-empty", T + [","], "no backends given"),
        ("backend-unknown", T + ["flux-devv"], "unknown backend 'flux-devv'"),
        ("backend-garbage", T + ["!!!"], "expected NAME[@QUANT]"),
        ("backend-twice", T + ["reference,reference"], "given twice"),
        ("backend-not-key-value", T + ["flux-tiny:steps"], "is not key=value"),
        ("backend-unknown-option", T + ["flux-tiny:stepz=3"], "unknown option 'stepz'"),
        ("backend-steps-negative", T + ["flux-tiny:steps=-1"], "must be >= 1"),
        ("backend-steps-zero", T + ["flux-tiny:steps=0"], "must be >= 1"),
        ("backend-steps-word", T + ["flux-tiny:steps=many"], "is not a valid int"),
        ("backend-guidance-nan", T + ["flux-tiny:guidance=nan"], "finite number"),
        ("backend-guidance-inf", T + ["flux-tiny:guidance=inf"], "finite number"),
        ("backend-guidance-minus-inf", T + ["flux-tiny:guidance=-inf"], "finite number"),
        ("backend-guidance-word", T + ["flux-tiny:guidance=high"], "is not a valid float"),
        ("backend-size-bad", T + ["flux-tiny:size=64"], "is not WIDTHxHEIGHT"),
        ("backend-dtype-bad", T + ["flux-tiny:dtype=int3"], "must be one of"),
        ("backend-offload-cpu", T + ["flux-tiny:offload=model"], "needs a CUDA device"),
        ("backend-device-cuda", T + ["flux-tiny:device=cuda"], "CUDA is not available"),
        ("backend-flux-dev-no-gpu", T + ["flux-dev"], "no CUDA GPU found"),
        ("backend-bool-bad", T + ["flux-tiny:vae_tiling=maybe"], "expected true/false"),
        ("backend-quant-unknown", T + ["flux-tiny@int3"], "int3"),
        ("backend-reference-quant", T + ["reference@int8"], "takes no quantization"),
        ("backend-folder-missing", T + [f"folder:{a / 'nope'}"], "does not exist"),
        ("backend-folder-is-file", T + [f"folder:{f}"], "is a file, not a folder"),
        ("backend-folder-no-ref", T + ["folder"], "needs a reference"),
        ("backend-lora-missing", T + [f"flux-tiny:lora={a / 'nope.safetensors'}"], "nope.safetensors"),
        ("backend-lora-scale-nan", T + [f"flux-tiny:lora={a / 'file.txt'}:nan"], "finite number"),
        ("backend-gguf-missing", T + [f"flux-tiny@gguf:{a / 'nope.gguf'}"], "nope.gguf"),
        ("backend-replicate-no-token", T + ["replicate:black-forest-labs/flux-schnell"], "REPLICATE_API_TOKEN"),
        ("backend-replicate-bad-model", T + ["replicate:not-a-model"], "expected replicate:OWNER/MODEL"),
        ("backend-replicate-timeout-nan", T + ["replicate:a/flux-schnell,timeout=nan"], "finite number"),
        ("backend-replicate-price-inf", T + ["replicate:a/flux-schnell,price=inf"], "finite number"),
        ("backend-replicate-concurrency-0", T + ["replicate:a/flux-schnell,concurrency=0"], "concurrency"),
        ("backend-replicate-concurrency-big", T + ["replicate:a/flux-schnell,concurrency=1000"], "at most 64"),
        ("backend-replicate-quant", T + ["replicate@int8:a/flux-schnell"], "take no quantization"),
        ("backend-fal-no-key", T + ["fal:fal-ai/flux/dev"], "FAL_KEY"),
        ("backend-bfl-no-key", T + ["bfl:flux-dev"], "BFL_API_KEY"),
        ("backend-bfl-safety-bad", T + ["bfl:flux-dev,safety_tolerance=9"], "'safety_tolerance' is 0..6"),
        ("backend-openai-no-key", T + ["openai:gpt-image-2"], "OPENAI_API_KEY"),
        ("backend-openai-bad-quality", T + ["openai:gpt-image-2,quality=ultra"], "option 'quality' must be one of"),
        ("backend-comfyui-bad-option", T + ["comfyui:http://127.0.0.1:1,stepz=4"], "unknown option 'stepz'"),
        ("backend-preset-guidance-nan", T + ["bfl-flux-dev:guidance=nan"], "finite number"),
        # --- score ---
        ("score-missing-folder", ["score", str(a / "nope")], "does not exist"),
        ("score-file", ["score", f], "is a file, not a run folder"),
        ("score-empty-dir", ["score", str(a / "emptydir")], "no run.json"),
        ("score-damaged-run-json", ["score", str(a / "damaged-runjson"), "--scorers", "ocr"], "--repair"),
        ("score-unknown-scorer", ["score", run, "--scorers", "vibes"], "unknown scorer"),
        ("score-unknown-ocr", ["score", run, "--ocr", "tesseract9"], "tesseract9"),
        ("score-batch-zero", ["score", run, "--clip-batch-size", "0"], "at least 1"),
        ("score-batch-word", ["score", run, "--clip-batch-size", "x"], "invalid int value"),
        # --- report ---
        ("report-missing-folder", ["report", str(a / "nope")], "does not exist"),
        ("report-file", ["report", f], "is a file, not a run folder"),
        ("report-not-run", ["report", str(a / "notrun")], "no run.json"),
        ("report-damaged-run-json", ["report", str(a / "damaged-runjson")], "--repair"),
        ("report-out-is-file", ["report", run, "--out", f], "is not a folder"),
        ("report-thumb-tiny", ["report", run, "--out", str(a / "rep"), "--thumb-size", "4"], "at least 16"),
        ("report-embed-bad", ["report", run, "--embed", "maybe"], "invalid choice"),
        # --- compare / regress ---
        ("compare-missing", ["compare", run, str(a / "nope")], "does not exist"),
        ("compare-file", ["compare", f, run], "is a file, not a run folder"),
        ("compare-damaged", ["compare", str(a / "damaged-runjson"), run], "--repair"),
        ("compare-margin-no-equals", ["compare", run, run, "--margin", "clip_score"], "expected metric=value"),
        ("compare-margin-unknown", ["compare", run, run, "--margin", "vibes=1"], "unknown metric 'vibes'"),
        ("compare-margin-nan", ["compare", run, run, "--margin", "clip_score=nan"], "must be a number > 0"),
        ("compare-margin-word", ["compare", run, run, "--margin", "clip_score=big"], "is not a number"),
        ("compare-min-psnr-nan", ["compare", run, run, "--min-psnr", "nan"], "finite"),
        ("compare-ceiling-inf", ["compare", run, run, "--ceiling-margin-db", "inf"], "finite"),
        ("compare-metrics-unknown", ["compare", run, run, "--metrics", "vibes"], "vibes"),
        ("compare-pair-bad", ["compare", run, run, "--pair", "nolabel"], "nolabel"),
        ("regress-unknown-backend", ["regress", "-b", "flux-devv", "--quant", "int8", "--results", str(a / "res")],
         "unknown backend 'flux-devv'"),
        ("regress-no-quant", ["regress", "-b", "flux-tiny"], "required"),
        # --- prompts ---
        ("prompts-show-unknown", ["prompts", "show", "nope-set"], "unknown prompt set"),
        ("prompts-show-directory", ["prompts", "show", str(a / "promptsdir.yaml")], "is a directory"),
        ("prompts-show-limit-zero", ["prompts", "show", "smoke", "--limit", "0"], "--limit must be at least 1"),
        ("prompts-validate-latin1", ["prompts", "validate", str(a / "latin1.yaml")], "not UTF-8"),
        ("prompts-validate-directory", ["prompts", "validate", str(a / "promptsdir.yaml")], "is a directory"),
        ("prompts-validate-missing", ["prompts", "validate", str(a / "nope.yaml")], "does not exist"),
        ("prompts-import-missing", ["prompts", "import", "parti", str(a / "nope.tsv"), "-o", str(a / "o.yaml")],
         "no such file"),
        ("prompts-import-directory", ["prompts", "import", "parti", str(a / "emptydir"), "-o", str(a / "o.yaml")],
         "is a directory"),
        ("prompts-import-latin1", ["prompts", "import", "text", str(a / "latin1.txt"), "-o", str(a / "o.yaml")],
         "not UTF-8"),
        ("prompts-import-bad-format", ["prompts", "import", "wordsoup", f, "-o", str(a / "o.yaml")], "invalid choice"),
        ("prompts-import-out-exists", ["prompts", "import", "text", f, "-o", str(a / "dupid.yaml")], "exists"),
        ("prompts-no-action", ["prompts"], "required"),
        ("prompts-questions-no-llm", ["prompts", "questions", "smoke", "-o", str(a / "q.yaml")], "--llm"),
        ("prompts-questions-out-exists", ["prompts", "questions", "smoke", "--llm", "http://127.0.0.1:9/v1", "-o",
                                          str(a / "dupid.yaml")], "exists; use --force"),
        ("prompts-questions-concurrency-zero", ["prompts", "questions", "smoke", "--llm", "http://127.0.0.1:9/v1",
                                                "-o", str(a / "q.yaml"), "--concurrency", "0"],
         "--concurrency must be at least 1"),
        ("prompts-questions-bad-out", ["prompts", "questions", "smoke", "--llm", "http://127.0.0.1:9/v1", "-o",
                                       str(a / "q.txt")], "must end in .yaml, .yml or .jsonl"),
        # --- check ---
        ("check-missing", ["check", str(a / "nope")], "does not exist"),
        ("check-file", ["check", f], "is a file, not a run folder"),
        ("check-empty-dir", ["check", str(a / "emptydir")], "is not a run folder"),
        ("check-damaged-run-json", ["check", str(a / "damaged-runjson")], "run.json"),
    ]
    return c


def _ids(tmp="/x"):
    return [c[0] for c in cases(Path(tmp))]


def test_table_has_at_least_100_distinct_bad_inputs():
    c = cases(Path("/x"))
    assert len({x[0] for x in c}) == len(c) >= 100
    assert len({tuple(x[1]) for x in c}) == len(c)


@pytest.mark.parametrize("case_id", _ids())
def test_bad_input_one_line_exit_2_nothing_changed(area, case_id, capsys, monkeypatch):
    from evalsuite.cli import main

    for k in ("REPLICATE_API_TOKEN", "FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET", "BFL_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.chdir(area / "emptydir")       # a default results/ folder would show up in the hash
    _, argv, fragment = next(c for c in cases(area) if c[0] == case_id)
    before = tree_hash(area)
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    if case_id == "check-damaged-run-json":      # check reports problems on stdout, one per line, and exits 2
        lines = [ln for ln in out.strip().splitlines() if "run.json" in ln][:1]
    assert rc == 2, (case_id, rc, err)
    assert len(lines) == 1, (case_id, err)
    assert "Traceback" not in err and fragment in lines[0], (case_id, err)
    assert tree_hash(area) == before, f"{case_id} changed files on disk"


def test_bad_input_in_a_real_process_and_debug_shows_the_trace(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("- id: cafe\n  prompt: 'caf\xe9'\n".encode("latin-1"))
    r = run_cli("prompts", "validate", bad)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "not UTF-8" in r.stderr, r.stderr
    f = tmp_path / "f"
    f.write_text("x")
    r = run_cli("run", "-b", "reference", "--run-dir", f, "--no-score")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: --run-dir {f} is a file, not a directory; give a folder path"], r.stderr


def test_unexpected_error_is_one_line_and_debug_shows_the_trace(capsys, monkeypatch):
    from evalsuite import cli

    def boom(args):
        raise ZeroDivisionError("something internal")

    monkeypatch.setattr(cli, "_cmd_backends", boom)
    capsys.readouterr()
    assert cli.main(["backends"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["error: unexpected ZeroDivisionError: something internal; rerun with "
                                        "`evalsuite --debug ...` for the trace and report it"]
    assert cli.main(["--debug", "backends"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err
