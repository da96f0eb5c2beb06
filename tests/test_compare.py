"""Paired comparison and `regress` (docs/compare.md) on real runs: flux-tiny (random weights: noise
images, so only fidelity can tell variants apart), its optimum-quanto int8 variant and its TEST-ONLY
damaged variant; the `reference` backend against honest folder candidates written here (garbled
renders, all-black images) for the text metric and the hard gates. OCR is real EasyOCR."""

import json
import math
import shutil

import numpy as np
import pytest
from PIL import Image

import evalsuite
from evalsuite import cli
from evalsuite.backends.reference import font_paths, render_text
from evalsuite.compare import (compare, decide, exit_code, format_verdict, mcnemar, parse_margins, parse_metrics,
                               parse_pairs, prompts_needed, write_outputs)
from evalsuite.errors import EvalsuiteError
from evalsuite.runfolder import RunFolder

QUIET = dict(progress=False, log=lambda m: None)


def _strict_json(path):
    """compare.json must be standard JSON: no NaN/Infinity tokens."""
    def bad(tok):
        raise AssertionError(f"non-standard JSON constant {tok} in {path}")
    return json.loads(path.read_text(), parse_constant=bad)


# ---------------------------------------------------------------- pure parts


def test_parse_margins_metrics_pairs():
    assert parse_margins(["text_exact=5", "clip_score=1,prompt_following=2.5"]) == \
        {"text_exact": 5.0, "clip_score": 1.0, "prompt_following": 2.5}
    assert parse_margins({"word_recall": 4}) == {"word_recall": 4.0}
    assert parse_margins(None) == {}
    for bad, msg in (("text_exact", "expected metric=value"), ("fid=3", "unknown metric 'fid'"),
                     ("text_exact=abc", "not a number"), ("text_exact=0", "> 0"), ("text_exact=-1", "> 0"),
                     ("text_exact=nan", "> 0"), ("text_exact=inf", "> 0")):
        with pytest.raises(EvalsuiteError, match=msg):
            parse_margins([bad])
    with pytest.raises(EvalsuiteError, match="given twice"):
        parse_margins(["text_exact=3", "text_exact=4"])
    assert parse_metrics("text_exact, clip_score") == ["text_exact", "clip_score"]
    assert parse_metrics(None)[0] == "clip_score"
    with pytest.raises(EvalsuiteError, match="unknown metric 'lpips'"):
        parse_metrics("lpips")
    assert parse_pairs(["a=b", "c = d"]) == {"a": "b", "c": "d"}
    for bad in (["ab"], ["=b"], ["a=b", "a=c"]):
        with pytest.raises(EvalsuiteError):
            parse_pairs(bad)


def test_decision_rule_and_prompt_estimate():
    # metrics.md: pass when CI low > -m, fail when CI high < -m, else inconclusive
    assert decide(-2.9, 4.0, -3.0) == "pass"
    assert decide(-9.0, -3.1, -3.0) == "fail"
    assert decide(-4.0, 1.0, -3.0) == "inconclusive"
    assert decide(-3.0, 1.0, -3.0) == "inconclusive"          # on the bound: not yet a pass
    # n ~ 6.2 sd^2 / m^2
    assert prompts_needed(10.0, 3.0) == math.ceil(6.2 * 100 / 9)
    assert prompts_needed(0.0, 3.0) == 2 and prompts_needed(1.0, 0.0) is None
    mc = mcnemar([(1, 0), (1, 0), (1, 1), (0, 1), (0, 0), (1, 0)])
    assert (mc["baseline_only"], mc["candidate_only"], mc["both"], mc["neither"]) == (3, 1, 1, 1)
    assert mc["p_value"] == pytest.approx(2 * (1 + 4) / 16)      # exact binomial, n=4, k=1


# ---------------------------------------------------------------- flux-tiny: regress int8, damaged, identical rerun


@pytest.fixture(scope="module")
def regress_int8(tmp_path_factory):
    """`evalsuite regress --backend flux-tiny --quant int8 --prompts smoke --seeds 0,1 --scorers ocr` (in-process
    main; smoke's 6 prompts are the fewest the fidelity gate decides on, 3 of them carry the text metrics)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    results = tmp_path_factory.mktemp("results")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = cli.main(["regress", "--backend", "flux-tiny", "--quant", "int8", "--prompts", "smoke",
                       "--seeds", "0,1", "--scorers", "ocr", "--results", str(results), "--no-progress"])
    return results, rc, out.getvalue(), err.getvalue()


def _dirs(results):
    return {p.name.split("--")[0]: p for p in (results / "regress").iterdir()}


def test_regress_int8_is_inconclusive_on_what_it_could_not_measure(regress_int8):
    """int8 passes the fidelity gate, but smoke has 3 text prompts (fewer than a gate decides on) and CLIP is
    missing in both runs: the verdict is inconclusive (exit 3) and says exactly why (issue 12: it used to
    print PASS with clip_score and prompt_following never measured)."""
    results, rc, out, err = regress_int8
    assert rc == 3, out + err
    verdict = next(ln for ln in out.splitlines() if ln.startswith("verdict:"))
    assert verdict.startswith("verdict: INCONCLUSIVE (exit 3): inconclusive: ")
    assert "clip_score (missing: not scored in either run" in verdict and "prompt_following (missing:" in verdict
    assert "text_exact (too few paired prompts (n=3; at least 5 are needed))" in verdict
    basis = next(ln for ln in out.splitlines() if ln.startswith("the verdict rests on:"))
    assert "gated: text_exact (6 pairs over 3 prompts), psnr_over_ceiling (6 prompts)" in basis
    assert "missing: clip_score (not scored in either run" in basis
    dirs = _dirs(results)
    assert set(dirs) == {"flux-tiny", "flux-tiny@int8"}
    base, cand = dirs["flux-tiny"], dirs["flux-tiny@int8"]
    outdir = cand / f"compare-{base.name}"
    for f in ("compare.md", "compare.json", "deltas.png", "regressed.html"):
        assert (outdir / f).is_file(), f
    res = _strict_json(outdir / "compare.json")
    (pr,) = res["pairs"]
    assert pr["n_pairs"] == 12 and pr["n_prompts"] == 6 and pr["unmatched"] == []
    assert pr["hard_gates"] == {"checked": 12, "failed": [], "decision": "pass"}
    fid = pr["fidelity"]
    assert fid["psnr"]["mean"] > 45 and fid["psnr"]["min_item"] > 45          # measured ~58.7 dB
    assert fid["ceiling"]["psnr"]["mean"] < 20                                 # noise vs noise: ~14.7 dB
    assert fid["gates"]["psnr_over_ceiling"]["decision"] == "pass"
    # metrics: text accuracy is 0 for both (noise): never a fail
    te = pr["metrics"]["text_exact"]
    assert te["decision"] == "inconclusive" and te["n_prompts"] == 3 and te["n_items"] == 6
    assert te["n_applicable"] == 6 and te["min_prompts"] == 77           # a 3 pp margin needs 77 prompts to pass
    assert pr["metrics"]["clip_score"]["decision"] == "missing"
    # --allow-missing: the missing CLIP metrics no longer count, the verdict names them; text_exact still decides
    base, cand = _dirs(results)["flux-tiny"], _dirs(results)["flux-tiny@int8"]
    res2 = compare(base, cand, fidelity_clip=False, allow_missing="clip_score,prompt_following")
    assert res2["verdict"]["decision"] == "inconclusive"
    assert res2["verdict"]["inconclusive"] == [
        "flux-tiny -> flux-tiny@int8: text_exact (too few paired prompts (n=3; at least 5 are needed))"]
    assert "allowed missing (--allow-missing): clip_score (not scored in either run" in res2["verdict"]["basis"]
    # memory and speed: int8 weights take less memory; medians exclude the warm-up item
    cb, cc = pr["costs"]["baseline"], pr["costs"]["candidate"]
    assert cc["quantization"] == "int8" and cc["weight_bytes"] < cb["weight_bytes"]
    assert cb["n_timed"] == 11 and cb["n_warmup"] == 1 and cb["median_s"] > 0
    md = (outdir / "compare.md").read_text()
    assert "| text_exact (pp) |" in md and "deltas.png" in md
    html = (outdir / "regressed.html").read_text()
    assert html.count("data:image/png;base64,") >= 2 * 2 and "Most regressed prompts" in html


def test_regress_damaged_fails_and_reuses_baseline(regress_int8, capsys):
    results, *_ = regress_int8
    rc = cli.main(["regress", "--backend", "flux-tiny", "--candidate", "flux-tiny:damage=2", "--prompts", "smoke",
                   "--seeds", "0,1", "--scorers", "ocr", "--results", str(results), "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 1, cap.out + cap.err
    assert "psnr_over_ceiling (dB)" in cap.out and "FAIL" in cap.out
    assert "verdict: FAIL (exit 1): failed: flux-tiny -> flux-tiny_damage-2: psnr_over_ceiling" in cap.out
    assert "nothing to generate: all 12 items already in" in cap.err      # the baseline was reused
    res = _strict_json(_dirs(results)["flux-tiny_damage-2"] / f"compare-{_dirs(results)['flux-tiny'].name}" /
                       "compare.json")
    g = res["pairs"][0]["fidelity"]["gates"]["psnr_over_ceiling"]
    assert g["decision"] == "fail" and g["ci90"][1] < 3.0
    # the reused baseline keeps the weight memory measured when it was generated
    assert res["pairs"][0]["costs"]["baseline"]["weight_bytes"] == res["pairs"][0]["costs"]["candidate"]["weight_bytes"] > 0


def test_damage_half_fails_only_with_min_psnr(regress_int8, tmp_path):
    """flux-tiny:damage=0.5 keeps PSNR ~25.8 dB, far above the seed ceiling: it fails only with an explicit
    absolute fidelity gate, and the verdict names it."""
    results, *_ = regress_int8
    base = _dirs(results)["flux-tiny"]
    cand = tmp_path / "damaged"
    evalsuite.run("flux-tiny:damage=0.5", "smoke", seeds=[0, 1], run_dir=cand, score=False, **QUIET)
    res = compare(base, cand, metrics="text_exact", fidelity_clip=False)
    assert res["verdict"]["decision"] == "inconclusive"           # candidate not scored: text_exact missing
    assert res["pairs"][0]["metrics"]["text_exact"]["missing_reason"] == "not scored in the candidate run"
    assert res["pairs"][0]["fidelity"]["gates"]["psnr_over_ceiling"]["decision"] == "pass"
    res = compare(base, cand, metrics="text_exact", fidelity_clip=False, min_psnr=30)
    assert exit_code(res) == 1 and res["verdict"]["failed"] == ["flux-tiny -> flux-tiny_damage-0.5: psnr"]
    assert 20 < res["pairs"][0]["fidelity"]["gates"]["psnr"]["value"] < 30


def test_identical_rerun_zero_deltas_with_honest_intervals(regress_int8, tmp_path):
    """An identical rerun: every delta is exactly 0, but 3 text prompts cannot show that a 3 pp margin holds
    (issue 12: no confident [0, 0] from a handful of prompts); the fidelity gate passes on 6 prompts."""
    results, *_ = regress_int8
    base = _dirs(results)["flux-tiny"]
    again = tmp_path / "again"
    evalsuite.run("flux-tiny", "smoke", seeds=[0, 1], run_dir=again, scorers="ocr", **QUIET)
    res = compare(base, again, fidelity_clip=False, allow_missing="clip_score,prompt_following")
    assert res["verdict"]["decision"] == "inconclusive" and exit_code(res) == 3
    (pr,) = res["pairs"]
    for m in ("text_exact", "text_similarity", "word_recall"):
        e = pr["metrics"][m]
        assert e["delta"] == 0.0 and e["ci90"][0] < 0.0 < e["ci90"][1] and e["ci95"][0] < e["ci90"][0], m
    assert pr["fidelity"]["gates"]["psnr_over_ceiling"]["decision"] == "pass"
    assert pr["metrics"]["text_exact"]["mcnemar"]["baseline_only"] == 0
    ps = pr["fidelity"]["psnr"]
    assert ps["all_identical"] and pr["fidelity"]["identical_pairs"] == 12
    # identical images: PSNR is +inf per item; averaged as the max PSNR of a 64x64 RGB image
    assert ps["median_item"] == math.inf and ps["mean"] == pytest.approx(10 * math.log10(255**2 * 64 * 64 * 3))
    assert pr["fidelity"]["ssim"]["mean"] == pytest.approx(1.0)
    assert "PSNR inf (all pairs identical)" in format_verdict(res)
    files = write_outputs(res, tmp_path / "out")
    js = _strict_json(files["json"])
    assert js["pairs"][0]["fidelity"]["psnr"]["median_item"] == "inf"


# ---------------------------------------------------------------- reference vs honest folder candidates


def _garble(text: str) -> str:
    """Every letter and digit shifted by one (OPEN 24 -> PQFO 35): legible, but the wrong text."""
    out = []
    for ch in text:
        if ch.isupper():
            out.append(chr((ord(ch) - 65 + 1) % 26 + 65))
        elif ch.isdigit():
            out.append(str((int(ch) + 1) % 10))
        else:
            out.append(ch)
    return "".join(out)


@pytest.fixture(scope="module")
def ref_base(tmp_path_factory):
    """reference over smoke's text prompts, seed 0 (no seed ceiling: the fidelity gate is not measured, so
    only the text metric and the hard gates decide), 256x256, OCR-scored."""
    d = tmp_path_factory.mktemp("ref") / "base"
    evalsuite.run("reference", "smoke", seeds=[0], size="256x256", run_dir=d, scorers="ocr", **QUIET)
    return d


def _folder_run(tmp_path, name, make_image, ref_base, scorers="ocr"):
    rf = RunFolder(ref_base)
    src = tmp_path / f"{name}-files"
    src.mkdir()
    prompts = rf.prompts()
    for e, r in rf.records():
        img = make_image(prompts[e.prompt_id], e.seed, Image.open(ref_base / r.image).convert("RGB"))
        img.save(src / f"{e.prompt_id}_{e.seed}.png")
    d = tmp_path / name
    evalsuite.run(f"folder:{src},size=256x256", "smoke", categories=["text"], seeds=[0], run_dir=d,
                  scorers=scorers or "ocr", score=scorers is not None, **QUIET)
    return d


@pytest.fixture(scope="module")
def ref_text(tmp_path_factory):
    """reference over the first 24 prompts of the `text` set, seed 0, 256x256, OCR-scored: enough prompts for a
    10 pp margin on text_exact (it needs 23 paired prompts to pass)."""
    d = tmp_path_factory.mktemp("reftext") / "base"
    evalsuite.run("reference", "text", limit=24, seeds=[0], size="256x256", run_dir=d, scorers="ocr", **QUIET)
    return d


def test_garbled_text_candidate_fails_on_text_exact(ref_text, tmp_path, capsys):
    font = font_paths()[0]
    rf = RunFolder(ref_text)
    src = tmp_path / "garbled-files"
    src.mkdir()
    prompts = rf.prompts()
    from evalsuite.prompts import load_prompt_set

    for pid in [p.id for p in load_prompt_set("text", limit=6).prompts]:
        render_text([_garble(t) for t in prompts[pid].target_text], 256, 256, font).save(src / f"{pid}_0.png")
    cand = tmp_path / "garbled"
    evalsuite.run(f"folder:{src},size=256x256", "text", limit=6, seeds=[0], run_dir=cand, scorers="ocr", **QUIET)
    rc = cli.main(["compare", str(ref_text), str(cand), "--no-clip", "-o", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 1, out
    line = next(ln for ln in out.splitlines() if ln.startswith("text_exact"))
    assert "FAIL" in line and "McNemar 6 lost / 0 gained" in line and " 6/6 " in line
    verdict = next(ln for ln in out.splitlines() if ln.startswith("verdict:"))
    assert verdict.startswith("verdict: FAIL (exit 1): failed: reference -> folder_") and ": text_exact" in verdict
    assert "seed ceiling: the baseline has fewer than 2 seeds" in out
    res = _strict_json(tmp_path / "out" / "compare.json")
    te = res["pairs"][0]["metrics"]["text_exact"]
    assert te["n_prompts"] == 6 and te["candidate_mean"] == 0.0 and te["delta"] <= -50.0
    assert te["ci90"][0] <= te["delta"] < te["ci90"][1] < -3.0          # a real interval, not [-100, -100]
    assert te["mcnemar"]["candidate_only"] == 0 and te["mcnemar"]["baseline_only"] >= 3
    assert res["pairs"][0]["hard_gates"]["decision"] == "pass"
    # the published protocols are compared like any metric (reported, not gated)
    one = res["pairs"][0]["metrics"]["oneig_text_score"]
    assert one["decision"] == "reported" and one["baseline_mean"] == 1.0 and one["candidate_mean"] < 1.0
    # the prompt sets differ (6 of 24 prompts): reported
    assert any("different prompt sets" in w for w in res["warnings"])


def test_identical_copy_passes_only_with_enough_prompts_and_nothing_missing(ref_text, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(ref_text, copy)
    # CLIP was never scored: the gated CLIP metrics are missing, so the verdict cannot be a pass
    res = compare(ref_text, copy, fidelity_clip=False, margins="text_exact=10")
    assert exit_code(res) == 3
    assert any("clip_score (missing: not scored in either run" in x for x in res["verdict"]["inconclusive"])
    # allowed missing by name: a pass, and the verdict says what it rests on and what it could not check
    res = compare(ref_text, copy, fidelity_clip=False, margins="text_exact=10",
                  allow_missing=["clip_score", "prompt_following"])
    assert res["verdict"]["decision"] == "pass" and exit_code(res) == 0, res["verdict"]
    te = res["pairs"][0]["metrics"]["text_exact"]
    assert te["delta"] == 0.0 and te["n_prompts"] == 24 and -10.0 < te["ci90"][0] < 0.0 < te["ci90"][1]
    assert te["min_prompts"] == 23
    basis = res["verdict"]["basis"]
    assert basis.startswith("gated: text_exact (24 pairs over 24 prompts)")
    assert "allowed missing (--allow-missing): clip_score (not scored in either run" in basis
    assert "the verdict rests on: gated: text_exact (24 pairs over 24 prompts)" in format_verdict(res)
    # the default 3 pp margin needs 77 paired prompts: 24 identical ones cannot pass it
    res = compare(ref_text, copy, fidelity_clip=False, allow_missing="clip_score,prompt_following")
    assert exit_code(res) == 3
    assert res["verdict"]["inconclusive"] == ["reference -> reference: text_exact (too few paired prompts for a "
                                              "margin of 3 pp: n=24, it needs >= 77 to pass)"]


def test_unscored_candidate_items_make_the_gate_inconclusive(ref_text, tmp_path):
    """8 of 24 candidate items lost their OCR scores (e.g. an interrupted `score`): the gate does not pass on
    the 16 left; the headline counts them."""
    from evalsuite.scoring import load_scores, write_table

    cand = tmp_path / "partly-scored"
    shutil.copytree(ref_text, cand)
    df = load_scores(cand)
    gone = sorted(set(df["prompt_id"]))[:8]
    for r in df[df.prompt_id.isin(gone) & df.cache_key.notna()].drop_duplicates("cache_key").itertuples():
        (cand / "scores" / "details" / r.scorer_id / r.cache_key[:2] / f"{r.cache_key}.json").unlink()
    write_table(cand)
    left = load_scores(cand)
    assert set(left.loc[left.value.notna(), "prompt_id"]) == set(df["prompt_id"]) - set(gone)
    assert left.loc[left.prompt_id.isin(gone), "missing_reason"].str.startswith("not scored with ocr rapidocr").all()
    res = compare(ref_text, cand, fidelity_clip=False, margins="text_exact=10",
                  allow_missing="clip_score,prompt_following")
    assert exit_code(res) == 3
    te = res["pairs"][0]["metrics"]["text_exact"]
    assert (te["n_items"], te["n_applicable"], te["n_unscored_candidate"], te["n_unscored_baseline"]) == (16, 24, 8, 0)
    assert te["decision"] == "inconclusive"
    assert te["inconclusive_reason"] == "8 of 24 paired items unscored (baseline 0, candidate 8)"
    out = format_verdict(res)
    line = next(ln for ln in out.splitlines() if ln.startswith("text_exact (pp)"))
    assert line.split()[2] == "16/24"
    assert "text_exact (16 pairs over 16 prompts, 8 unscored)" in out
    assert "24 pairs over 24 prompts, seeds 0; unscored paired items: text_exact 8," in out


def test_one_prompt_gate_is_inconclusive(tmp_path):
    """One prompt, 4 seeds, the candidate garbles 1 of them: the old gate printed FAIL with CI [-25, -25];
    one prompt cannot decide anything about a prompt set."""
    base = tmp_path / "base"
    evalsuite.run("reference", "smoke", limit=1, seeds=[0, 1, 2, 3], size="256x256", run_dir=base, scorers="ocr",
                  **QUIET)
    font = font_paths()[0]
    src = tmp_path / "files"
    src.mkdir()
    rf = RunFolder(base)
    (pid,) = rf.prompts()
    targets = rf.prompts()[pid].target_text
    for seed in range(4):
        render_text([_garble(t) for t in targets] if seed == 1 else targets, 256, 256, font).save(src / f"{pid}_{seed}.png")
    cand = tmp_path / "cand"
    evalsuite.run(f"folder:{src},size=256x256", "smoke", limit=1, seeds=[0, 1, 2, 3], run_dir=cand, scorers="ocr",
                  **QUIET)
    res = compare(base, cand, fidelity_clip=False, allow_missing="clip_score,prompt_following")
    te = res["pairs"][0]["metrics"]["text_exact"]
    assert te["delta"] == pytest.approx(-25.0) and te["n_prompts"] == 1 and te["n_items"] == 4
    assert te["ci90"] == [-100.0, 100.0] and te["decision"] == "inconclusive"
    assert te["inconclusive_reason"] == "too few paired prompts (n=1; at least 5 are needed)"
    assert exit_code(res) == 3 and res["verdict"]["decision"] == "inconclusive"
    assert "text_exact (too few paired prompts (n=1" in res["verdict"]["reason"]


def test_black_candidate_fails_hard_gate_whatever_metrics_say(ref_base, tmp_path):
    black = lambda p, s, ref: Image.new("RGB", (256, 256), (0, 0, 0))  # noqa: E731
    cand = _folder_run(tmp_path, "black", black, ref_base, scorers=None)
    res = compare(ref_base, cand, fidelity_clip=False)
    (pr,) = res["pairs"]
    assert exit_code(res) == 1 and pr["hard_gates"]["decision"] == "fail"
    assert len(pr["hard_gates"]["failed"]) == 3 and all("blank image" in g["reason"] for g in pr["hard_gates"]["failed"])
    assert res["verdict"]["failed"][0].endswith("hard gates")
    # one black image among exact copies: every metric passes, the hard gate still fails the comparison
    one = _folder_run(tmp_path, "one-black",
                      lambda p, s, ref: black(p, s, ref) if p.id == "street-signs" else ref, ref_base)
    res = compare(ref_base, one, fidelity_clip=False)
    (pr,) = res["pairs"]
    # (3 text prompts: too few for text_exact to decide, so it is inconclusive; the hard gate fails it anyway)
    assert pr["metrics"]["text_exact"]["decision"] == "inconclusive" and pr["metrics"]["text_exact"]["delta"] == 0.0
    assert pr["hard_gates"]["failed"] == [{"prompt_id": "street-signs", "seed": 0,
                                           "reason": pr["hard_gates"]["failed"][0]["reason"]}]
    assert exit_code(res) == 1 and res["verdict"]["decision"] == "fail"
    assert pr["regressed"][0]["prompt_id"] == "street-signs" and "blank" in pr["regressed"][0]["gate"]


def test_unmatched_items_stack_warning_and_pairing_errors(ref_base, tmp_path):
    cand = tmp_path / "subset"
    evalsuite.run("reference", "smoke", seeds=[0, 2], size="256x256", limit=2, run_dir=cand, score=False, **QUIET)
    res = compare(ref_base, cand, fidelity_clip=False)
    (pr,) = res["pairs"]
    um = {(u["side"], u["prompt_id"], u["seed"]): u["reason"] for u in pr["unmatched"]}
    assert um == {("baseline", "street-signs", 0): "no candidate item",
                  ("candidate", "neon-open-24", 2): "no baseline item", ("candidate", "cafe-chalkboard", 2): "no baseline item"}
    assert pr["n_pairs"] == 2
    assert any("different prompt sets" in w for w in res["warnings"])
    assert any("different seeds" in w for w in res["warnings"])
    assert "unmatched items (3)" in format_verdict(res)
    # another software stack: a warning in the verdict
    other = tmp_path / "other-stack"
    shutil.copytree(ref_base, other)
    info = json.loads((other / "run.json").read_text())
    info["environment"]["packages"]["torch"] = "0.0.1-other"
    info["environment"]["hardware"] = "NVIDIA H100 80GB HBM3"
    (other / "run.json").write_text(json.dumps(info))
    res = compare(ref_base, other, fidelity_clip=False)
    assert res["verdict"]["decision"] == "inconclusive"        # 3 text prompts, CLIP never scored
    assert any(w.startswith("different torch:") and "0.0.1-other" in w for w in res["warnings"])
    assert any(w.startswith("different hardware:") for w in res["warnings"])
    assert "warning: different torch" in format_verdict(res)
    # pairing: a label that does not exist is a one-line error
    with pytest.raises(EvalsuiteError, match="the candidate run has no backend 'nope'"):
        compare(ref_base, other, pairs=["reference=nope"])


def test_cli_usage_errors_exit_2(ref_base, capsys):
    for argv, msg in ((["compare", str(ref_base), str(ref_base), "--margin", "text_exact=-1"], "must be a number > 0"),
                      (["compare", str(ref_base), str(ref_base), "--margin", "bogus=1"], "unknown metric 'bogus'"),
                      (["compare", str(ref_base), "/nonexistent/run"], "is not a run folder"),
                      (["regress", "--backend", "flux-tiny@int8", "--quant", "int4"], "already quantized"),
                      (["regress", "--backend", "flux-tiny", "--quant", "int8", "--margin", "text_exact=x"],
                       "not a number")):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and msg in err and "\n" not in err
