"""Real EasyOCR/RapidOCR on rendered images, the scored run folder, calibration and the CLI."""

import shutil

import pytest
from PIL import Image

from evalsuite.backends.reference import font_paths, render_text
from evalsuite.metrics.text import Reading, item_text_metrics
from evalsuite.scoring.ocr import read_boxes
from tests.conftest import cli_env, run_cli


def read(engine, img, targets):
    boxes = read_boxes(engine, img)
    return item_text_metrics(targets, [Reading.from_boxes(engine, boxes)]), boxes


def test_easyocr_clean_near_miss_garbled_blank():
    font = font_paths()[0]
    (v, det), _ = read("easyocr", render_text(["OPEN 24 HOURS"], 384, 192, font), ["OPEN 24 HOURS"])
    assert det["targets"][0]["lenient"]["outcome"] == "exact" and v[("text_exact", "lenient")] == 1.0
    # two letters swapped in the image: 2 edits over 11 characters (lenient windows compare without spaces)
    (v, det), _ = read("easyocr", render_text(["FRESH COFEFE"], 384, 192, font), ["FRESH COFFEE"])
    assert det["targets"][0]["lenient"]["outcome"] == "near_miss"
    assert v[("text_similarity", "lenient")] == pytest.approx(1 - 2 / 11, abs=0.01)
    (v, det), _ = read("easyocr", render_text(["GARDEN PARTY"], 384, 192, font), ["NO PARKING"])
    assert det["targets"][0]["lenient"]["outcome"] == "garbled" and v[("text_exact", "lenient")] == 0.0
    (v, det), boxes = read("easyocr", Image.new("RGB", (256, 256), (246, 244, 238)), ["OPEN"])
    assert boxes == [] and v[("ocr_chars", "lenient")] == 0.0 and v[("text_similarity", "lenient")] == 0.0


def test_rapidocr_reads_clean_text():
    (v, det), boxes = read("rapidocr", render_text(["OPEN 24 HOURS"], 512, 512, font_paths()[0]), ["OPEN 24 HOURS"])
    assert v[("text_exact", "lenient")] == 1.0 and all(b.confidence > 0.5 for b in boxes)


def test_calibration_reference_ceiling_and_noise(scored_demo_run):
    import evalsuite

    agg = evalsuite.aggregate(scored_demo_run)
    te = agg[(agg.metric == "text_exact") & (agg.variant == "lenient") & (agg.model == "rapidocr")].set_index("backend")
    assert te.loc["reference", "mean"] >= 95.0
    assert te.loc["flux-tiny", "mean"] <= 5.0
    assert te.loc["reference", "label"] == "too few prompts (n=3)"       # 3 text prompts: below stats.MIN_PROMPTS
    assert 0 < te.loc["reference", "ci_low"] < 50 and te.loc["reference", "ci_method"] == "wilson-t"
    assert te.loc["flux-tiny", "ceiling"] == te.loc["reference", "mean"]
    assert te.loc["reference", "n_prompts"] == 3 and te.loc["reference", "n_items"] == 6
    # CLIP stored as missing with the reason, never filled in
    df = evalsuite.load_scores(scored_demo_run)
    clip = df[df.scorer == "clip"]
    assert len(clip) and clip["value"].isna().all()
    assert clip["missing_reason"].str.contains("CLIP weights ViT-L-14:openai unavailable").all()
    ocr = df[df.scorer == "ocr"]
    assert ocr["value"].notna().all() and ocr["missing_reason"].isna().all()
    # per-category aggregate: only the text category has text metrics
    cat = evalsuite.aggregate(df, by=("backend", "category"))
    assert set(cat.loc[cat.metric == "text_exact", "category"]) == {"text"}


def test_cli_score_offline_redoes_nothing_and_combines_engines(scored_demo_run, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(scored_demo_run, d)
    before = (d / "scores" / "scores.parquet").read_bytes()
    r = run_cli("score", d, "--no-progress", env=cli_env())
    assert r.returncode == 0, r.stderr
    assert "ocr rapidocr: scored 0, cached 18" in r.stdout
    assert "CLIP weights ViT-L-14:openai unavailable" in r.stdout
    assert "reference" in r.stdout and "too few prompts (n=3)" in r.stdout
    import evalsuite

    assert evalsuite.load_scores(d).equals(__import__("pandas").read_parquet(__import__("io").BytesIO(before)))
    r = run_cli("score", d, "--scorers", "ocr", "--ocr", "easyocr,rapidocr", "--no-progress", env=cli_env())
    assert r.returncode == 0, r.stderr
    assert "ocr rapidocr: scored 0, cached 18" in r.stdout and "ocr easyocr: scored 18" in r.stdout
    df = evalsuite.load_scores(d)
    assert set(df.loc[df.scorer == "ocr", "model"]) == {"easyocr", "rapidocr", "easyocr+rapidocr"}
    te = df[(df.metric == "text_exact") & (df.variant == "lenient")]
    best = te[te.model == "easyocr+rapidocr"].set_index(["backend", "prompt_id", "seed"])["value"]
    for eng in ("easyocr", "rapidocr"):
        one = te[te.model == eng].set_index(["backend", "prompt_id", "seed"])["value"]
        assert (best >= one.reindex(best.index)).all()       # per target the best engine: never worse


def test_bad_input_errors(demo_run, tmp_path):
    import evalsuite
    from evalsuite.errors import EvalsuiteError

    for kwargs in ({"ocr": "tesseract"}, {"scorers": "nosuch"}, {"clip_model": "NoSuchNet:openai"}):
        with pytest.raises(EvalsuiteError) as e:
            evalsuite.score(demo_run, **kwargs)
        assert "\n" not in str(e.value)
    with pytest.raises(EvalsuiteError, match="not a run folder"):
        evalsuite.score(tmp_path)
    # the CLI: one line, exit 2; `run` validates the scoring flags before generating anything
    r = run_cli("run", "-b", "reference", "--ocr", "tesseract", "--run-dir", tmp_path / "new", env=cli_env())
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "new").exists()


def test_run_scores_as_it_goes_and_no_score(tmp_path):
    r = run_cli("run", "-b", "reference", "-p", "smoke", "--seeds", "0", "--limit", "1", "--scorers", "ocr",
                "--run-dir", tmp_path / "a", "--no-progress", env=cli_env())
    assert r.returncode == 0, r.stderr
    assert "text acc [95% CI]" in r.stdout and "ocr rapidocr: scored 1, cached 0" in r.stdout
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("reference "))
    assert "100% [0, 100]" in line and "too few prompts (n=1)" in line
    import evalsuite

    r = evalsuite.run("reference", "smoke", seeds=[0], limit=1, run_dir=tmp_path / "b", progress=False,
                      log=lambda m: None, score=False)
    assert r.scores is None and not (tmp_path / "b" / "scores").exists()
